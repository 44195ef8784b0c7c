// Fuzzes OpenAI's data list, from upstream bytes to caller bytes.

#include "provider_response.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const auto provider = emr::make_provider(
      {.type = emr::provider_type::openai, .endpoint = "https://api.openai.com/v1/embeddings"});
  return emr::fuzz::run_provider_response(*provider, data, size);
}
