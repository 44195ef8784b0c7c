#pragma once
// emr's actor system at a glance: every atom and every actor's typed interface.
//
// A caller's texts travel: HTTP thread -> request actor -> batcher (one per provider)
// -> retry supervisor (one per upstream call) -> upstream worker (detached; blocking HTTP)
// and back; the health actor hears every attempt and pushes verdicts to the batchers. In a fleet,
// each batcher of a provider with a set limit takes grants of the fleet's shared budget from the
// fleet budget actor before it sends.

#include "actors/actor_stats.hpp"
#include "actors/messages.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/replies_to.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

namespace emr::atom {
using embed = caf::atom_constant<caf::atom("embed")>;
using flush = caf::atom_constant<caf::atom("flush")>;
using done = caf::atom_constant<caf::atom("done")>;
using condition = caf::atom_constant<caf::atom("condition")>;
using probe = caf::atom_constant<caf::atom("probe")>;
using status = caf::atom_constant<caf::atom("status")>;
using drain = caf::atom_constant<caf::atom("drain")>;
using hurry = caf::atom_constant<caf::atom("hurry")>;
using call = caf::atom_constant<caf::atom("call")>;
using retry = caf::atom_constant<caf::atom("retry")>;
using report = caf::atom_constant<caf::atom("report")>;
using attach = caf::atom_constant<caf::atom("attach")>;
using detach = caf::atom_constant<caf::atom("detach")>;
using tick = caf::atom_constant<caf::atom("tick")>;
using ready = caf::atom_constant<caf::atom("ready")>;
using wait_until = caf::atom_constant<caf::atom("waituntil")>;
using share_over = caf::atom_constant<caf::atom("shareover")>;
using grant = caf::atom_constant<caf::atom("grant")>;
using pause = caf::atom_constant<caf::atom("pause")>;
} // namespace emr::atom

namespace emr {

/// UPSTREAM WORKER: owns one keep-alive HTTP client to a provider; runs detached because it blocks.
using upstream_actor = caf::typed_actor<
    // Posts the body, decodes a 2xx answer into vectors, and reports how the attempt went.
    caf::replies_to<atom::call, upstream_call>::with<upstream_reply>,
    // Answers once every call sent before it is done: how a batcher learns that a worker whose
    // call outlived its supervisor's patience is free again.
    caf::reacts_to<atom::ready>>;

/// RETRY SUPERVISOR: owns one upstream batch call from first attempt to settled outcome.
using supervisor_actor = caf::typed_actor<
    // INTERNAL: a backoff wait is over; make the next attempt.
    caf::reacts_to<atom::retry>,
    // From its batcher: a caller whose texts this call carries joined it and waits until then.
    caf::reacts_to<atom::wait_until, clock_time>>;

/// BATCHER: one per provider; merges all callers' chunks into few, full upstream calls.
using batcher_actor = caf::typed_actor<
    // Queues callers' chunks; answers once the upstream calls holding them all have settled.
    caf::replies_to<atom::embed, chunk_requests>::with<chunk_results>,
    // INTERNAL: a hold or pause set with this generation may be over; reconsider flushing.
    caf::reacts_to<atom::flush, std::uint64_t>,
    // From a retry supervisor: its batch is settled.
    caf::reacts_to<atom::done, batch_outcome>,
    // From the health actor: the provider was sin-binned or restored.
    caf::reacts_to<atom::condition, provider_condition>,
    // From the health actor: send one small real call to see whether a sin-binned provider is back.
    caf::reacts_to<atom::probe>,
    // From the provider directory: the health actor was restarted; report to and attach to this
    // one (a health_actor, passed untyped because the two interfaces name each other).
    caf::reacts_to<atom::attach, caf::actor>,
    // Stop taking chunks, flush what is queued at once, and exit once every caller is answered.
    caf::reacts_to<atom::drain>,
    // Shutdown: keep taking chunks but stop holding any for company; send as slots free up.
    caf::reacts_to<atom::hurry>,
    // From the fleet budget actor: a replica's call to this provider was refused with 429 and
    // named its wait, these seconds from now; no replica sends before it is over.
    caf::reacts_to<atom::pause, double>,
    // A snapshot of the batcher's own numbers for /admin/stats and /metrics.
    caf::replies_to<atom::status>::with<batcher_stats>>;

/// HEALTH: hears every upstream attempt; keeps rolling metrics and the sin-bin.
using health_actor = caf::typed_actor<
    // One attempt's outcome.
    caf::reacts_to<atom::report, call_report>,
    // A provider's batcher started: track it and push verdicts to it.
    caf::reacts_to<atom::attach, std::string, batcher_actor>,
    // A provider was removed.
    caf::reacts_to<atom::detach, std::string>,
    // INTERNAL: periodic sin-bin expiry and probe scheduling.
    caf::reacts_to<atom::tick>,
    // Per-provider state and metrics for /health/providers, /admin/stats and /metrics.
    caf::replies_to<atom::status>::with<health_stats>>;

/// FLEET BUDGET: one per replica of a fleet; takes grants of the providers' shared budgets from
/// the shared store. Detached, because it blocks on the database.
using fleet_budget_actor = caf::typed_actor<
    // From a batcher: grant some of the provider's shared budget (reachable = false: the store
    // could not be asked).
    caf::replies_to<atom::grant, budget_ask>::with<budget_grant>,
    // From a batcher: the provider refused with 429 and asked for these seconds; every replica
    // waits them out.
    caf::reacts_to<atom::pause, std::string, double>,
    // From `emr serve`'s change listener: some replica recorded a pause; tell this replica's
    // batchers of the providers paused now.
    caf::reacts_to<atom::pause>,
    // INTERNAL: say this replica is alive and count the fleet.
    caf::reacts_to<atom::tick>>;

} // namespace emr

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(emr::chunk_requests)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(emr::chunk_results)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(emr::upstream_call)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(emr::upstream_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(emr::call_report)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(emr::batch_outcome)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(emr::provider_condition)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(emr::batcher_stats)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(emr::health_stats)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(emr::clock_time)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(emr::budget_ask)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(emr::budget_grant)
