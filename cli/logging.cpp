#include "cli/logging.hpp"

#include <spdlog/async.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

#include <chrono>
#include <thread>

namespace emr {

namespace {

// Renders the message as a JSON string so any text in it stays one valid JSON line.
class json_message_flag : public spdlog::custom_flag_formatter {
public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
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
  // Every request logs a line; writing it on the request's own thread under the sink's lock
  // would make callers queue behind each other's write(2). One logging thread does the writes.
  spdlog::init_thread_pool(16384, 1);
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::async_logger>("emr", sink, spdlog::thread_pool(),
                                                       spdlog::async_overflow_policy::block);
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
  spdlog::flush_every(std::chrono::seconds{1});
}

void stop_logging() {
  spdlog::shutdown();
}

void warn_before_exit(const std::string& message) {
  // An async logger's flush() only queues a request; give the queue a moment to reach the sink.
  if (auto pool = spdlog::thread_pool())
    for (int i = 0; i < 200 && pool->queue_size() > 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds{1});
  // The same sinks (and so the same format), written here and now.
  auto logger = spdlog::default_logger();
  spdlog::logger now{logger->name(), logger->sinks().begin(), logger->sinks().end()};
  now.set_level(logger->level());
  now.warn(message);
  now.flush();
}

} // namespace emr
