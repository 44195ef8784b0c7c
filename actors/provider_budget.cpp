#include "actors/provider_budget.hpp"

#include <algorithm>
#include <cmath>

namespace emr {

std::string_view to_string(limit_source source) {
  switch (source) {
  case limit_source::operator_set:
    return "operator";
  case limit_source::headers:
    return "headers";
  case limit_source::refusal:
    return "refusal";
  case limit_source::none:
    break;
  }
  return "none";
}

double minute_bucket::capacity() const {
  return std::max(1.0, static_cast<double>(per_minute_) / 10.0);
}

double minute_bucket::per_ns() const {
  return 0.9 * static_cast<double>(per_minute_) / 60e9;
}

double minute_bucket::level(clock_time now) const {
  auto elapsed = now > filled_ ? static_cast<double>((now - filled_).count()) : 0.0;
  return std::min(capacity(), level_ + elapsed * per_ns());
}

void minute_bucket::set(std::uint64_t per_minute, limit_source source, clock_time now, bool full) {
  auto held = limited() ? level(now) : 0.0;
  per_minute_ = per_minute;
  source_ = per_minute > 0 ? source : limit_source::none;
  if (!limited())
    return;
  level_ = full ? capacity() : std::min(held, capacity());
  filled_ = now;
}

clock_time minute_bucket::ready_at(clock_time now, double amount) const {
  if (!limited())
    return now;
  auto need = std::min(amount, capacity());
  auto held = level(now);
  if (held >= need)
    return now;
  return now +
         std::chrono::nanoseconds{static_cast<std::int64_t>(std::ceil((need - held) / per_ns()))};
}

void minute_bucket::spend(clock_time now, double amount) {
  if (!limited())
    return;
  level_ = level(now) - amount;
  filled_ = now;
}

void minute_bucket::at_most(clock_time now, double left) {
  if (!limited())
    return;
  level_ = std::min(level(now), left);
  filled_ = now;
}

void minute_bucket::ready_by(clock_time now, double amount, clock_time at) {
  if (!limited() || at <= now)
    return;
  at_most(now, std::min(amount, capacity()) - static_cast<double>((at - now).count()) * per_ns());
}

double minute_bucket::share(clock_time now) const {
  return limited() ? std::max(0.0, level(now) / capacity()) : 1.0;
}

void provider_budget::configure(std::uint64_t requests_per_minute, std::uint64_t tokens_per_minute,
                                clock_time now) {
  auto apply = [now](minute_bucket& bucket, std::uint64_t& set_by_operator, std::uint64_t limit) {
    if (limit > 0)
      // A first limit starts with its burst to spend; a changed one keeps what is left.
      bucket.set(limit, limit_source::operator_set, now,
                 bucket.source() != limit_source::operator_set);
    else if (bucket.source() == limit_source::operator_set)
      bucket.set(0, limit_source::none, now, false);
    set_by_operator = limit;
  };
  apply(requests_, operator_requests_, requests_per_minute);
  apply(tokens_, operator_tokens_, tokens_per_minute);
}

void provider_budget::empty_buckets(clock_time now) {
  requests_.at_most(now, 0);
  tokens_.at_most(now, 0);
}

void provider_budget::forget_before(clock_time now) const {
  while (!sent_.empty() && sent_.front().at + minute <= now) {
    sent_tokens_ -= sent_.front().tokens;
    sent_.pop_front();
  }
}

void provider_budget::on_sent(clock_time now, std::uint64_t tokens) {
  forget_before(now);
  sent_.push_back({now, tokens});
  sent_tokens_ += tokens;
  requests_.spend(now, 1);
  tokens_.spend(now, static_cast<double>(tokens));
  grow_learned(now);
}

void provider_budget::on_headers(clock_time now, const rate_limit_headers& headers) {
  auto learn = [now](minute_bucket& bucket, const std::optional<std::uint64_t>& limit,
                     const std::optional<std::uint64_t>& remaining) {
    if (bucket.source() == limit_source::operator_set)
      return;
    if (limit && *limit > 0 && *limit != bucket.per_minute())
      bucket.set(*limit, limit_source::headers, now, bucket.source() == limit_source::none);
    // The provider's count includes every other user of the key.
    if (remaining)
      bucket.at_most(now, static_cast<double>(*remaining));
  };
  learn(requests_, headers.limit_requests, headers.remaining_requests);
  learn(tokens_, headers.limit_tokens, headers.remaining_tokens);
}

void provider_budget::on_refused(clock_time now,
                                 std::optional<std::chrono::milliseconds> retry_after) {
  forget_before(now);
  last_refusal_ = now;
  refusal_named_wait_ = retry_after.has_value();
  // Only the calls: a 429 does not say which limit it met, and a tokens limit learned from a
  // minute of short texts would hold a longer text for minutes, on a provider whose tokens limit
  // is likely orders above it. Where tokens are what binds, the calls learned here still bound a
  // minute's tokens while calls stay alike, and the providers that limit tokens tightly say so
  // in their headers (on_headers).
  if (sent_.size() >= least_calls_to_learn && !requests_.stated()) {
    auto used = static_cast<std::uint64_t>(sent_.size());
    if (requests_.source() == limit_source::refusal)
      used = std::min(used, requests_.per_minute());
    requests_.set(used, limit_source::refusal, now, false);
  }
  // Whatever the limit, the provider has none of it left until it said it would.
  for (auto* bucket : {&requests_, &tokens_}) {
    if (retry_after)
      bucket->ready_by(now, 1, now + *retry_after);
    else
      bucket->at_most(now, 0);
  }
}

void provider_budget::grow_learned(clock_time now) {
  if (now - last_refusal_ < minute || now - last_growth_ < minute ||
      requests_.source() != limit_source::refusal ||
      static_cast<double>(sent_.size()) < 0.9 * static_cast<double>(requests_.per_minute()))
    return;
  auto limit = requests_.per_minute();
  requests_.set(limit + std::max<std::uint64_t>(1, limit / 10), limit_source::refusal, now, false);
  last_growth_ = now;
}

clock_time provider_budget::next_send(clock_time now) const {
  auto at = std::max(requests_.ready_at(now, 1), tokens_.ready_at(now, 1));
  forget_before(now);
  auto hard = [this](const minute_bucket& bucket) {
    return bucket.stated() || (bucket.limited() && !refusal_named_wait_);
  };
  if (hard(requests_) && sent_.size() >= requests_.per_minute())
    at = std::max(at, sent_[sent_.size() - requests_.per_minute()].at + minute);
  if (hard(tokens_) && sent_tokens_ >= tokens_.per_minute()) {
    // The first moment the minute's tokens fall below the limit.
    auto left = sent_tokens_;
    for (const auto& call : sent_) {
      left -= call.tokens;
      if (left < tokens_.per_minute()) {
        at = std::max(at, call.at + minute);
        break;
      }
    }
  }
  return at;
}

std::size_t provider_budget::flush_threshold(clock_time now, std::size_t max_texts,
                                             double shared) const {
  auto share = std::min({requests_.share(now), tokens_.share(now), shared});
  if (share >= 0.5)
    return 1;
  auto wanted = std::ceil(static_cast<double>(max_texts) * (1.0 - 2.0 * share));
  return std::clamp<std::size_t>(static_cast<std::size_t>(wanted), 1,
                                 std::max<std::size_t>(max_texts, 1));
}

std::int64_t provider_budget::requests_left(clock_time now) const {
  if (!requests_.limited())
    return -1;
  forget_before(now);
  auto limit = requests_.per_minute();
  return sent_.size() >= limit ? 0 : static_cast<std::int64_t>(limit - sent_.size());
}

std::int64_t provider_budget::tokens_left(clock_time now) const {
  if (!tokens_.limited())
    return -1;
  forget_before(now);
  auto limit = tokens_.per_minute();
  return sent_tokens_ >= limit ? 0 : static_cast<std::int64_t>(limit - sent_tokens_);
}

} // namespace emr
