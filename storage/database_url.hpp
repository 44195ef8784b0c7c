#pragma once
// A database URL as it may be shown: in logs, errors, `emr config show` and GET /admin/config.

#include <string>
#include <string_view>

namespace emr {

/// The URL with its password masked, in either libpq form: postgresql://user:***@host/db, or
/// password=*** in a keyword string or a query parameter.
std::string redacted_database_url(std::string_view url);

} // namespace emr
