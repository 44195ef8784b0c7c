#include "http/routing.hpp"

namespace emr {

namespace {

api_error unknown_provider(const std::string& name) {
  return api_error{400,        "invalid_request",  "unknown provider '" + name + "'",
                   "provider", "unknown_provider", -1};
}

// A `provider/model` request rides the provider's batcher with its own batch key.
provider_route with_model(provider_route route, const std::string& model) {
  if (model == route.model)
    return route;
  route.limits = model_limits(*route.adapter, model, route.type, route.max_batch);
  route.model = model;
  return route;
}

std::variant<provider_route, api_error> route_for_model(const std::string& model,
                                                        const provider_directory& directory) {
  if (auto r = directory.route(model))
    return *r;
  if (auto slash = model.find('/'); slash != std::string::npos && slash + 1 < model.size())
    if (auto r = directory.route(std::string_view{model}.substr(0, slash)))
      return with_model(*r, model.substr(slash + 1));
  std::vector<provider_route> serving;
  for (auto& r : directory.routes())
    if (r.model == model)
      serving.push_back(std::move(r));
  if (serving.size() == 1)
    return serving.front();
  if (serving.empty())
    return api_error{404,
                     "invalid_request_error",
                     "The model `" + model + "` does not exist or no provider serves it.",
                     "model",
                     "model_not_found",
                     -1};
  std::string names;
  for (const auto& r : serving)
    names += (names.empty() ? "" : ", ") + r.name;
  return api_error{400,
                   "invalid_request",
                   "model '" + model + "' is served by several providers (" + names +
                       "); name one with 'provider' or 'provider/model'",
                   "model",
                   "ambiguous_model",
                   -1};
}

} // namespace

std::variant<std::vector<provider_route>, api_error>
resolve_routes(const embed_request& request, const provider_directory& directory) {
  std::vector<provider_route> routes;
  if (request.provider) {
    auto r = directory.route(*request.provider);
    if (!r)
      return unknown_provider(*request.provider);
    if (request.model) {
      const auto& m = *request.model;
      bool same = m == r->name || m == r->model || m == r->name + "/" + r->model;
      if (!same) {
        auto slash = r->name.size();
        if (m.size() > slash + 1 && m.starts_with(r->name) && m[slash] == '/')
          *r = with_model(std::move(*r), m.substr(slash + 1));
        else
          return api_error{400,
                           "invalid_request",
                           "'model' " + m + " disagrees with provider '" + r->name +
                               "', which serves " + r->model,
                           "model",
                           {},
                           -1};
      }
    }
    routes.push_back(std::move(*r));
  } else if (!request.providers.empty()) {
    for (const auto& name : request.providers) {
      auto r = directory.route(name);
      if (!r)
        return unknown_provider(name);
      routes.push_back(std::move(*r));
    }
  } else {
    auto r = route_for_model(*request.model, directory);
    if (auto e = std::get_if<api_error>(&r))
      return *e;
    routes.push_back(std::get<provider_route>(std::move(r)));
  }
  if (request.dimensions > 0)
    for (const auto& r : routes)
      if (!r.adapter->supports_dimensions(r.model, request.dimensions))
        return api_error{400,
                         "invalid_request",
                         "provider '" + r.name + "' (model " + r.model + ") cannot produce " +
                             std::to_string(request.dimensions) + " dimensions",
                         "dimensions",
                         {},
                         -1};
  return routes;
}

} // namespace emr
