#pragma once
// What an upstream call costs in time, as a provider's answers show it: a fixed part and a part
// per token. A provider's model works through every token of a call before it answers, so a
// large call takes longer than a small one (at the bench's 20 ms a call and 10 µs a token, 128
// short texts take a third longer than one). While the provider has calls to spare, a batch then
// answers sooner as a few smaller calls. Pure arithmetic; the batcher feeds it and asks it.

#include <chrono>
#include <cstddef>

namespace emr {

class call_cost {
public:
  /// A call of `tokens` (emr's estimate) was answered at its first attempt after `latency`.
  void on_answer(std::size_t tokens, std::chrono::nanoseconds latency);

  /// Nanoseconds a further token adds to a call: the slope of a least-squares line through
  /// recent answers, the older weighing less. 0 until answers of different sizes show it.
  double ns_per_token() const { return ns_per_token_; }
  /// How long a call takes, smoothed over recent answers; 0 before the first.
  std::chrono::nanoseconds typical() const { return typical_; }

  /// Into how many calls, from 1 to `most`, a batch of `tokens` is best spread: each further call
  /// must shorten the batch by at least a twentieth of a typical call; less drowns in the
  /// provider's own jitter and in what the further call costs emr.
  std::size_t calls_for(std::size_t tokens, std::size_t most) const;

private:
  // Sums of the weighted least-squares fit: weight, tokens, latency, tokens², tokens × latency.
  double weight_ = 0, tokens_ = 0, latency_ = 0, tokens_sq_ = 0, cross_ = 0;
  double ns_per_token_ = 0;
  std::chrono::nanoseconds typical_{0};
};

} // namespace emr
