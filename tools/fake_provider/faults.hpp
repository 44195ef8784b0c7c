// The fault language of POST /_faults: a script of steps, then a fixed step or seeded random
// draws. Every embeddings call consumes one step, which may delay it, fail it with a status, or
// break its answer in one of the ways a router must notice. Two bodies, scripted and drawn:
//   {"script": [{"status": 429, "retry_after": "1"}, {"malformed": "wrong_dims"}],
//    "then": {"delay_ms": 50}}   or   {"p429": 0.05, "retry_after": "1", "p_malformed": 0.01}
#pragma once

#include "tools/fake_provider/embed_job.hpp"

#include <boost/json/value.hpp>

#include <cstdint>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace emr::fake {

/// How an answer is broken. wrong_dims: every vector half as long as it should be, as from a
/// provider that ignores the dimensions asked for; oversized: a valid answer followed by 4 MiB of
/// whitespace, longer than its rows could ever take. Only a script asks for these two, so seeded
/// random draws replay as before.
enum class malformed {
  none,
  non_json,
  wrong_count,
  bad_index,
  missing_index,
  truncated,
  nan,
  wrong_dims,
  oversized
};

/// What to do with one embeddings call; the default answers normally.
struct fault_step {
  int status = 0; // 0 or 200: answer normally
  std::string retry_after;
  std::string retry_after_ms;
  malformed shape = malformed::none;
  long delay_ms = 0;
};

struct fault_plan {
  std::vector<fault_step> script;
  std::optional<fault_step> then;
  double p429 = 0, p500 = 0, p_timeout = 0, p_malformed = 0, p_slow = 0;
  long timeout_ms = 10000, slow_ms = 500;
  std::string retry_after;
};

/// The plan a /_faults body describes; throws std::invalid_argument saying what is wrong.
fault_plan parse_fault_plan(const boost::json::value& v);

/// The current fault plan; every embeddings call consumes one step from it.
class fault_injector {
public:
  explicit fault_injector(std::uint64_t seed) : seed_(seed), rng_(seed) {}

  void replace(fault_plan plan);
  /// Back to answering normally, with the random draws replaying from the seed.
  void reset();
  /// `positional_rows`: the answer's vectors carry no index (Cohere).
  fault_step next_step(bool positional_rows);

private:
  fault_step draw(bool positional_rows);
  bool chance(double p);

  std::mutex mutex_;
  std::uint64_t seed_;
  std::mt19937_64 rng_;
  fault_plan plan_;
  std::size_t next_ = 0;
};

/// The request as the provider would serve it under `shape` (wrong_dims halves its dimensions).
void apply_to_job(malformed shape, embed_job& job);

/// Breaks a rendered answer the ways that live outside its JSON: not JSON at all, or cut short.
void apply_to_answer(malformed shape, std::string& body, std::string& content_type);

} // namespace emr::fake
