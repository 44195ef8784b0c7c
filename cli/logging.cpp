#include "cli/logging.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

#include <cerrno>
#include <chrono>
#include <mutex>
#include <string>

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

// Every request logs a line. Written one write(2) each, by a logging thread woken for each, the
// lines cost every request a hand-off and a system call; here they gather in a buffer that goes
// out in one write when it fills, every second (flush_every), and at once behind a warning or
// worse, so a problem is never held back. A request's thread appends under the sink's lock, and
// waits on a write(2) only once in many lines.
class buffered_stderr_sink final : public spdlog::sinks::base_sink<std::mutex> {
public:
  ~buffered_stderr_sink() override { write_out(); }

protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t line;
    formatter_->format(msg, line);
    buffer_.append(line.data(), line.size());
    if (buffer_.size() >= write_at_bytes || msg.level >= spdlog::level::warn)
      write_out();
  }
  void flush_() override { write_out(); }

private:
  static constexpr std::size_t write_at_bytes = 32 * 1024;

  void write_out() {
    std::size_t done = 0;
    while (done < buffer_.size()) {
      auto n = ::write(STDERR_FILENO, buffer_.data() + done, buffer_.size() - done);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break; // stderr is gone: the lines have nowhere to go
      done += static_cast<std::size_t>(n);
    }
    buffer_.clear();
  }

  std::string buffer_;
};

} // namespace

void setup_logging(const log_settings& settings) {
  auto logger = std::make_shared<spdlog::logger>("emr", std::make_shared<buffered_stderr_sink>());
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
  // A warning goes out at once, behind every line still buffered.
  spdlog::warn(message);
  spdlog::default_logger()->flush();
}

} // namespace emr
