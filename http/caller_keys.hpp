#pragma once
// Caller API keys: how they look, how they are issued and checked, and the cache that keeps
// argon2 off the request path.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace emr {

/// A freshly issued key: the token goes to the caller once, the rest goes to the store.
struct issued_key {
  std::string token; ///< the full key, emr_<public_id>_<secret>; shown once, never stored
  std::string public_id;
  std::string secret_hash; ///< PHC-encoded argon2id string of the secret
};

/// argon2id cost. The defaults are OWASP's minimum; tests pass tiny values to stay fast.
struct argon2_params {
  std::uint32_t t_cost = 2;
  std::uint32_t m_cost_kib = 19456;
  std::uint32_t parallelism = 1;
};

/// Draws a new key from OpenSSL's CSPRNG and hashes its secret. Throws std::runtime_error when
/// the RNG or argon2 fails (e.g. parameters argon2 rejects).
issued_key issue_key(const argon2_params&);

/// The two halves of a well-formed token; views into the token passed to parse_key.
struct parsed_key {
  std::string_view public_id;
  std::string_view secret;
};

/// Exactly "emr_" + 16 of [A-Za-z0-9] + "_" + 43 of [A-Za-z0-9]; anything else is nullopt.
/// Never throws: it reads untrusted headers.
std::optional<parsed_key> parse_key(std::string_view token);

/// True when secret matches the stored argon2id hash; false on mismatch or a malformed hash.
/// Costs a full argon2 run: call it from an HTTP thread, after the caches missed.
bool verify_secret(const std::string& encoded_hash, std::string_view secret);

/// Constant-time comparison of the configured admin secret with the presented one. Digests are
/// compared, so a length difference does not leak either. An empty expected secret matches
/// nothing: an unset admin secret must not open the admin API.
bool admin_secret_matches(std::string_view expected, std::string_view presented);

/// Lower-case hex SHA-256, e.g. to name a secret in logs without revealing it.
std::string sha256_hex(std::string_view);

/// One presented (public id, secret) pair as a table key: the public id, then the secret's raw
/// SHA-256. Its fixed length keeps two different pairs from colliding; the secret is not kept.
std::string presented_key_digest(std::string_view public_id, std::string_view secret);

/// What a successful verification established about the caller.
struct cached_key {
  std::int64_t key_id = 0;
  std::string name;
};

/// Remembers verified keys (and, briefly, rejected secrets) so argon2 runs once per key per TTL
/// instead of once per request, and for a day which secrets verified, so their holders are not
/// held to the limits on failed attempts. Holds SHA-256 digests of secrets, never the secrets:
/// their 256 bits of entropy make a plain digest as safe as a keyed one. Thread-safe.
class verified_key_cache {
public:
  using clock = std::function<std::chrono::steady_clock::time_point()>;

  /// How long a rejected (public id, secret) pair skips argon2, and how many such pairs are kept.
  static constexpr std::chrono::seconds rejection_ttl{30};
  static constexpr std::size_t rejection_capacity = 1024;
  /// How long a secret that verified counts as its key's holder's (verified_before).
  static constexpr std::chrono::hours holder_ttl{24};

  /// max_entries bounds the verified keys; when full, the oldest entry goes first.
  explicit verified_key_cache(std::size_t max_entries = 10000,
                              std::chrono::seconds ttl = std::chrono::seconds{300},
                              clock now = std::chrono::steady_clock::now);
  ~verified_key_cache();
  verified_key_cache(const verified_key_cache&) = delete;
  verified_key_cache& operator=(const verified_key_cache&) = delete;

  /// The cached key when public_id is known, unexpired, and secret is the one verified.
  std::optional<cached_key> lookup(std::string_view public_id, std::string_view secret) const;
  /// Changes on every forget. Read it before the store lookup that precedes verify_secret.
  std::uint64_t epoch() const;
  /// Call after verify_secret succeeded and the key is not revoked, with the epoch read before
  /// the key was looked up. Restarts the TTL. False, and nothing kept, when a forget came since:
  /// the key may have been revoked while it was being verified.
  bool remember(std::string_view public_id, std::string_view secret, std::int64_t key_id,
                std::string name, std::uint64_t epoch);
  /// On revoke or rotate: the next lookup of this key misses at once, and verifications already
  /// under way cannot remember it.
  void forget(std::string_view public_id);
  void forget_key_id(std::int64_t key_id);

  /// True when this exact secret verified for public_id within holder_ttl and was not forgotten.
  bool verified_before(std::string_view public_id, std::string_view secret) const;

  /// Why a presented key was turned away: a wrong secret or unknown id, or the right secret of
  /// a revoked key (only then may the caller learn that the key was revoked).
  enum class rejection { invalid, revoked };
  /// Why this exact secret was rejected for public_id within rejection_ttl, if it was.
  std::optional<rejection> recently_rejected(std::string_view public_id,
                                             std::string_view secret) const;
  void remember_rejection(std::string_view public_id, std::string_view secret,
                          rejection why = rejection::invalid);

  /// Verified entries held, expired ones included until they are pushed out.
  std::size_t size() const;

private:
  struct tables;
  std::unique_ptr<tables> tables_;
};

} // namespace emr
