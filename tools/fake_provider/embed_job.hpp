// What an embeddings request becomes once a provider's wire format has accepted it, and the error
// it becomes when refused.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace emr::fake {

/// A refusal as a provider words it. Voyage and Cohere carry only the status and the message.
struct api_error {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error"; // OpenAI only
  std::string code;                           // OpenAI only; empty renders as null
  std::string param;                          // OpenAI only; empty renders as null
};

/// An error in the Voyage or Cohere shape.
inline api_error plain_error(int status, std::string message) {
  api_error e;
  e.status = status;
  e.message = std::move(message);
  return e;
}

inline api_error bad_request(std::string message) {
  return plain_error(400, std::move(message));
}

/// The number type of the vectors asked for; the quantized ones per providers.md §1.
enum class dtype { float32, int8, uint8, binary, ubinary };

struct encoding {
  dtype type = dtype::float32;
  bool base64 = false;
};

/// A validated embeddings request, whichever provider it came in as.
struct embed_job {
  std::string model;
  std::string input_type;
  std::vector<std::string> texts;
  int total_tokens = 0;
  int dims = 0;
  encoding enc;                                               // Voyage, OpenAI
  std::vector<std::pair<std::string, encoding>> cohere_types; // empty: v1 floats response
  std::vector<std::string> echoed_texts;                      // Cohere
};

} // namespace emr::fake
