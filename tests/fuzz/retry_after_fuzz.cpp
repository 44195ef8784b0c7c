// Fuzzes the Retry-After and retry-after-ms headers of a provider's 429 or 5xx, and the retry
// schedule they feed: a wait is never negative, never over a day, never past the budget.

#include "actors/retry_schedule.hpp"

#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using std::chrono::milliseconds;
  // Header values hold no line break, so one splits the two headers.
  std::string_view input{reinterpret_cast<const char*>(data), size};
  auto line_break = input.find('\n');
  auto retry_after = input.substr(0, line_break);
  auto retry_after_ms =
      line_break == std::string_view::npos ? std::string_view{} : input.substr(line_break + 1);
  // A fixed now keeps every run reproducible: Mon, 01 Jan 2024 00:00:00 GMT.
  auto now = std::chrono::system_clock::from_time_t(1'704'067'200);

  auto wait = emr::parse_retry_after(retry_after, retry_after_ms, now);
  if (wait && (*wait < milliseconds{0} || *wait > milliseconds{86'400'000}))
    std::abort();
  emr::retry_settings settings;
  emr::retry_schedule schedule{settings, size};
  // Attempts that take no time: the budget then bounds the waits alone.
  for (int failed = 1; auto next = schedule.next_wait(failed, wait, schedule.waited()); ++failed)
    if (*next < milliseconds{0} || schedule.waited() > settings.budget)
      std::abort();
  return 0;
}
