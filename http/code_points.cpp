#include "http/code_points.hpp"

namespace emr {

namespace {

// How many bytes a UTF-8 sequence starting with `lead` has; 0 when `lead` starts none.
std::size_t sequence_length(unsigned char lead) {
  if (lead < 0x80)
    return 1;
  if ((lead >> 5) == 0x6)
    return 2;
  if ((lead >> 4) == 0xe)
    return 3;
  if ((lead >> 3) == 0x1e)
    return 4;
  return 0;
}

} // namespace

std::optional<code_point> first_code_point(std::string_view text) {
  static constexpr std::uint32_t smallest[] = {0, 0, 0x80, 0x800, 0x10000}; // overlong below
  if (text.empty())
    return std::nullopt;
  auto lead = static_cast<unsigned char>(text.front());
  auto length = sequence_length(lead);
  if (length == 0 || length > text.size())
    return std::nullopt;
  if (length == 1)
    return code_point{lead, 1};
  std::uint32_t value = lead & (0xff >> (length + 1));
  for (std::size_t k = 1; k < length; ++k) {
    auto next = static_cast<unsigned char>(text[k]);
    if ((next & 0xc0) != 0x80)
      return std::nullopt;
    value = (value << 6) | (next & 0x3f);
  }
  if (value < smallest[length] || value > 0x10ffff || (value >= 0xd800 && value <= 0xdfff))
    return std::nullopt;
  return code_point{value, length};
}

} // namespace emr
