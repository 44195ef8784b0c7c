#include "actors/prepared_blocks.hpp"

#include "actors/futex.hpp"
#include "providers/fresh_pages.hpp"

#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#include <new>
#include <system_error>

namespace emr {

namespace {

void* map_block() {
  void* block = ::mmap(nullptr, prepared_blocks::block_bytes, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return block == MAP_FAILED ? nullptr : block;
}

} // namespace

prepared_blocks::prepared_blocks(std::size_t most_ready, bool write_ahead)
    : most_ready_(most_ready), write_ahead_(write_ahead),
      ready_(std::make_unique<std::atomic<void*>[]>(most_ready)) {}

prepared_blocks::~prepared_blocks() {
  stopping_.store(true, std::memory_order_release);
  if (writer_.joinable()) {
    // Back to normal priority, so that a busy machine does not hold the exit behind the writer's
    // next page. Only a privileged process may leave idle priority: otherwise the writer stops
    // at the next page it gets a core for.
    sched_param normal{};
    ::pthread_setschedparam(writer_.native_handle(), SCHED_OTHER, &normal);
    wanted_.fetch_add(1, std::memory_order_release);
    futex::wake_one(wanted_);
    writer_.join();
  }
  for (std::size_t i = 0; i < most_ready_; ++i)
    if (auto* block = ready_[i].exchange(nullptr))
      ::munmap(block, block_bytes);
}

void* prepared_blocks::take() {
  // Started by the first take, so that a cache whose slabs never reach a block costs nothing.
  if (write_ahead_ && most_ready_ > 0)
    std::call_once(started_, [this] {
      try {
        writer_ = std::thread([this] { write_ahead(); });
      } catch (const std::system_error&) {
        // No thread to be had (a limit on threads): blocks are mapped in as they are taken.
      }
    });
  void* block = nullptr;
  for (std::size_t i = 0; i < most_ready_ && !block; ++i)
    if (ready_[i].load(std::memory_order_relaxed))
      block = ready_[i].exchange(nullptr, std::memory_order_acquire);
  if (writer_.joinable()) {
    wanted_.fetch_add(1, std::memory_order_release);
    futex::wake_one(wanted_);
  }
  if (block)
    return block;
  block = map_block();
  if (!block)
    throw std::bad_alloc{};
  map_in_for_writing(block, block_bytes);
  return block;
}

void prepared_blocks::give_back(void* block) {
  for (std::size_t i = 0; i < most_ready_; ++i) {
    void* empty = nullptr;
    if (!ready_[i].load(std::memory_order_relaxed) &&
        ready_[i].compare_exchange_strong(empty, block, std::memory_order_release))
      return;
  }
  ::munmap(block, block_bytes);
}

std::size_t prepared_blocks::ready() const {
  std::size_t n = 0;
  for (std::size_t i = 0; i < most_ready_; ++i)
    n += ready_[i].load(std::memory_order_relaxed) != nullptr;
  return n;
}

void prepared_blocks::write_ahead() {
  // Idle priority: the writing waits for a core nobody else wants, and never delays a request.
  sched_param idle{};
  ::pthread_setschedparam(::pthread_self(), SCHED_IDLE, &idle);
  ::pthread_setname_np(::pthread_self(), "emr.cache-pages");
  static const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  for (;;) {
    // The count first, then the stop: a stop set after this load comes with a count that makes
    // the wait below return at once.
    auto seen = wanted_.load(std::memory_order_acquire);
    if (stopping_.load(std::memory_order_acquire))
      return;
    for (std::size_t i = 0; i < most_ready_ && !stopping_.load(std::memory_order_relaxed); ++i) {
      if (ready_[i].load(std::memory_order_relaxed))
        continue;
      auto* block = static_cast<char*>(map_block());
      if (!block)
        break; // no memory now: the next take tries again
      // Written, not just mapped in: the first write is what costs (see the header). A page at a
      // time, looking out for the stop: at idle priority on a busy machine a block may take long,
      // and the process's exit waits for this thread.
      for (std::size_t at = 0; at < block_bytes; at += page) {
        if (stopping_.load(std::memory_order_relaxed)) {
          ::munmap(block, block_bytes);
          return;
        }
        reinterpret_cast<volatile char*>(block)[at] = 0;
      }
      void* empty = nullptr;
      if (!ready_[i].compare_exchange_strong(empty, block, std::memory_order_release))
        ::munmap(block, block_bytes); // a block given back took the slot meanwhile
    }
    futex::wait(wanted_, seen);
  }
}

} // namespace emr
