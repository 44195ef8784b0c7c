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

/// Appends standard base64 (with padding) of the floats' little-endian bytes.
inline void append_base64_floats(std::string& out, const float* values, std::size_t n) {
  static_assert(std::endian::native == std::endian::little, "emr assumes a little-endian host");
  auto bytes = reinterpret_cast<const unsigned char*>(values);
  std::size_t len = n * sizeof(float);
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

/// Decodes base64 of little-endian float32 bytes onto `out`; false (and `out` unchanged) on bad input.
inline bool decode_base64_floats(std::string_view text, std::vector<float>& out) {
  if (text.size() % 4 != 0)
    return false;
  std::size_t pad = 0;
  if (!text.empty() && text.back() == '=')
    pad = (text.size() >= 2 && text[text.size() - 2] == '=') ? 2 : 1;
  std::size_t len = text.size() / 4 * 3 - pad;
  if (len % sizeof(float) != 0)
    return false;
  std::size_t first = out.size();
  out.resize(first + len / sizeof(float));
  auto dst = reinterpret_cast<unsigned char*>(out.data() + first);
  std::size_t o = 0;
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
    for (int k = 0; k < 3 && o < len; ++k)
      dst[o++] = chunk[k];
  }
  return true;
}

} // namespace emr
