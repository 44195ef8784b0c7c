#pragma once
// UTF-8 read a code point at a time: for what must count characters, not bytes, or refuse text
// that is not UTF-8.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace emr {

struct code_point {
  std::uint32_t value = 0;
  std::size_t bytes = 0; ///< how many of the text's bytes it took, 1 to 4
};

/// The code point `text` starts with; nothing when its first bytes are not one in UTF-8 (a byte
/// that starts none, a sequence cut short, an overlong form, a surrogate, or past U+10FFFF).
std::optional<code_point> first_code_point(std::string_view text);

} // namespace emr
