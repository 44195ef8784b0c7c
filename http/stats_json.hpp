#pragma once
// /admin/stats' and /health/providers' JSON, made from described stats (actors/stat_field.hpp):
// each field under its key, a described struct as an object, a list as an array.

#include "actors/actor_stats.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <concepts>
#include <optional>
#include <string>
#include <vector>

namespace emr {

/// `{"buckets":[[le, cumulative count], ...], "count": n, "sum": s}`
boost::json::object to_json(const histogram& h);
boost::json::object to_json(const health_stats& s);

template <class T>
requires std::is_arithmetic_v<T> boost::json::value to_json(T v) {
  return boost::json::value(v);
}

inline boost::json::value to_json(const std::string& s) {
  return boost::json::value(s);
}

template <described_stats T> boost::json::object to_json(const T& stats);

template <class T> boost::json::array to_json(const std::vector<T>& items) {
  boost::json::array out;
  for (const auto& item : items)
    out.push_back(to_json(item));
  return out;
}

template <described_stats T> boost::json::object to_json(const T& stats) {
  boost::json::object out;
  describe(stats, [&out]<class V>(const V& value, const stat_field& field) {
    if constexpr (std::same_as<V, std::optional<std::string>>) {
      if (value)
        out[field.key] = *value;
    } else {
      out[field.key] = to_json(value);
    }
  });
  return out;
}

} // namespace emr
