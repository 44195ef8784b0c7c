#pragma once
// Process-wide logging: level and text/JSON format from [log]. Never given inputs or secrets.

#include "cli/config.hpp"

namespace emr {

void setup_logging(const log_settings& settings);
/// Writes what is queued and stops the logging thread.
void stop_logging();

} // namespace emr
