// Caller API keys: format, issuance, verification and the verified-key cache.

#include "http/caller_keys.hpp"

#include "actors/waiting_scope.hpp"

#include <argon2.h>
#include <boost/algorithm/hex.hpp>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <cstring>
#include <iterator>
#include <list>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <unordered_map>

namespace emr {

namespace {

constexpr std::string_view token_prefix = "emr_";
constexpr std::size_t public_id_length = 16;
constexpr std::size_t secret_length = 43; // 43 * log2(62) ≈ 256 bits
constexpr std::size_t token_length = token_prefix.size() + public_id_length + 1 + secret_length;
constexpr std::size_t salt_length = 16;
constexpr std::uint32_t tag_length = 32;

constexpr std::string_view alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

// Not std::isalnum: that one follows the locale and would admit other bytes.
constexpr bool in_alphabet(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

constexpr bool all_in_alphabet(std::string_view s) {
  for (char c : s)
    if (!in_alphabet(c))
      return false;
  return true;
}

void random_bytes(unsigned char* out, std::size_t n) {
  if (RAND_bytes(out, static_cast<int>(n)) != 1)
    throw std::runtime_error("caller keys: RAND_bytes failed");
}

std::string random_alphanumeric(std::size_t length) {
  // Bytes at or above 248 (= 4 * 62) are dropped: taking them modulo 62 would favour 'A'..'H'.
  constexpr unsigned accept_below = 256 - 256 % alphabet.size();
  std::string out;
  out.reserve(length);
  std::array<unsigned char, 64> pool;
  while (out.size() < length) {
    random_bytes(pool.data(), pool.size());
    for (unsigned char b : pool)
      if (b < accept_below && out.size() < length)
        out += alphabet[b % alphabet.size()];
  }
  return out;
}

std::string hash_secret(std::string_view secret, const argon2_params& params) {
  // Tens of milliseconds of memory-hard work: another HTTP thread runs meanwhile.
  waiting_scope waiting;
  std::array<unsigned char, salt_length> salt;
  random_bytes(salt.data(), salt.size());
  std::string encoded(argon2_encodedlen(params.t_cost, params.m_cost_kib, params.parallelism,
                                        salt.size(), tag_length, Argon2_id),
                      '\0');
  int rc = argon2id_hash_encoded(params.t_cost, params.m_cost_kib, params.parallelism,
                                 secret.data(), secret.size(), salt.data(), salt.size(), tag_length,
                                 encoded.data(), encoded.size());
  if (rc != ARGON2_OK)
    throw std::runtime_error(std::string("caller keys: argon2id hashing failed: ") +
                             argon2_error_message(rc));
  encoded.resize(std::strlen(encoded.c_str())); // encodedlen over-estimates; drop the NULs
  return encoded;
}

using sha256_digest = std::array<unsigned char, 32>;

sha256_digest sha256(std::string_view data) {
  sha256_digest out;
  unsigned int out_length = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &out_length, EVP_sha256(), nullptr) != 1 ||
      out_length != out.size())
    throw std::runtime_error("caller keys: SHA-256 failed");
  return out;
}

bool same_digest(const sha256_digest& a, const sha256_digest& b) {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

using time_point = std::chrono::steady_clock::time_point;

struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

/// A bounded map whose entries expire. Every entry lives the same TTL, so insertion order is
/// expiry order: the oldest entry is both the first to expire and the one to evict when full.
template <class Value> class expiring_table {
public:
  explicit expiring_table(std::size_t capacity) : capacity_(capacity) {}

  const Value* find(std::string_view key, time_point now) const {
    auto it = slots_.find(key);
    if (it == slots_.end() || now >= it->second.expires_at)
      return nullptr;
    return &it->second.value;
  }

  void put(std::string key, Value value, time_point expires_at, time_point now) {
    if (capacity_ == 0)
      return;
    while (!age_order_.empty() && slots_.find(age_order_.front())->second.expires_at <= now)
      erase(age_order_.front());
    erase(key);
    if (slots_.size() >= capacity_)
      erase(age_order_.front());
    age_order_.push_back(key);
    slots_.emplace(std::move(key), slot{std::move(value), expires_at, std::prev(age_order_.end())});
  }

  void erase(std::string_view key) {
    auto it = slots_.find(key);
    if (it == slots_.end())
      return;
    age_order_.erase(it->second.age_position);
    slots_.erase(it);
  }

  template <class Predicate> void erase_if(Predicate matches) {
    for (auto it = slots_.begin(); it != slots_.end();) {
      if (matches(it->second.value)) {
        age_order_.erase(it->second.age_position);
        it = slots_.erase(it);
      } else {
        ++it;
      }
    }
  }

  std::size_t size() const { return slots_.size(); }

private:
  struct slot {
    Value value;
    time_point expires_at;
    std::list<std::string>::iterator age_position;
  };

  std::size_t capacity_;
  std::unordered_map<std::string, slot, string_hash, std::equal_to<>> slots_;
  std::list<std::string> age_order_; ///< keys, oldest first
};

struct verified_entry {
  sha256_digest secret_digest;
  cached_key key;
};

} // namespace

std::string presented_key_digest(std::string_view public_id, std::string_view secret) {
  auto digest = sha256(secret);
  std::string key(public_id);
  key.append(reinterpret_cast<const char*>(digest.data()), digest.size());
  return key;
}

issued_key issue_key(const argon2_params& params) {
  issued_key issued;
  issued.public_id = random_alphanumeric(public_id_length);
  auto secret = random_alphanumeric(secret_length);
  issued.token = std::string(token_prefix) + issued.public_id + "_" + secret;
  issued.secret_hash = hash_secret(secret, params);
  return issued;
}

std::optional<parsed_key> parse_key(std::string_view token) {
  if (token.size() != token_length || !token.starts_with(token_prefix))
    return std::nullopt;
  auto public_id = token.substr(token_prefix.size(), public_id_length);
  auto separator = token[token_prefix.size() + public_id_length];
  auto secret = token.substr(token_prefix.size() + public_id_length + 1);
  if (separator != '_' || !all_in_alphabet(public_id) || !all_in_alphabet(secret))
    return std::nullopt;
  return parsed_key{public_id, secret};
}

bool verify_secret(const std::string& encoded_hash, std::string_view secret) {
  return argon2id_verify(encoded_hash.c_str(), secret.data(), secret.size()) == ARGON2_OK;
}

bool admin_secret_matches(std::string_view expected, std::string_view presented) {
  if (expected.empty())
    return false;
  return same_digest(sha256(expected), sha256(presented));
}

std::string sha256_hex(std::string_view data) {
  auto digest = sha256(data);
  std::string hex;
  hex.reserve(digest.size() * 2);
  boost::algorithm::hex_lower(digest.begin(), digest.end(), std::back_inserter(hex));
  return hex;
}

// -- verified_key_cache -------------------------------------------------------

struct verified_key_cache::tables {
  tables(std::size_t max_entries, std::chrono::seconds ttl, clock now)
      : ttl(ttl), now(std::move(now)), verified(max_entries), holders(max_entries),
        rejected(rejection_capacity) {}

  std::chrono::seconds ttl;
  clock now;
  mutable std::shared_mutex mutex;
  std::uint64_t epoch = 0;
  expiring_table<verified_entry> verified;                ///< by public id
  expiring_table<verified_entry> holders;                 ///< by public id, for holder_ttl
  expiring_table<verified_key_cache::rejection> rejected; ///< by presented_key_digest
};

verified_key_cache::verified_key_cache(std::size_t max_entries, std::chrono::seconds ttl, clock now)
    : tables_(std::make_unique<tables>(max_entries, ttl, std::move(now))) {}

verified_key_cache::~verified_key_cache() = default;

std::optional<cached_key> verified_key_cache::lookup(std::string_view public_id,
                                                     std::string_view secret) const {
  auto digest = sha256(secret);
  auto now = tables_->now();
  std::shared_lock lock(tables_->mutex);
  auto entry = tables_->verified.find(public_id, now);
  if (!entry || !same_digest(entry->secret_digest, digest))
    return std::nullopt;
  return entry->key;
}

std::uint64_t verified_key_cache::epoch() const {
  std::shared_lock lock(tables_->mutex);
  return tables_->epoch;
}

bool verified_key_cache::remember(std::string_view public_id, std::string_view secret,
                                  std::int64_t key_id, std::string name, std::uint64_t epoch) {
  verified_entry entry{sha256(secret), cached_key{key_id, std::move(name)}};
  auto now = tables_->now();
  std::unique_lock lock(tables_->mutex);
  if (epoch != tables_->epoch)
    return false;
  tables_->holders.put(std::string(public_id), entry, now + holder_ttl, now);
  tables_->verified.put(std::string(public_id), std::move(entry), now + tables_->ttl, now);
  return true;
}

void verified_key_cache::forget(std::string_view public_id) {
  std::unique_lock lock(tables_->mutex);
  ++tables_->epoch;
  tables_->verified.erase(public_id);
  tables_->holders.erase(public_id);
}

void verified_key_cache::forget_key_id(std::int64_t key_id) {
  std::unique_lock lock(tables_->mutex);
  ++tables_->epoch;
  // A full scan: revocations are rare admin actions, not worth a second index.
  auto of_key = [key_id](const verified_entry& e) { return e.key.key_id == key_id; };
  tables_->verified.erase_if(of_key);
  tables_->holders.erase_if(of_key);
}

bool verified_key_cache::verified_before(std::string_view public_id,
                                         std::string_view secret) const {
  auto digest = sha256(secret);
  auto now = tables_->now();
  std::shared_lock lock(tables_->mutex);
  auto entry = tables_->holders.find(public_id, now);
  return entry && same_digest(entry->secret_digest, digest);
}

std::optional<verified_key_cache::rejection>
verified_key_cache::recently_rejected(std::string_view public_id, std::string_view secret) const {
  auto key = presented_key_digest(public_id, secret);
  auto now = tables_->now();
  std::shared_lock lock(tables_->mutex);
  if (auto why = tables_->rejected.find(key, now))
    return *why;
  return std::nullopt;
}

void verified_key_cache::remember_rejection(std::string_view public_id, std::string_view secret,
                                            rejection why) {
  auto key = presented_key_digest(public_id, secret);
  auto now = tables_->now();
  std::unique_lock lock(tables_->mutex);
  tables_->rejected.put(std::move(key), why, now + rejection_ttl, now);
}

std::size_t verified_key_cache::size() const {
  std::shared_lock lock(tables_->mutex);
  return tables_->verified.size();
}

} // namespace emr
