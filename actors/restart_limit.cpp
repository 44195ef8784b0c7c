#include "actors/restart_limit.hpp"

#include <caf/exit_reason.hpp>

namespace emr {

bool stopped_abnormally(const caf::error& exit_reason) {
  return exit_reason && exit_reason != caf::exit_reason::user_shutdown;
}

bool restart_limit::allow(clock_time now) {
  while (!recent_.empty() && recent_.front() + settings_.window <= now)
    recent_.pop_front();
  if (recent_.size() >= static_cast<std::size_t>(settings_.max_restarts))
    return false;
  recent_.push_back(now);
  return true;
}

} // namespace emr
