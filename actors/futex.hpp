#pragma once
// Sleeping on a 32-bit word until another thread changes it (Linux futex(2)), for the two
// hand-offs every request makes between threads: a job to an HTTP thread, and a caller's outcome
// back to it.
//
// A condition variable needs a mutex, and glibc's wait takes that mutex back marked as contended,
// so every wait costs a futex wake-up system call more on its unlock; std::atomic::wait
// (libstdc++ 12) yields four times before it sleeps. Here a wait is one system call, and a wake
// is one, made only when the other side said it sleeps.

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <optional>

namespace emr::futex {

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t) &&
              std::atomic<std::uint32_t>::is_always_lock_free);

/// Sleeps while `word` holds `expected`, up to `timeout` (none: until woken). It may also return
/// early (a signal, another waker): callers look at the word again.
inline void wait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                 std::optional<std::chrono::nanoseconds> timeout = std::nullopt) {
  timespec relative{};
  if (timeout) {
    auto left = std::max(*timeout, std::chrono::nanoseconds{0});
    relative.tv_sec = static_cast<std::time_t>(left.count() / 1'000'000'000);
    relative.tv_nsec = static_cast<long>(left.count() % 1'000'000'000);
  }
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected,
            timeout ? &relative : nullptr, nullptr, 0);
}

/// Wakes one thread sleeping on `word`.
inline void wake_one(std::atomic<std::uint32_t>& word) {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, 1, nullptr,
            nullptr, 0);
}

} // namespace emr::futex
