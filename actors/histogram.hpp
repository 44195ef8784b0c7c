#pragma once
// A fixed-bucket histogram, kept by whoever observes the values and copied into its stats, so
// /admin/stats and /metrics show the same numbers.

#include <cstdint>
#include <vector>

namespace emr {

class histogram {
public:
  explicit histogram(std::vector<double> upper_bounds)
      : bounds_(std::move(upper_bounds)), counts_(bounds_.size(), 0) {}

  void observe(double value) {
    for (std::size_t i = 0; i < bounds_.size(); ++i)
      if (value <= bounds_[i])
        ++counts_[i];
    ++count_;
    sum_ += value;
  }

  /// Each bucket's upper bound, and how many values were at most that (cumulative, as Prometheus
  /// counts them).
  const std::vector<double>& upper_bounds() const { return bounds_; }
  const std::vector<std::uint64_t>& cumulative_counts() const { return counts_; }
  std::uint64_t count() const { return count_; }
  double sum() const { return sum_; }

  /// Latency buckets in seconds, from a millisecond to a minute.
  static std::vector<double> latency_bounds() {
    return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
  }
  /// Texts-per-call buckets.
  static std::vector<double> size_bounds() {
    return {1, 2, 4, 8, 16, 32, 64, 96, 128, 256, 512, 1024, 2048};
  }

private:
  std::vector<double> bounds_;
  std::vector<std::uint64_t> counts_;
  std::uint64_t count_ = 0;
  double sum_ = 0;
};

} // namespace emr
