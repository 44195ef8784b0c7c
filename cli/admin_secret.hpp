#pragma once
// The admin secret as `emr serve` and the admin commands read it, so that both hold the same bytes.

#include <string>
#include <string_view>

namespace emr {

/// The secret without leading or trailing spaces, tabs, CRs and LFs: one mounted from a file
/// usually ends in a line break, which the server would keep in what it compares and the client
/// would send as the end of its header block. `source` ("EMR_ADMIN_SECRET", "--admin-secret")
/// names it in the command_failure thrown when a control character is left inside.
std::string admin_secret_from(std::string_view raw, std::string_view source);

} // namespace emr
