// How one provider speaks on the wire: the requests it accepts, the answers it renders, and how
// it words each refusal. The server asks the wire format of the route a call came in on; one
// implementation per provider (voyage.cpp, cohere.cpp for v1 and v2, openai.cpp).
#pragma once

#include "tools/fake_provider/embed_job.hpp"
#include "tools/fake_provider/faults.hpp"
#include "tools/fake_provider/rate_limiter.hpp"

#include <boost/json.hpp>
#include <httplib.h>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>

namespace emr::fake {

class wire_format {
public:
  virtual ~wire_format() = default;

  /// Fills `job` from a request body, or says why the provider would refuse it.
  virtual std::optional<api_error> validate(const boost::json::object& body,
                                            embed_job& job) const = 0;
  /// The answer to a valid request; `shape` breaks it the way a fault asked (faults.hpp).
  virtual std::string render(const embed_job& job, malformed shape) const = 0;
  virtual std::string error_body(const api_error& e) const = 0;

  /// The 401 for a missing (empty) or wrong API key.
  virtual api_error key_error(const std::string& key) const = 0;
  /// The 400 for a body that is not JSON, or not a JSON object.
  virtual api_error json_error(const boost::json::error_code& ec) const = 0;
  /// The error an injected status answers with, worded like the provider's own.
  virtual api_error injected_error(int status, const std::string& model) const = 0;
  /// The 400 a text carrying the poison marker gets: as if it were over the context length.
  virtual api_error poison_error(std::size_t index, const std::string& model) const = 0;
  virtual api_error rate_limit_error(const rate_limiter::verdict& v,
                                     const std::string& model) const = 0;

  /// The answer's vectors carry no index, so a drawn fault must not be a mere reordering.
  virtual bool positional_rows() const { return false; }
  /// Headers on every answer, success or not, computed once the call is over.
  virtual void add_answer_headers(httplib::Headers& /*headers*/, rate_limiter& /*limiter*/,
                                  const std::string& /*window_key*/,
                                  std::chrono::steady_clock::time_point /*started*/) const {}
};

const wire_format& voyage_wire();
const wire_format& cohere_v1_wire();
const wire_format& cohere_v2_wire();
const wire_format& openai_wire();

/// An injected status no provider has its own wording for (502 to 504, or any other).
api_error injected_status_error(int status);

} // namespace emr::fake
