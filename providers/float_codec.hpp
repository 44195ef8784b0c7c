#pragma once
// Float32 vectors to and from the two wire encodings: JSON number arrays and base64 of
// little-endian float32 bytes (OpenAI's layout, providers.md §3.4).

#include <bit>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace emr {

/// Appends `[v0,v1,...]` with each float in its shortest round-trip form.
inline void append_json_floats(std::string& out, const float* values, std::size_t n) {
  out.push_back('[');
  char buf[32];
  for (std::size_t i = 0; i < n; ++i) {
    if (i != 0)
      out.push_back(',');
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), values[i]);
    out.append(buf, end);
  }
  out.push_back(']');
}

namespace detail {
inline constexpr char base64_alphabet[] =
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
inline constexpr int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}
} // namespace detail

/// Appends standard base64 (RFC 4648 alphabet, with padding) of raw bytes.
inline void append_base64(std::string& out, const unsigned char* bytes, std::size_t len) {
  out.reserve(out.size() + (len + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= len; i += 3) {
    std::uint32_t v = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out.push_back(detail::base64_alphabet[(v >> 18) & 63]);
    out.push_back(detail::base64_alphabet[(v >> 12) & 63]);
    out.push_back(detail::base64_alphabet[(v >> 6) & 63]);
    out.push_back(detail::base64_alphabet[v & 63]);
  }
  if (std::size_t rest = len - i; rest > 0) {
    std::uint32_t v = bytes[i] << 16;
    if (rest == 2)
      v |= bytes[i + 1] << 8;
    out.push_back(detail::base64_alphabet[(v >> 18) & 63]);
    out.push_back(detail::base64_alphabet[(v >> 12) & 63]);
    out.push_back(rest == 2 ? detail::base64_alphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
}

/// Appends standard base64 of the floats' little-endian bytes (OpenAI's layout).
inline void append_base64_floats(std::string& out, const float* values, std::size_t n) {
  static_assert(std::endian::native == std::endian::little, "emr assumes a little-endian host");
  append_base64(out, reinterpret_cast<const unsigned char*>(values), n * sizeof(float));
}

/// Decodes standard padded base64 onto `out`; false (and `out` unchanged) on bad input.
inline bool decode_base64(std::string_view text, std::vector<unsigned char>& out) {
  if (text.size() % 4 != 0)
    return false;
  std::size_t pad = 0;
  if (!text.empty() && text.back() == '=')
    pad = (text.size() >= 2 && text[text.size() - 2] == '=') ? 2 : 1;
  std::size_t len = text.size() / 4 * 3 - pad;
  std::size_t first = out.size();
  out.resize(first + len);
  std::size_t o = first;
  for (std::size_t i = 0; i < text.size(); i += 4) {
    int a = detail::base64_value(text[i]), b = detail::base64_value(text[i + 1]);
    bool last = i + 4 == text.size();
    int c = (last && pad == 2) ? 0 : detail::base64_value(text[i + 2]);
    int d = (last && pad >= 1) ? 0 : detail::base64_value(text[i + 3]);
    if (a < 0 || b < 0 || c < 0 || d < 0) {
      out.resize(first);
      return false;
    }
    std::uint32_t v = (a << 18) | (b << 12) | (c << 6) | d;
    unsigned char chunk[3] = {static_cast<unsigned char>(v >> 16), static_cast<unsigned char>(v >> 8),
                              static_cast<unsigned char>(v)};
    for (int k = 0; k < 3 && o < first + len; ++k)
      out[o++] = chunk[k];
  }
  return true;
}

/// Decodes base64 of little-endian float32 bytes onto `out`; false (and `out` unchanged) on
/// bad input or a length that is not whole floats.
inline bool decode_base64_floats(std::string_view text, std::vector<float>& out) {
  thread_local std::vector<unsigned char> bytes;
  bytes.clear();
  if (!decode_base64(text, bytes) || bytes.size() % sizeof(float) != 0)
    return false;
  auto first = out.size();
  out.resize(first + bytes.size() / sizeof(float));
  // An empty vector's data() may be null, which memcpy must not get even for zero bytes.
  if (!bytes.empty())
    std::memcpy(out.data() + first, bytes.data(), bytes.size());
  return true;
}

} // namespace emr
