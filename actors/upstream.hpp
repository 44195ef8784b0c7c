#pragma once
// The upstream worker: the only place emr blocks on a provider, on a thread of its own.

#include "actors/actors.hpp"

#include <chrono>
#include <memory>

namespace httplib {
class ClientImpl;
}

namespace emr {

struct upstream_settings {
  std::chrono::seconds connect_timeout{5};
  std::chrono::seconds read_timeout{30};
};

struct upstream_state {
  std::unique_ptr<httplib::ClientImpl> client; ///< keep-alive connection, reused across calls
  std::string path;
  std::string api_key_env;
  std::chrono::microseconds read_timeout{0};
  /// How long a call may take in all before its supervisor gives up on it (see supervisor.hpp):
  /// an answer still arriving then is cut off, so the worker is free again.
  std::chrono::microseconds longest_call{0};
  std::shared_ptr<const embedding_provider> adapter;
  static inline const char* name = "upstream_worker";

  upstream_state();
  ~upstream_state();
  /// Makes one attempt; never throws.
  upstream_reply post(const upstream_call& call);
};

/// Spawn with caf::detached: every call blocks this actor's thread until the provider answers.
upstream_actor::behavior_type upstream_worker(upstream_actor::stateful_pointer<upstream_state> self,
                                              provider_spec spec,
                                              std::shared_ptr<const embedding_provider> adapter,
                                              upstream_settings settings);

} // namespace emr
