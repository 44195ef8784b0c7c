#pragma once
// Small helpers every route uses to read a request and write a JSON answer.

#include "http/api_error.hpp"

#include <boost/json/object.hpp>
#include <httplib.h>

#include <initializer_list>

namespace emr {

/// Writes `error` in the standard shape (with Retry-After when it carries a wait).
void send_error(httplib::Response& res, const api_error& error);
/// Writes a JSON body with `status`.
void send_json(httplib::Response& res, int status, std::string body);
/// The caller's X-Request-Id if it is a token (http/caller_text.hpp), else a fresh one; echoed on
/// the response.
std::string request_id(const httplib::Request& req, httplib::Response& res);
/// 415 unless the body is declared JSON (or not declared at all).
std::optional<api_error> require_json(const httplib::Request& req);
/// Whether a name an operator gives (a key's, a provider's, a model's) is 1 to 128 characters of
/// UTF-8 without control characters (C0, DEL, C1), which would garble the logs, tables and
/// metrics labels that show it, nor a space at either end, which would make it look like another.
bool valid_name(std::string_view name);
/// The 400 for a `field` that is not a valid_name.
api_error invalid_name(const std::string& field);

/// 400 naming the first field of `body` that is not one of `known`: a misspelt field would
/// otherwise be dropped without a word, and the change it carried with it.
std::optional<api_error> check_fields(const boost::json::object& body,
                                      std::initializer_list<std::string_view> known);
/// check_fields for a PATCH, which may set only `changeable` fields: one of `fixed` is named as a
/// field that cannot change, and an empty body, which would change nothing, is a 400 too.
std::optional<api_error> check_patch_fields(const boost::json::object& body,
                                            std::initializer_list<std::string_view> changeable,
                                            std::initializer_list<std::string_view> fixed);

} // namespace emr
