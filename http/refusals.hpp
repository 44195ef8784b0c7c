#pragma once
// Requests refused at the HTTP level, before any route reads them or where httplib gave up on
// them itself, answered in the same JSON error shape as everything else.

#include "http/api_error.hpp"

#include <httplib.h>

#include <optional>

namespace emr {

class route_table;

/// Framing emr will not read a body by, checked before routing: a repeated Host, Content-Length,
/// Content-Type or Authorization (400), HTTP/1.1 without Host (400), a Content-Length that is not
/// a byte count (400), a Content-Encoding other than identity (415), a chunked body (411), or a
/// POST, PUT or PATCH without Content-Length (411).
std::optional<api_error> refuse_framing(const httplib::Request& req);

/// Answers what httplib refused without a route: 405 with Allow for a known path asked with
/// another method, else 404; 501 for a method no route takes; 408 for a body that stopped short
/// of its Content-Length; 413; 414; else 400.
void answer_refusal(const httplib::Request& req, httplib::Response& res, const route_table& routes);

} // namespace emr
