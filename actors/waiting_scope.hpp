#pragma once
// A stretch in which the calling thread waits rather than works: for a socket, a caller's
// outcome, the store, argon2's memory-hard hash. The pool that owns the thread
// (http/warm_thread_pool.hpp) runs only as many of its threads at once as the cores can keep
// busy; one that waits lends its place to another meanwhile, so the requests queued behind it
// are not held up. Threads of no such pool (the actors', the gate's) mark nothing.

namespace emr {

class waiting_scope {
public:
  /// What a pool does when one of its threads starts and stops waiting.
  class pool {
  public:
    virtual void thread_waits() = 0;
    virtual void thread_resumes() = 0;

  protected:
    ~pool() = default;
  };

  waiting_scope() : owner_(mark().owner) {
    // Only the outermost scope counts: a wait inside a wait lends no second place.
    if (owner_ && mark().depth++ == 0)
      owner_->thread_waits();
  }
  ~waiting_scope() {
    if (owner_ && --mark().depth == 0)
      owner_->thread_resumes();
  }
  waiting_scope(const waiting_scope&) = delete;
  waiting_scope& operator=(const waiting_scope&) = delete;

  /// Makes `owner` the pool of the calling thread; a pool's threads call it once, first.
  static void belong_to(pool* owner) { mark().owner = owner; }

private:
  struct thread_mark {
    pool* owner = nullptr;
    int depth = 0;
  };
  static thread_mark& mark() {
    thread_local thread_mark m;
    return m;
  }

  pool* owner_;
};

} // namespace emr
