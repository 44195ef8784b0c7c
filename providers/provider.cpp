#include "providers/provider.hpp"

#include "providers/adapters.hpp"

#include <boost/json/string.hpp>

#include <algorithm>
#include <array>
#include <utility>

namespace emr {

namespace {
constexpr std::array<std::pair<provider_type, std::string_view>, 4> type_names{{
    {provider_type::voyage, "voyage"},
    {provider_type::cohere, "cohere"},
    {provider_type::openai, "openai"},
    {provider_type::openai_compatible, "openai-compatible"},
}};
} // namespace

std::optional<provider_type> parse_provider_type(std::string_view name) {
  for (auto [type, text] : type_names)
    if (text == name)
      return type;
  return std::nullopt;
}

std::string_view to_string(provider_type type) {
  for (auto [t, text] : type_names)
    if (t == type)
      return text;
  return "unknown";
}

std::unique_ptr<embedding_provider> make_provider(const provider_spec& spec) {
  switch (spec.type) {
  case provider_type::voyage:
    return make_voyage_provider();
  case provider_type::cohere:
    return make_cohere_provider(spec.endpoint.find("/v2/") != std::string::npos);
  case provider_type::openai:
    return make_openai_provider(false);
  case provider_type::openai_compatible:
    return make_openai_provider(true);
  }
  return make_voyage_provider();
}

boost::json::array text_array(const std::vector<std::string_view>& texts) {
  boost::json::array out;
  out.reserve(texts.size());
  for (auto t : texts)
    out.emplace_back(boost::json::string_view{t.data(), t.size()});
  return out;
}

std::size_t expected_dimensions(const embedding_provider& provider, const upstream_batch& batch) {
  return batch.dimensions > 0 ? static_cast<std::size_t>(batch.dimensions)
                              : provider.native_dimensions(batch.model);
}

batch_limits model_limits(const embedding_provider& provider, std::string_view model,
                          provider_type type, std::size_t max_batch) {
  auto limits = provider.limits(model);
  // A self-hosted server's real capacity is the operator's to know; a hosted API's is a ceiling.
  if (max_batch > 0)
    limits.max_texts = type == provider_type::openai_compatible
                           ? max_batch
                           : std::min(limits.max_texts, max_batch);
  return limits;
}

} // namespace emr
