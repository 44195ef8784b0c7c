// Reading optional fields of a request body the way the providers' servers do.
#pragma once

#include <boost/json.hpp>

#include <cstdint>
#include <limits>
#include <optional>
#include <string_view>

namespace emr::fake {

/// Treats JSON null like an absent field: voyage-py sends every unset option as null.
inline const boost::json::value* field(const boost::json::object& o, std::string_view key) {
  const boost::json::value* v = o.if_contains(key);
  return (v && !v->is_null()) ? v : nullptr;
}

/// A JSON integer, whether Boost.JSON stored it signed or unsigned; nullopt for anything else.
inline std::optional<std::int64_t> as_integer(const boost::json::value& v) {
  if (v.is_int64())
    return v.get_int64();
  if (v.is_uint64() && v.get_uint64() <= std::uint64_t(std::numeric_limits<std::int64_t>::max()))
    return static_cast<std::int64_t>(v.get_uint64());
  return std::nullopt;
}

} // namespace emr::fake
