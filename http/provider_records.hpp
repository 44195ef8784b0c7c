#pragma once
// Providers as the store keeps them, as the actors run them, and as the admin API shows them.

#include "http/api_error.hpp"
#include "http/rate_limit_fields.hpp"
#include "providers/provider.hpp"
#include "storage/store.hpp"

#include <boost/json/object.hpp>

#include <cstdint>
#include <variant>

namespace emr {

provider_spec to_spec(const provider_record& record);

/// Why a record cannot be run (the checks an admin request passes), or nothing when it can.
std::optional<api_error> check_provider(const provider_record& record);

/// Validates an admin request's fields into a record (type, URL, env name, max batch and rate
/// limit ranges); a field it does not know is a 400.
std::variant<provider_record, api_error> provider_from_json(const boost::json::object& body);

/// Applies a PATCH (endpoint, model, api_key_env, max_batch, enabled, requests_per_minute,
/// tokens_per_minute) to a record, validating as on create; another field (name and type are
/// fixed), or none at all, is a 400. A PATCH that only disables the record or clears its rate
/// limits is taken even when the record cannot run (check_provider); any other must leave it able
/// to.
std::optional<api_error> patch_provider(provider_record& record, const boost::json::object& body);

/// The admin view: never the key's value, only the variable's name and whether it is set, nor a
/// password in the endpoint; `problem` says why a stored record is not running.
boost::json::object provider_json(const provider_record& record);

} // namespace emr
