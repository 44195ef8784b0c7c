#pragma once
// Float32 vectors to and from the two wire encodings: JSON number arrays and base64 of
// little-endian float32 bytes (OpenAI's layout, providers.md §3.4).

#include <openssl/evp.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <charconv>
#include <climits>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace emr {

/// Appends `[v0,v1,...]` with each float in its shortest round-trip form.
inline void append_json_floats(std::string& out, const float* values, std::size_t n) {
  // Written in place, into room for the longest float (15 characters, as "-1.17549435e-38") and
  // its comma each: a vector's thousand floats are most of the CPU an answer costs.
  constexpr std::size_t longest_with_comma = 16;
  auto at = out.size();
  out.resize(at + 2 + n * longest_with_comma);
  char* p = out.data() + at;
  char* end = out.data() + out.size();
  *p++ = '[';
  for (std::size_t i = 0; i < n; ++i) {
    if (i != 0)
      *p++ = ',';
    p = std::to_chars(p, end, values[i]).ptr;
  }
  *p++ = ']';
  out.resize(static_cast<std::size_t>(p - out.data()));
}

/// Appends standard base64 (RFC 4648 alphabet, with padding) of raw bytes.
inline void append_base64(std::string& out, const unsigned char* bytes, std::size_t len) {
  // OpenSSL counts in int: long inputs go in whole groups of three bytes.
  constexpr std::size_t most_at_once = 3 << 20;
  for (std::size_t done = 0; done < len; done += most_at_once) {
    auto n = std::min(most_at_once, len - done);
    auto at = out.size();
    out.resize(at + (n + 2) / 3 * 4 + 1); // EVP_EncodeBlock ends with a NUL
    auto written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data() + at), bytes + done,
                                   static_cast<int>(n));
    out.resize(at + static_cast<std::size_t>(written));
  }
}

/// Appends standard base64 of the floats' little-endian bytes (OpenAI's layout).
inline void append_base64_floats(std::string& out, const float* values, std::size_t n) {
  static_assert(std::endian::native == std::endian::little, "emr assumes a little-endian host");
  append_base64(out, reinterpret_cast<const unsigned char*>(values), n * sizeof(float));
}

/// Decodes base64 of little-endian float32 bytes onto `out`; false (and `out` unchanged) on
/// bad input or a length that is not whole floats. Standard alphabet, padded, nothing else.
inline bool decode_base64_floats(std::string_view text, std::vector<float>& out) {
  static_assert(std::endian::native == std::endian::little, "emr assumes a little-endian host");
  if (text.empty())
    return true;
  if (text.size() % 4 != 0 || text.size() > static_cast<std::size_t>(INT_MAX))
    return false;
  std::size_t pad = text.back() != '=' ? 0 : text[text.size() - 2] == '=' ? 2 : 1;
  // OpenSSL's decoder is lenient where a provider's answer must not be: it reads '=' anywhere as
  // zero bits and skips whitespace (and a PEM line's dashes) at either end. It checks the rest.
  auto in_alphabet = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/';
  };
  auto data = text.substr(0, text.size() - pad);
  if (data.find('=') != std::string_view::npos || !in_alphabet(data.front()) ||
      !in_alphabet(data.back()))
    return false;
  auto bytes = text.size() / 4 * 3 - pad;
  if (bytes % sizeof(float) != 0)
    return false;
  auto first = out.size();
  // Decoded straight into the floats, with room for the padding's zero bytes it also writes.
  out.resize(first + bytes / sizeof(float) + 1);
  auto decoded = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data() + first),
                                 reinterpret_cast<const unsigned char*>(text.data()),
                                 static_cast<int>(text.size()));
  out.resize(decoded < 0 ? first : first + bytes / sizeof(float));
  return decoded >= 0;
}

} // namespace emr
