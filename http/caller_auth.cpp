#include "http/caller_auth.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <strings.h>

namespace emr {

namespace {

api_error unauthorized(std::string message) {
  return api_error{401, "authentication_error", std::move(message), {}, "invalid_api_key", -1};
}

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
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

caller_auth::caller_auth(store& db, argon2_params params)
  : db_(db), params_(params), flusher_([this](std::stop_token stop) {
      std::mutex m;
      std::unique_lock lock{m};
      while (!stop.stop_requested()) {
        flush_wakeup_.wait_for(lock, stop, std::chrono::seconds{5}, [] { return false; });
        flush_last_used();
      }
    }) {
}

caller_auth::~caller_auth() {
  flusher_.request_stop();
  if (flusher_.joinable())
    flusher_.join();
}

std::shared_ptr<std::mutex> caller_auth::verification_lock(std::string_view public_id) {
  std::lock_guard guard{locks_mutex_};
  auto it = verification_locks_.find(public_id);
  if (it != verification_locks_.end())
    if (auto lock = it->second.lock())
      return lock;
  auto lock = std::make_shared<std::mutex>();
  verification_locks_.insert_or_assign(std::string{public_id}, lock);
  if (verification_locks_.size() > 4096)
    std::erase_if(verification_locks_, [](const auto& p) { return p.second.expired(); });
  return lock;
}

std::variant<cached_key, api_error> caller_auth::authenticate(std::string_view authorization) {
  if (authorization.empty())
    return unauthorized("missing Authorization header; send 'Authorization: Bearer emr_...'");
  auto token = bearer_token(authorization);
  if (token.empty())
    return unauthorized("the Authorization header must be 'Bearer <key>'");
  auto key = parse_key(token);
  if (!key)
    return unauthorized("invalid API key");
  auto result = verify(key->public_id, key->secret);
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
  }
  return result;
}

std::variant<cached_key, api_error> caller_auth::verify(std::string_view public_id,
                                                        std::string_view secret) {
  if (auto hit = cache_.lookup(public_id, secret))
    return *hit;
  if (cache_.recently_rejected(public_id, secret))
    return unauthorized("invalid API key");
  // A burst of callers with one fresh key must cost one argon2 verification, not one each.
  auto lock = verification_lock(public_id);
  std::lock_guard guard{*lock};
  if (auto hit = cache_.lookup(public_id, secret))
    return *hit;
  auto record = db_.key_by_public_id(public_id);
  if (!record || record->revoked_at || !verify_secret(record->secret_hash, secret)) {
    cache_.remember_rejection(public_id, secret);
    return unauthorized(record && record->revoked_at ? "this API key was revoked" : "invalid API key");
  }
  cache_.remember(public_id, secret, record->id, record->name);
  return cached_key{record->id, record->name};
}

std::pair<key_record, std::string> caller_auth::create(std::string_view name) {
  auto issued = issue_key(params_);
  auto record = db_.create_key(name, issued.public_id, issued.secret_hash);
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
    spdlog::warn("could not record key last-used times: {}", e.what());
  }
}

} // namespace emr
