// Boost.JSON built with the fuzzing instrumentation instead of linked from Debian's library, so
// coverage and sanitizers reach into the parser that reads every caller's and provider's bytes.
#include <boost/json/src.hpp>
