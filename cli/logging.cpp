#include "cli/logging.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

namespace emr {

namespace {

// Renders the message as a JSON string so any text in it stays one valid JSON line.
class json_message_flag : public spdlog::custom_flag_formatter {
public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    auto text = boost::json::serialize(
      boost::json::string{std::string_view{msg.payload.data(), msg.payload.size()}});
    dest.append(text.data(), text.data() + text.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<json_message_flag>();
  }
};

} // namespace

void setup_logging(const log_settings& settings) {
  auto logger = spdlog::stderr_logger_mt("emr");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(settings.level));
  if (settings.format == "json") {
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<json_message_flag>('*').set_pattern(
      R"({"time":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","msg":%*})");
    spdlog::set_formatter(std::move(formatter));
  } else {
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %l %v");
  }
  spdlog::flush_on(spdlog::level::info);
}

} // namespace emr
