#pragma once
// Process-wide logging: level and text/JSON format from [log]. Never given inputs or secrets.

#include "cli/config.hpp"

#include <string>

namespace emr {

void setup_logging(const log_settings& settings);
/// Writes what is buffered and stops the periodic flush.
void stop_logging();
/// A warning written at once, after what is buffered, for the last words of a process about to
/// end.
void warn_before_exit(const std::string& message);

} // namespace emr
