#pragma once
// Requests refused at the HTTP level, before any route reads them or where httplib gave up on
// them itself, answered in the same JSON error shape as everything else.

#include "http/api_error.hpp"

#include <httplib.h>

#include <optional>

namespace emr {

class route_table;

/// Refuses, before its body is read, a request emr will not take, and answers it with
/// `Connection: close` (the body stays unread): PRI, HTTP/2's preface (501); a repeated Host,
/// Content-Length, Content-Type or Authorization (400); HTTP/1.1 without Host (400); a
/// Content-Length that is not a byte count (400) or is over `max_body_bytes` (413); a
/// Content-Encoding other than identity (415); a chunked body (411); a POST, PUT or PATCH
/// without Content-Length (411); a body that is not JSON (415); a body for a path and method no
/// route takes (405 with Allow, or 404). False when the request may go on to its route.
bool refuse_before_body(const httplib::Request& req, httplib::Response& res,
                        const route_table& routes, std::size_t max_body_bytes);

/// Reads a route's body into `req.body` through its content reader: a route reads it only once
/// it has checked who sent it. False, with the answer sent (408: the body stopped short of its
/// Content-Length) and the connection closing after it, when it could not.
bool read_body(const httplib::Request& req, httplib::Response& res,
               const httplib::ContentReader& read);

/// Answers `error` to a request whose body is left unread: the connection closes after it.
void refuse_unread(const httplib::Request& req, httplib::Response& res, const api_error& error);

/// Answers what httplib refused without a route: 405 with Allow for a known path asked with
/// another method, else 404; 501 for a method no route takes; 414; 416 for a Range httplib
/// cannot parse; else 400.
void answer_refusal(const httplib::Request& req, httplib::Response& res, const route_table& routes);

} // namespace emr
