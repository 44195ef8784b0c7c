// Fuzzes Cohere's v1 embed answer, from upstream bytes to caller bytes.

#include "provider_response.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const auto provider = emr::make_provider(
      {.type = emr::provider_type::cohere, .endpoint = "https://api.cohere.com/v1/embed"});
  return emr::fuzz::run_provider_response(*provider, data, size);
}
