// What the wire formats share; see wire_format.hpp.

#include "tools/fake_provider/wire_format.hpp"

namespace emr::fake {

// In OpenAI's shape, since only OpenAI's error body shows more than the status and message.
api_error injected_status_error(int status) {
  if (status >= 502 && status <= 504)
    return {status,
            "Service unavailable: the servers are experiencing high traffic. Please retry your "
            "requests after a brief wait.",
            "server_error",
            {},
            {}};
  return {status,
          "Injected fault: status " + std::to_string(status) + ".",
          status >= 500 ? "server_error" : "invalid_request_error",
          {},
          {}};
}

} // namespace emr::fake
