// Fuzzes emr.toml: any bytes give problems, never an exception or a crash, and the configuration
// that results still renders for `emr config show`.

#include "cli/config.hpp"

#include <boost/json/serialize.hpp>

#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto loaded = emr::parse_config({reinterpret_cast<const char*>(data), size}, "fuzz.toml");
  boost::json::serialize(emr::config_json(loaded.config));
  return 0;
}
