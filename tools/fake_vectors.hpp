// Deterministic fake embeddings shared by the fake provider, the tests and the benchmarks.
//
// The vector algorithm is specified exactly (FNV-1a seed, splitmix64 stream, L2 normalization in
// double) so that tests written in other languages can recompute the same vectors bit for bit.
#pragma once

#include "providers/float_codec.hpp"

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

// Base64 of a little-endian float32 vector: the same codec emr itself uses.
inline std::string float32_base64(const std::vector<float>& v) {
  std::string out;
  append_base64_floats(out, v.data(), v.size());
  return out;
}

} // namespace emr::fake
