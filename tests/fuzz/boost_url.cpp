// Boost.URL built with the fuzzing instrumentation instead of linked from Debian's library, so
// coverage and sanitizers reach into the parser that reads every provider endpoint.
#include <boost/url/src.hpp>
