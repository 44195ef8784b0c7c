#include "http/caller_auth.hpp"

#include "actors/arrivals.hpp"
#include "actors/waiting_scope.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <strings.h>

namespace emr {

namespace {

// How many failing subjects (key ids, client addresses) are remembered: some MB at most.
constexpr std::size_t tracked_subjects = 65536;
constexpr std::size_t verified_key_cache_capacity = 10000;
constexpr std::chrono::seconds verified_key_ttl{300};

api_error unauthorized(std::string message) {
  return api_error{401, "authentication_error", std::move(message), {}, "invalid_api_key", -1};
}

api_error invalid_key() {
  return unauthorized("invalid API key");
}

api_error revoked_key() {
  return unauthorized("this API key was revoked");
}

api_error too_many_failures(std::chrono::milliseconds wait) {
  api_error e{429, "rate_limited", {}, {}, "too_many_failed_attempts", wait.count()};
  e.message =
      "too many failed authentication attempts for this key or from this address; retry after " +
      std::to_string(*retry_after(e)) + " s";
  return e;
}

api_error verifications_busy() {
  return api_error{503, "server_busy", "too many key verifications in progress; retry shortly", {},
                   {},  1000};
}

} // namespace

std::string_view bearer_token(std::string_view authorization) {
  constexpr std::string_view scheme = "bearer ";
  if (authorization.size() <= scheme.size() ||
      strncasecmp(authorization.data(), scheme.data(), scheme.size()) != 0)
    return {};
  auto token = authorization.substr(scheme.size());
  while (!token.empty() && token.front() == ' ')
    token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ')
    token.remove_suffix(1);
  return token;
}

caller_auth::caller_auth(store& db, argon2_params params, auth_limits limits,
                         secret_verifier verifier, failure_budget::clock now)
    : db_(db), params_(params), verifier_(std::move(verifier)), limits_(limits),
      cache_(verified_key_cache_capacity, verified_key_ttl, now),
      key_failures_(limits.failures_per_minute_per_key, tracked_subjects, now),
      address_failures_(limits.failures_per_minute_per_address, tracked_subjects, now),
      slots_(concurrent_verifications(limits)),
      flusher_(std::chrono::seconds{5}, [this] { flush_last_used(); }) {}

caller_auth::~caller_auth() = default;

std::variant<cached_key, api_error> caller_auth::authenticate(std::string_view authorization,
                                                              std::string_view client_address) {
  auto result = [&]() -> outcome {
    if (authorization.empty())
      return unauthorized("missing Authorization header; send 'Authorization: Bearer emr_...'");
    auto token = bearer_token(authorization);
    if (token.empty())
      return unauthorized("the Authorization header must be 'Bearer <key>'");
    auto key = parse_key(token);
    if (!key)
      return invalid_key();
    return verify(key->public_id, key->secret, client_address);
  }();
  if (auto ok = std::get_if<cached_key>(&result)) {
    // Last-used times are approximate: under a burst, a thread that finds the table busy keeps
    // its note and hands it over next time, rather than making every caller queue for it.
    thread_local std::map<std::int64_t, std::int64_t> pending;
    pending[ok->key_id] = unix_now();
    if (touched_mutex_.try_lock()) {
      for (const auto& [id, when] : pending)
        touched_[id] = std::max(touched_[id], when);
      touched_mutex_.unlock();
      pending.clear();
    }
    return result;
  }
  const auto& refused = std::get<api_error>(result);
  // The store being out of reach is neither the caller's failure nor argon2's saturation.
  if (refused.type != "store_unavailable")
    ++(refused.status == 429 ? rate_limited_ : refused.status == 503 ? busy_ : failures_);
  return result;
}

caller_auth::outcome caller_auth::verify(std::string_view public_id, std::string_view secret,
                                         std::string_view client_address) {
  if (auto hit = cache_.lookup(public_id, secret))
    return *hit;
  if (auto why = cache_.recently_rejected(public_id, secret))
    return *why == verified_key_cache::rejection::revoked ? revoked_key() : invalid_key();
  // The store and argon2 take milliseconds: meanwhile this caller holds no batch back.
  arrivals::leave_current();
  // A burst of callers presenting one key, right or wrong, costs one argon2 run: the first
  // verifies, the others wait for its answer. Different secrets do not wait for each other.
  auto presented = presented_key_digest(public_id, secret);
  std::unique_lock lock{verifications_mutex_};
  if (auto running = verifications_.find(presented); running != verifications_.end()) {
    auto shared = running->second;
    ++shared_;
    shared->finished.wait(lock, [&] { return shared->done; });
    return shared->result;
  }
  auto mine = std::make_shared<verification>();
  verifications_.emplace(presented, mine);
  lock.unlock();
  auto publish = [&](outcome result) {
    {
      std::lock_guard guard{verifications_mutex_};
      mine->result = std::move(result);
      mine->done = true;
      verifications_.erase(presented);
    }
    mine->finished.notify_all();
    return mine->result;
  };
  try {
    return publish(verify_within_limits(public_id, secret, client_address));
  } catch (...) {
    publish(api_error{500, "internal_error", "internal error; see the server log", {}, {}, -1});
    throw;
  }
}

caller_auth::outcome caller_auth::verify_within_limits(std::string_view public_id,
                                                       std::string_view secret,
                                                       std::string_view client_address) {
  // The store and argon2 hold this thread for milliseconds: another HTTP thread runs meanwhile.
  waiting_scope waiting;
  // The verification of this pair that ran just before ours left its answer here before it
  // finished, so a burst never runs argon2 twice.
  if (auto hit = cache_.lookup(public_id, secret))
    return *hit;
  if (auto why = cache_.recently_rejected(public_id, secret))
    return *why == verified_key_cache::rejection::revoked ? revoked_key() : invalid_key();
  // Failures are charged before argon2 runs and given back when it succeeds, so concurrent
  // guesses cannot all slip under the limit. A secret that verified before is its holder's:
  // someone guessing at the same key id must not lock the holder out.
  bool holder = cache_.verified_before(public_id, secret);
  std::string key_subject{public_id};
  std::string address_subject{client_address};
  bool charged_address = false;
  bool charged_key = false;
  auto give_back = [&] {
    if (charged_address)
      address_failures_.give_back(address_subject);
    if (charged_key)
      key_failures_.give_back(key_subject);
  };
  if (!holder) {
    if (auto wait = address_failures_.take(address_subject))
      return too_many_failures(*wait);
    charged_address = true;
  }
  // Read before the record: a revoke from here on keeps this verification out of the cache.
  auto epoch = cache_.epoch();
  std::optional<key_record> record;
  try {
    record = db_.key_by_public_id(public_id);
  } catch (const store_unavailable& e) {
    // Fail static: callers whose keys this replica knows keep being served; a key it has not
    // verified yet must wait for the store, and its holder is charged nothing for that.
    give_back();
    spdlog::warn("cannot look up a caller key: {}", e.what());
    return api_error{503,
                     "store_unavailable",
                     "the key store cannot be reached to check this key; retry shortly",
                     {},
                     {},
                     5000};
  }
  if (!record) {
    cache_.remember_rejection(public_id, secret);
    return invalid_key();
  }
  if (!holder) {
    if (auto wait = key_failures_.take(key_subject)) {
      give_back();
      return too_many_failures(*wait);
    }
    charged_key = true;
  }
  if (!slots_.acquire(limits_.verification_wait)) {
    give_back();
    return verifications_busy();
  }
  ++argon2_runs_;
  bool matches = false;
  try {
    matches = verifier_(record->secret_hash, secret);
  } catch (...) {
    slots_.release();
    throw;
  }
  slots_.release();
  // Whether a key was revoked is told only to whoever holds its secret; anyone else learns
  // exactly what a wrong secret for a live key teaches.
  if (!matches) {
    cache_.remember_rejection(public_id, secret);
    return invalid_key();
  }
  // The right secret is no guess, even for a revoked key: a revoked key's holder costs one run
  // per rejection_ttl, which the rejection below remembers.
  give_back();
  // A revoke that landed while argon2 ran moved the cache's epoch, and the cache then refuses
  // the key; the store, read again, says whether it was this key's revoke.
  while (!record->revoked_at &&
         !cache_.remember(public_id, secret, record->id, record->name, epoch)) {
    epoch = cache_.epoch();
    record = db_.key_by_public_id(public_id);
    if (!record)
      return invalid_key();
  }
  if (record->revoked_at) {
    cache_.remember_rejection(public_id, secret, verified_key_cache::rejection::revoked);
    return revoked_key();
  }
  return cached_key{record->id, record->name};
}

std::pair<key_record, std::string> caller_auth::create(std::string_view name,
                                                       const key_limits& limits) {
  auto issued = issue_key(params_);
  auto record = db_.create_key(name, issued.public_id, issued.secret_hash, limits);
  return {std::move(record), std::move(issued.token)};
}

bool caller_auth::revoke(std::int64_t id) {
  auto record = db_.key(id);
  bool revoked = db_.revoke_key(id);
  if (record)
    cache_.forget(record->public_id);
  cache_.forget_key_id(id);
  return revoked;
}

auth_stats caller_auth::stats() const {
  return {argon2_runs_.load(), shared_.load(), failures_.load(), rate_limited_.load(),
          busy_.load()};
}

void caller_auth::forget_revoked(const std::vector<key_record>& keys) {
  std::lock_guard lock(revoked_mutex_);
  for (const auto& k : keys) {
    // Once is enough, a revocation being final; forgetting again would only disturb
    // verifications under way (each forget turns the cache's epoch).
    if (!k.revoked_at || !forgotten_revoked_.insert(k.id).second)
      continue;
    cache_.forget(k.public_id);
    cache_.forget_key_id(k.id);
  }
}

std::optional<std::pair<key_record, std::string>> caller_auth::rotate(std::int64_t id) {
  auto old = db_.key(id);
  if (!old || old->revoked_at)
    return std::nullopt;
  auto issued = issue_key(params_);
  auto record = db_.rotate_key(id, issued.public_id, issued.secret_hash);
  cache_.forget(old->public_id);
  cache_.forget_key_id(id);
  if (!record)
    return std::nullopt;
  return std::make_pair(std::move(*record), std::move(issued.token));
}

void caller_auth::flush_last_used() {
  std::map<std::int64_t, std::int64_t> batch;
  {
    std::lock_guard guard{touched_mutex_};
    batch.swap(touched_);
  }
  if (batch.empty())
    return;
  try {
    db_.touch_keys({batch.begin(), batch.end()});
  } catch (const std::exception& e) {
    spdlog::warn("could not record key last-used times (kept for the next try): {}", e.what());
    // Kept, not lost: merged with what came since, the latest time of each key wins.
    std::lock_guard guard{touched_mutex_};
    for (const auto& [id, at] : batch)
      touched_[id] = std::max(touched_[id], at);
  }
}

} // namespace emr
