#include "providers/http_client.hpp"

#include <httplib.h>

namespace emr {

std::unique_ptr<httplib::ClientImpl> make_http_client(const endpoint& to) {
  if (to.tls)
    return std::make_unique<httplib::SSLClient>(to.host, to.port);
  return std::make_unique<httplib::ClientImpl>(to.host, to.port);
}

} // namespace emr
