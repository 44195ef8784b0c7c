#pragma once
// The one error shape every endpoint answers with: OpenAI's {"error":{message,type,param,code}}.

#include <cstdint>
#include <optional>
#include <string>

namespace emr {

struct api_error {
  int status = 400;
  std::string type = "invalid_request";
  std::string message;
  std::string param; ///< offending field, empty when none
  std::string code;  ///< machine-readable code, empty when none
  std::int64_t retry_after_ms = -1;
};

/// `{"error":{"message":...,"type":...,"param":...|null,"code":...|null}}`
std::string render_error(const api_error& error);

/// A 400 `invalid_request` naming the offending field (`param`), when there is one.
api_error invalid_request(std::string message, std::string param = {});

/// The wait a caller is told for a 429 or 503 that carries one (the Retry-After header, and a
/// batch sub-result's `retry_after`): whole seconds, rounded up, at least 1.
std::optional<std::int64_t> retry_after(const api_error& error);

/// The reason phrase of an HTTP status line, for the answers emr writes itself.
const char* reason_phrase(int status);

} // namespace emr
