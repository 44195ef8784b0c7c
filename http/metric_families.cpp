#include "http/metric_families.hpp"

#include <charconv>
#include <concepts>
#include <map>

namespace emr {

namespace {

std::string label_value(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"')
      out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

template <class T>
requires std::is_arithmetic_v<T> std::string number(T v) {
  if constexpr (std::same_as<T, bool>) {
    return v ? "1" : "0";
  } else {
    char buffer[32];
    auto end = std::to_chars(buffer, buffer + sizeof buffer, v).ptr;
    return std::string{buffer, end};
  }
}

std::string joined(const std::string& labels, std::string_view name, std::string_view value) {
  return labels + (labels.empty() ? "" : ",") + std::string{name} + "=\"" + label_value(value) +
         "\"";
}

void add_histogram(metric_family& f, const histogram& h, const std::string& labels) {
  for (std::size_t i = 0; i < h.upper_bounds().size(); ++i)
    f.samples.push_back({"_bucket", joined(labels, "le", number(h.upper_bounds()[i])),
                         number(h.cumulative_counts()[i])});
  f.samples.push_back({"_bucket", joined(labels, "le", "+Inf"), number(h.count())});
  f.samples.push_back({"_sum", labels, number(h.sum())});
  f.samples.push_back({"_count", labels, number(h.count())});
}

class family_list {
public:
  metric_family& family(std::string_view name, metric_type type, std::string_view help,
                        std::vector<std::string_view> labels) {
    auto [it, added] = index_.try_emplace(name, families_.size());
    if (added)
      families_.push_back({name, type, help, std::move(labels), {}});
    return families_[it->second];
  }

  /// The fields of `stats` that name a metric, as samples carrying `labels` (`label_names` for
  /// the docs); with `labels` unset, only their families, so that each is listed with no samples.
  template <described_stats T>
  void add(const T& stats, const std::optional<std::string>& labels,
           const std::vector<std::string_view>& label_names) {
    describe(stats, [&]<class V>(const V& value, const stat_field& field) {
      if (field.type == metric_type::none)
        return;
      auto names = label_names;
      if (!field.label.empty())
        names.push_back(field.label);
      auto& f = family(field.metric, field.type, field.help, std::move(names));
      if (labels)
        add_samples(f, value, *labels, field);
    });
  }

  std::vector<metric_family> take() { return std::move(families_); }

private:
  template <class V>
  static void add_samples(metric_family& f, const V& value, const std::string& labels,
                          const stat_field& field) {
    if constexpr (std::is_arithmetic_v<V>) {
      f.samples.push_back({"", labels, number(value)});
    } else if constexpr (std::same_as<V, histogram>) {
      add_histogram(f, value, labels);
    } else if constexpr (described_stats<V>) {
      describe(value, [&]<class M>(const M& member, const stat_field& m) {
        static_assert(std::is_arithmetic_v<M>, "a group's members are numbers");
        f.samples.push_back({"", joined(labels, field.label, m.key), number(member)});
      });
    }
    // Text and lists are /admin/stats' only: they name no metric.
  }

  std::vector<metric_family> families_;
  std::map<std::string_view, std::size_t> index_;
};

std::string_view type_name(metric_type t) {
  switch (t) {
  case metric_type::counter:
    return "counter";
  case metric_type::histogram:
    return "histogram";
  default:
    return "gauge";
  }
}

} // namespace

std::vector<metric_family> metric_families(const metric_sources& sources) {
  using enum metric_type;
  family_list out;
  const std::vector<std::string_view> by_provider{"provider"};

  auto& answered =
      out.family("emr_caller_requests_total", counter,
                 "Caller requests answered, by provider and HTTP status.", {"provider", "status"});
  for (const auto& r : sources.callers.requests)
    answered.samples.push_back(
        {"", joined(joined("", "provider", r.provider), "status", number(r.status)),
         number(r.count)});
  add_histogram(out.family("emr_caller_latency_seconds", histogram,
                           "Time from a caller's request to its answer.", {}),
                sources.callers.latency_seconds, "");
  out.family("emr_rate_limited_passed_on_total", counter, "Caller answers that were 429.", {})
      .samples.push_back({"", "", number(sources.callers.rate_limited_passed_on)});
  out.add(sources.auth, std::string{}, {});
  out.add(sources.cache, std::string{}, {});

  out.add(batcher_stats{}, std::nullopt, by_provider);
  for (const auto& b : sources.batchers)
    out.add(b, joined("", "provider", b.provider), by_provider);

  out.add(provider_health_stats{}, std::nullopt, by_provider);
  auto& throttled = out.family("emr_rate_limited_received_total", counter,
                               "429 answers received from providers.", by_provider);
  std::size_t sin_binned = 0;
  for (const auto& [provider, h] : sources.health.providers) {
    out.add(h, joined("", "provider", provider), by_provider);
    throttled.samples.push_back(
        {"", joined("", "provider", provider), number(h.totals.rate_limited)});
    sin_binned += h.state == "sin-binned";
  }
  out.family("emr_sin_binned_providers", gauge, "Providers currently sin-binned.", {})
      .samples.push_back({"", "", number(sin_binned)});
  out.family("emr_request_actors", gauge, "Request actors alive (one per caller in flight).", {})
      .samples.push_back({"", "", number(sources.request_actors)});

  // Per caller key: the key's id, or "other" for the keys past the busiest metric_keys.
  const std::vector<std::string_view> by_key{"key"};
  auto per_key = [&](std::string_view name, std::string_view help, auto value) {
    auto& f = out.family(name, counter, help, by_key);
    for (const auto& k : sources.keys)
      f.samples.push_back({"",
                           joined("", "key", k.key_id == 0 ? "other" : std::to_string(k.key_id)),
                           number(value(k))});
  };
  per_key("emr_key_requests_total", "Embedding requests answered, by caller key.",
          [](const key_usage_row& k) { return k.requests; });
  per_key("emr_key_texts_total", "Texts embedded, by caller key.",
          [](const key_usage_row& k) { return k.texts; });
  per_key("emr_key_tokens_total", "Tokens of the answers' usage, by caller key.",
          [](const key_usage_row& k) { return k.tokens; });
  per_key("emr_key_upstream_calls_total",
          "Upstream calls attributed to each caller key (its share of each call it rode).",
          [](const key_usage_row& k) { return k.upstream_calls; });
  per_key("emr_key_cache_hits_total", "Texts answered from the embedding cache, by caller key.",
          [](const key_usage_row& k) { return k.cache_hits; });
  per_key("emr_key_errors_total", "Requests answered with an error, by caller key.",
          [](const key_usage_row& k) { return k.errors; });
  return out.take();
}

std::string prometheus_text(const std::vector<metric_family>& families) {
  std::string out;
  for (const auto& f : families) {
    out.append("# HELP ").append(f.name).append(" ").append(f.help).append("\n");
    out.append("# TYPE ").append(f.name).append(" ").append(type_name(f.type)).append("\n");
    for (const auto& s : f.samples) {
      out.append(f.name).append(s.suffix);
      if (!s.labels.empty())
        out.append("{").append(s.labels).append("}");
      out.append(" ").append(s.value).append("\n");
    }
  }
  return out;
}

std::string metric_table(const std::vector<metric_family>& families) {
  std::string out = "| metric | type | labels | meaning |\n|---|---|---|---|\n";
  for (const auto& f : families) {
    std::string labels;
    for (auto l : f.labels)
      labels.append(labels.empty() ? "" : ", ").append("`").append(l).append("`");
    out.append("| `").append(f.name).append("` | ").append(type_name(f.type)).append(" | ");
    out.append(labels).append(" | ").append(f.help).append(" |\n");
  }
  return out;
}

} // namespace emr
