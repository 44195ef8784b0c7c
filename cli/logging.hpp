#pragma once
// Process-wide logging: level and text/JSON format from [log]. Never given inputs or secrets.

#include "cli/config.hpp"

#include <string>

namespace emr {

void setup_logging(const log_settings& settings);
/// Writes what is queued and stops the logging thread.
void stop_logging();
/// A warning written on the calling thread, after what is queued, for the last words of a
/// process about to end without waiting for the logging thread.
void warn_before_exit(const std::string& message);

} // namespace emr
