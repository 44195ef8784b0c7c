// Deterministic fake embeddings shared by the fake provider, the tests and the benchmarks.
//
// The vector algorithm is specified exactly (FNV-1a seed, splitmix64 stream, L2 normalization in
// double) so that tests written in other languages can recompute the same vectors bit for bit.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace emr::fake {

namespace detail {

inline constexpr std::uint64_t fnv_offset_basis = 14695981039346656037ull;
inline constexpr std::uint64_t fnv_prime = 1099511628211ull;
inline constexpr unsigned char field_separator = 0x1f;

inline std::uint64_t fnv1a_append(std::uint64_t hash, std::string_view bytes) {
  for (unsigned char c : bytes) {
    hash ^= c;
    hash *= fnv_prime;
  }
  return hash;
}

inline std::uint64_t fnv1a_append(std::uint64_t hash, unsigned char byte) {
  hash ^= byte;
  hash *= fnv_prime;
  return hash;
}

class splitmix64 {
public:
  explicit splitmix64(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }

private:
  std::uint64_t state_;
};

inline constexpr char base64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

inline int base64_value(char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+')
    return 62;
  if (c == '/')
    return 63;
  return -1;
}

} // namespace detail

// Seed = FNV-1a 64 over "model \x1f input_type \x1f text \x1f dims"; components come from a
// splitmix64 stream mapped to [-1, 1) and the result is normalized to unit L2 length.
inline std::vector<float> fake_vector(std::string_view model, std::string_view input_type,
                                      std::string_view text, int dims) {
  if (dims <= 0)
    return {};
  std::uint64_t seed = detail::fnv_offset_basis;
  seed = detail::fnv1a_append(seed, model);
  seed = detail::fnv1a_append(seed, detail::field_separator);
  seed = detail::fnv1a_append(seed, input_type);
  seed = detail::fnv1a_append(seed, detail::field_separator);
  seed = detail::fnv1a_append(seed, text);
  seed = detail::fnv1a_append(seed, detail::field_separator);
  seed = detail::fnv1a_append(seed, std::to_string(dims));

  detail::splitmix64 stream(seed);
  std::vector<float> v(static_cast<std::size_t>(dims));
  double sum_squares = 0.0;
  for (float& x : v) {
    x = static_cast<float>(static_cast<double>(stream.next() >> 40) / 16777216.0 * 2.0 - 1.0);
    sum_squares += static_cast<double>(x) * static_cast<double>(x);
  }
  const double norm = std::sqrt(sum_squares);
  if (norm > 0.0) {
    for (float& x : v)
      x = static_cast<float>(static_cast<double>(x) / norm);
  }
  return v;
}

// A stand-in tokenizer: about four bytes per token, and never zero for a text.
inline int fake_token_count(std::string_view text) {
  const auto tokens = static_cast<int>((text.size() + 3) / 4);
  return tokens < 1 ? 1 : tokens;
}

// Native dimensions of the models the fake knows (providers.md §1.4, §2.5, §3.5); 0 = unknown.
inline int default_dims(std::string_view model) {
  static constexpr std::array<std::string_view, 21> voyage_models = {"voyage-4-large",
                                                                     "voyage-4",
                                                                     "voyage-4-lite",
                                                                     "voyage-3-large",
                                                                     "voyage-3.5",
                                                                     "voyage-3.5-lite",
                                                                     "voyage-code-3",
                                                                     "voyage-finance-2",
                                                                     "voyage-law-2",
                                                                     "voyage-code-2",
                                                                     "voyage-3",
                                                                     "voyage-3-lite",
                                                                     "voyage-multilingual-2",
                                                                     "voyage-large-2-instruct",
                                                                     "voyage-large-2",
                                                                     "voyage-2",
                                                                     "voyage-lite-02-instruct",
                                                                     "voyage-02",
                                                                     "voyage-01",
                                                                     "voyage-lite-01",
                                                                     "voyage-lite-01-instruct"};
  struct model_dims {
    std::string_view name;
    int dims;
  };
  static constexpr std::array<model_dims, 14> fixed_dims = {{
      {"voyage-code-2", 1536},
      {"voyage-large-2", 1536},
      {"voyage-3-lite", 512},
      {"embed-v4.0", 1536},
      {"embed-english-v3.0", 1024},
      {"embed-multilingual-v3.0", 1024},
      {"embed-english-light-v3.0", 384},
      {"embed-multilingual-light-v3.0", 384},
      {"embed-english-v2.0", 4096},
      {"embed-english-light-v2.0", 1024},
      {"embed-multilingual-v2.0", 768},
      {"text-embedding-3-small", 1536},
      {"text-embedding-3-large", 3072},
      {"text-embedding-ada-002", 1536},
  }};
  for (const auto& m : fixed_dims)
    if (m.name == model)
      return m.dims;
  for (const auto& name : voyage_models)
    if (name == model)
      return 1024;
  return 0;
}

// Base64 (standard alphabet, padded) of raw bytes.
inline std::string base64_encode(const unsigned char* data, std::size_t size) {
  std::string out;
  out.reserve((size + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= size; i += 3) {
    const std::uint32_t n = (std::uint32_t{data[i]} << 16) | (std::uint32_t{data[i + 1]} << 8) |
                            std::uint32_t{data[i + 2]};
    out += detail::base64_alphabet[(n >> 18) & 63];
    out += detail::base64_alphabet[(n >> 12) & 63];
    out += detail::base64_alphabet[(n >> 6) & 63];
    out += detail::base64_alphabet[n & 63];
  }
  if (const std::size_t rest = size - i; rest > 0) {
    std::uint32_t n = std::uint32_t{data[i]} << 16;
    if (rest == 2)
      n |= std::uint32_t{data[i + 1]} << 8;
    out += detail::base64_alphabet[(n >> 18) & 63];
    out += detail::base64_alphabet[(n >> 12) & 63];
    out += rest == 2 ? detail::base64_alphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// Decodes standard padded Base64; returns false on any character outside the alphabet.
inline bool base64_decode(std::string_view text, std::vector<unsigned char>& out) {
  out.clear();
  out.reserve(text.size() / 4 * 3);
  std::uint32_t buffer = 0;
  int bits = 0;
  for (char c : text) {
    if (c == '=')
      break;
    const int value = detail::base64_value(c);
    if (value < 0)
      return false;
    buffer = (buffer << 6) | static_cast<std::uint32_t>(value);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<unsigned char>((buffer >> bits) & 0xff));
    }
  }
  return true;
}

// Little-endian float32 bytes, as OpenAI, Voyage and Cohere base64 embeddings are laid out.
inline std::string float32_base64(const std::vector<float>& v) {
  std::vector<unsigned char> bytes(v.size() * 4);
  for (std::size_t i = 0; i < v.size(); ++i) {
    std::uint32_t bits;
    std::memcpy(&bits, &v[i], 4);
    for (int b = 0; b < 4; ++b)
      bytes[i * 4 + b] = static_cast<unsigned char>(bits >> (8 * b));
  }
  return base64_encode(bytes.data(), bytes.size());
}

// Inverse of float32_base64; trailing bytes that do not fill a float are ignored.
inline std::vector<float> base64_float32(std::string_view text) {
  std::vector<unsigned char> bytes;
  if (!base64_decode(text, bytes))
    return {};
  std::vector<float> v(bytes.size() / 4);
  for (std::size_t i = 0; i < v.size(); ++i) {
    std::uint32_t bits = 0;
    for (int b = 0; b < 4; ++b)
      bits |= std::uint32_t{bytes[i * 4 + b]} << (8 * b);
    std::memcpy(&v[i], &bits, 4);
  }
  return v;
}

} // namespace emr::fake
