#include "http/answer_bodies.hpp"

namespace emr {

kept_buffers<std::string>& answer_bodies() {
  // Never destroyed: an answer still being written at exit gives its body back after static
  // destruction.
  static auto* bodies = new kept_buffers<std::string>(32 << 20, 256 << 10, false);
  return *bodies;
}

} // namespace emr
