#pragma once
// The one rule for text a caller chose that leaves emr other than inside a JSON body: in a header
// emr sends (X-Request-Id, upstream or back to the caller), a log line or a metrics label, it
// appears only as a token, 1 to 128 bytes of [A-Za-z0-9._-]; a log line may instead quote it as
// a JSON string when the reader needs the text itself (a path, a name). Such text cannot end a
// header, add one, split a log line or break a label, whatever the reader. JSON bodies need no
// such rule: their serializer escapes every string.

#include <string>
#include <string_view>

namespace emr {

/// Whether `text` is a token: 1 to 128 bytes of [A-Za-z0-9._-].
bool is_token(std::string_view text);

/// `text` itself when it is a token; otherwise `x` and 16 hex digits of its hash, so a caller's
/// odd id (a batch sub-request's "order #1", a CR LF) still leaves a stable trace of its own.
std::string to_token(std::string_view text);

/// `text` as a JSON string, quotes included: control characters and quotes escaped, for a log line.
std::string json_quoted(std::string_view text);

} // namespace emr
