// Fuzzes the caller key in an Authorization header: a key that parses is exactly
// "emr_" + public id + "_" + secret, and both halves are views into the header.

#include "http/caller_keys.hpp"

#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view token{reinterpret_cast<const char*>(data), size};
  auto key = emr::parse_key(token);
  if (!key)
    return 0;
  if (key->public_id.size() != 16 || key->secret.size() != 43 ||
      key->public_id.data() != token.data() + 4 || key->secret.data() != token.data() + 21 ||
      "emr_" + std::string{key->public_id} + "_" + std::string{key->secret} != token)
    std::abort();
  return 0;
}
