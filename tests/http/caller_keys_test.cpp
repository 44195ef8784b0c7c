// caller_keys: key format, issuance and verification, the verified-key cache, the admin check.

#include "http/caller_keys.hpp"
#include "tests/http/manual_clock.hpp"

#include <gtest/gtest.h>

#include <set>

namespace emr {
namespace {

using namespace std::chrono_literals;

constexpr argon2_params fast_params{1, 64, 1};

const std::string valid_public_id = "AbCdEfGh12345678";
const std::string valid_secret = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456"; // 43
const std::string valid_token = "emr_" + valid_public_id + "_" + valid_secret;

bool alphanumeric(std::string_view s) {
  for (char c : s)
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
      return false;
  return true;
}

// -- issue, parse, verify -------------------------------------------------------

TEST(caller_keys, issued_key_parses_and_verifies) {
  auto issued = issue_key(fast_params);
  EXPECT_EQ(issued.token.size(), 4u + 16u + 1u + 43u);
  auto parsed = parse_key(issued.token);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->public_id, issued.public_id);
  EXPECT_EQ(parsed->public_id.size(), 16u);
  EXPECT_EQ(parsed->secret.size(), 43u);
  EXPECT_EQ(issued.token, "emr_" + issued.public_id + "_" + std::string(parsed->secret));
  EXPECT_TRUE(issued.secret_hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$")) << issued.secret_hash;
  EXPECT_EQ(issued.secret_hash.find('\0'), std::string::npos);
  EXPECT_EQ(issued.secret_hash.find(parsed->secret), std::string::npos);
  EXPECT_TRUE(verify_secret(issued.secret_hash, parsed->secret));
}

TEST(caller_keys, verify_rejects_other_secrets_and_malformed_hashes) {
  auto issued = issue_key(fast_params);
  auto secret = std::string(parse_key(issued.token)->secret);
  auto altered = secret;
  altered.back() = altered.back() == 'a' ? 'b' : 'a';
  EXPECT_FALSE(verify_secret(issued.secret_hash, altered));
  EXPECT_FALSE(verify_secret(issued.secret_hash, ""));
  EXPECT_FALSE(verify_secret(issued.secret_hash, secret + "x"));
  EXPECT_FALSE(verify_secret("", secret));
  EXPECT_FALSE(verify_secret("$argon2id$garbage", secret));
  auto other = issue_key(fast_params);
  EXPECT_FALSE(verify_secret(other.secret_hash, secret));
}

TEST(caller_keys, owasp_defaults_are_used_and_verify) {
  argon2_params defaults;
  EXPECT_EQ(defaults.t_cost, 2u);
  EXPECT_EQ(defaults.m_cost_kib, 19456u);
  EXPECT_EQ(defaults.parallelism, 1u);
  auto issued = issue_key(defaults);
  EXPECT_TRUE(issued.secret_hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"))
      << issued.secret_hash;
  EXPECT_TRUE(verify_secret(issued.secret_hash, parse_key(issued.token)->secret));
}

TEST(caller_keys, issued_keys_are_distinct_and_use_the_whole_alphabet) {
  std::set<std::string> public_ids;
  std::set<char> seen;
  for (int i = 0; i < 200; ++i) {
    auto issued = issue_key(fast_params);
    auto parsed = parse_key(issued.token);
    ASSERT_TRUE(parsed) << issued.token;
    EXPECT_TRUE(alphanumeric(parsed->public_id));
    EXPECT_TRUE(alphanumeric(parsed->secret));
    public_ids.insert(issued.public_id);
    seen.insert(parsed->secret.begin(), parsed->secret.end());
  }
  EXPECT_EQ(public_ids.size(), 200u);
  // ~8600 draws over 62 letters: a missing one means a narrowed alphabet, not bad luck.
  EXPECT_EQ(seen.size(), 62u);
}

TEST(caller_keys, impossible_argon2_params_throw) {
  EXPECT_THROW(issue_key(argon2_params{0, 64, 1}), std::runtime_error);
}

TEST(caller_keys, parse_accepts_the_exact_format) {
  auto parsed = parse_key(valid_token);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->public_id, valid_public_id);
  EXPECT_EQ(parsed->secret, valid_secret);
}

TEST(caller_keys, parse_rejects_everything_else) {
  const std::vector<std::string> bad = {
      "",
      "emr_",
      "emr__",
      "EMR_" + valid_public_id + "_" + valid_secret,                 // prefix is case-sensitive
      "emx_" + valid_public_id + "_" + valid_secret,                 // wrong prefix
      "xemr" + valid_public_id + "_" + valid_secret,                 // no prefix, right length
      "emr_" + valid_public_id + "-" + valid_secret,                 // wrong separator
      "emr_" + valid_public_id + valid_secret + "_",                 // separator moved
      "emr_" + valid_public_id.substr(1) + "_" + valid_secret + "A", // short public id
      "emr_" + valid_public_id + "A_" + valid_secret.substr(1),      // long public id
      "emr_" + valid_public_id + "_" + valid_secret.substr(1),       // short secret
      "emr_" + valid_public_id + "_" + valid_secret + "A",           // long secret
      valid_token + "\n",
      " " + valid_token,
      "Bearer " + valid_token,
      "emr_" + valid_public_id + "_" + valid_secret.substr(0, 42) + "_", // extra underscore
      "emr_" + valid_public_id.substr(0, 15) + "_" + "_" + valid_secret.substr(1),
      "emr_" + valid_public_id + "_" + valid_secret.substr(0, 20) + "_" + valid_secret.substr(21),
      "emr_" + valid_public_id + "_" + valid_secret.substr(0, 42) + "-",
      "emr_" + valid_public_id + "_" + valid_secret.substr(0, 42) + "=",
      "emr_" + valid_public_id + "_" + valid_secret.substr(0, 42) + " ",
      "emr_" + valid_public_id.substr(0, 15) + "+" + "_" + valid_secret,
      "emr_" + valid_public_id + "_" + valid_secret.substr(0, 42) + std::string(1, '\0'),
      "emr_" + valid_public_id + "_" + valid_secret.substr(0, 41) + "\xC3\xA9", // é, 2 bytes
      "emr_" + valid_public_id + "_" + valid_secret.substr(0, 42) + "\xFF",
  };
  for (const auto& token : bad)
    EXPECT_EQ(parse_key(token), std::nullopt) << '"' << token << '"';
}

// -- admin secret ---------------------------------------------------------------

TEST(caller_keys, admin_secret_matches_only_the_same_secret) {
  EXPECT_TRUE(admin_secret_matches("s3cret-admin", "s3cret-admin"));
  EXPECT_FALSE(admin_secret_matches("s3cret-admin", "s3cret-admiN"));
  EXPECT_FALSE(admin_secret_matches("s3cret-admin", "s3cret-admin "));
  EXPECT_FALSE(admin_secret_matches("s3cret-admin", "s3cret"));
  EXPECT_FALSE(admin_secret_matches("s3cret-admin", ""));
}

TEST(caller_keys, unset_admin_secret_matches_nothing) {
  EXPECT_FALSE(admin_secret_matches("", ""));
  EXPECT_FALSE(admin_secret_matches("", "anything"));
}

TEST(caller_keys, sha256_hex_matches_known_vectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

// -- verified_key_cache ---------------------------------------------------------

using testing::manual_clock;

TEST(verified_key_cache, hit_after_remember) {
  manual_clock clock;
  verified_key_cache cache(10, 300s, clock.function());
  cache.remember("PUB", "secret", 7, "billing", cache.epoch());
  auto hit = cache.lookup("PUB", "secret");
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->key_id, 7);
  EXPECT_EQ(hit->name, "billing");
}

TEST(verified_key_cache, misses_on_wrong_secret_or_unknown_public_id) {
  manual_clock clock;
  verified_key_cache cache(10, 300s, clock.function());
  cache.remember("PUB", "secret", 7, "billing", cache.epoch());
  EXPECT_EQ(cache.lookup("PUB", "secreT"), std::nullopt);
  EXPECT_EQ(cache.lookup("PUB", "secret "), std::nullopt);
  EXPECT_EQ(cache.lookup("PUB", ""), std::nullopt);
  EXPECT_EQ(cache.lookup("PUX", "secret"), std::nullopt);
  EXPECT_TRUE(cache.lookup("PUB", "secret")); // a miss does not evict
}

TEST(verified_key_cache, entries_expire_after_the_ttl) {
  manual_clock clock;
  verified_key_cache cache(10, 300s, clock.function());
  cache.remember("PUB", "secret", 7, "billing", cache.epoch());
  clock.advance(299s);
  EXPECT_TRUE(cache.lookup("PUB", "secret"));
  clock.advance(1s);
  EXPECT_EQ(cache.lookup("PUB", "secret"), std::nullopt);
}

TEST(verified_key_cache, remember_again_restarts_the_ttl) {
  manual_clock clock;
  verified_key_cache cache(10, 300s, clock.function());
  cache.remember("PUB", "secret", 7, "billing", cache.epoch());
  clock.advance(200s);
  cache.remember("PUB", "secret", 7, "billing", cache.epoch());
  clock.advance(200s);
  EXPECT_TRUE(cache.lookup("PUB", "secret"));
}

TEST(verified_key_cache, forget_makes_the_next_lookup_miss) {
  manual_clock clock;
  verified_key_cache cache(10, 300s, clock.function());
  cache.remember("PUB", "secret", 7, "billing", cache.epoch());
  cache.remember("KEEP", "other", 8, "search", cache.epoch());
  cache.forget("PUB");
  EXPECT_EQ(cache.lookup("PUB", "secret"), std::nullopt);
  EXPECT_TRUE(cache.lookup("KEEP", "other"));
  cache.forget("never-cached");
}

TEST(verified_key_cache, forget_key_id_drops_that_key_only) {
  manual_clock clock;
  verified_key_cache cache(10, 300s, clock.function());
  cache.remember("PUB", "secret", 7, "billing", cache.epoch());
  cache.remember("KEEP", "other", 8, "search", cache.epoch());
  cache.forget_key_id(7);
  EXPECT_EQ(cache.lookup("PUB", "secret"), std::nullopt);
  EXPECT_TRUE(cache.lookup("KEEP", "other"));
  EXPECT_EQ(cache.size(), 1u);
}

TEST(verified_key_cache, remember_is_refused_after_a_forget_since_the_epoch_was_read) {
  manual_clock clock;
  verified_key_cache cache(10, 300s, clock.function());
  auto before = cache.epoch();
  cache.forget("OTHER");
  EXPECT_FALSE(cache.remember("PUB", "secret", 7, "billing", before));
  EXPECT_EQ(cache.lookup("PUB", "secret"), std::nullopt);
  EXPECT_FALSE(cache.verified_before("PUB", "secret"));
  auto after_forget = cache.epoch();
  cache.forget_key_id(9);
  EXPECT_FALSE(cache.remember("PUB", "secret", 7, "billing", after_forget));
  EXPECT_TRUE(cache.remember("PUB", "secret", 7, "billing", cache.epoch()));
  EXPECT_TRUE(cache.lookup("PUB", "secret"));
}

TEST(verified_key_cache, a_verified_secret_is_known_for_a_day_unless_forgotten) {
  manual_clock clock;
  verified_key_cache cache(10, 300s, clock.function());
  EXPECT_FALSE(cache.verified_before("PUB", "secret"));
  cache.remember("PUB", "secret", 7, "billing", cache.epoch());
  cache.remember("KEEP", "other", 8, "search", cache.epoch());
  clock.advance(301s);
  EXPECT_EQ(cache.lookup("PUB", "secret"), std::nullopt);
  EXPECT_TRUE(cache.verified_before("PUB", "secret"));
  EXPECT_FALSE(cache.verified_before("PUB", "secreT"));
  EXPECT_FALSE(cache.verified_before("OTHER", "secret"));
  cache.forget("PUB");
  EXPECT_FALSE(cache.verified_before("PUB", "secret"));
  cache.forget_key_id(8);
  EXPECT_FALSE(cache.verified_before("KEEP", "other"));
  cache.remember("PUB", "secret", 7, "billing", cache.epoch());
  clock.advance(verified_key_cache::holder_ttl);
  EXPECT_FALSE(cache.verified_before("PUB", "secret"));
}

TEST(verified_key_cache, full_cache_evicts_the_oldest_entry) {
  manual_clock clock;
  verified_key_cache cache(3, 300s, clock.function());
  for (int i = 0; i < 3; ++i) {
    cache.remember("P" + std::to_string(i), "s", i, "n", cache.epoch());
    clock.advance(1s);
  }
  cache.remember("P3", "s", 3, "n", cache.epoch());
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(cache.lookup("P0", "s"), std::nullopt);
  for (int i = 1; i <= 3; ++i)
    EXPECT_TRUE(cache.lookup("P" + std::to_string(i), "s")) << i;
}

TEST(verified_key_cache, refreshed_entry_is_not_the_one_evicted) {
  manual_clock clock;
  verified_key_cache cache(2, 300s, clock.function());
  cache.remember("P0", "s", 0, "n", cache.epoch());
  cache.remember("P1", "s", 1, "n", cache.epoch());
  cache.remember("P0", "s", 0, "n", cache.epoch());
  cache.remember("P2", "s", 2, "n", cache.epoch());
  EXPECT_TRUE(cache.lookup("P0", "s"));
  EXPECT_EQ(cache.lookup("P1", "s"), std::nullopt);
  EXPECT_TRUE(cache.lookup("P2", "s"));
}

TEST(verified_key_cache, expired_entries_are_purged_when_a_new_one_arrives) {
  manual_clock clock;
  verified_key_cache cache(10, 300s, clock.function());
  cache.remember("OLD", "s", 0, "n", cache.epoch());
  cache.remember("OLDER", "s", 1, "n", cache.epoch());
  clock.advance(400s);
  cache.remember("NEW", "s", 2, "n", cache.epoch());
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_TRUE(cache.lookup("NEW", "s"));
}

TEST(verified_key_cache, zero_capacity_caches_nothing) {
  verified_key_cache cache(0);
  cache.remember("P", "s", 1, "n", cache.epoch());
  EXPECT_EQ(cache.lookup("P", "s"), std::nullopt);
  EXPECT_EQ(cache.size(), 0u);
}

TEST(verified_key_cache, default_clock_works) {
  verified_key_cache cache;
  cache.remember("P", "s", 1, "n", cache.epoch());
  EXPECT_TRUE(cache.lookup("P", "s"));
}

// -- negative cache -------------------------------------------------------------

TEST(verified_key_cache, rejection_is_remembered_for_that_secret_only) {
  manual_clock clock;
  verified_key_cache cache(10, 300s, clock.function());
  EXPECT_FALSE(cache.recently_rejected("PUB", "wrong"));
  cache.remember_rejection("PUB", "wrong");
  EXPECT_TRUE(cache.recently_rejected("PUB", "wrong"));
  EXPECT_FALSE(cache.recently_rejected("PUB", "right"));
  EXPECT_FALSE(cache.recently_rejected("OTHER", "wrong"));
  EXPECT_EQ(cache.lookup("PUB", "wrong"), std::nullopt); // never a positive entry
}

TEST(verified_key_cache, rejection_expires_after_thirty_seconds) {
  manual_clock clock;
  verified_key_cache cache(10, 300s, clock.function());
  cache.remember_rejection("PUB", "wrong");
  clock.advance(29s);
  EXPECT_TRUE(cache.recently_rejected("PUB", "wrong"));
  clock.advance(1s);
  EXPECT_FALSE(cache.recently_rejected("PUB", "wrong"));
}

TEST(verified_key_cache, rejection_cache_is_bounded) {
  manual_clock clock;
  verified_key_cache cache(10, 300s, clock.function());
  cache.remember_rejection("PUB", "wrong-first");
  for (std::size_t i = 0; i < verified_key_cache::rejection_capacity; ++i)
    cache.remember_rejection("PUB", "wrong-" + std::to_string(i));
  EXPECT_FALSE(cache.recently_rejected("PUB", "wrong-first"));
  EXPECT_TRUE(cache.recently_rejected("PUB", "wrong-0"));
  EXPECT_TRUE(cache.recently_rejected(
      "PUB", "wrong-" + std::to_string(verified_key_cache::rejection_capacity - 1)));
}

TEST(verified_key_cache, rejection_remembers_why) {
  manual_clock clock;
  verified_key_cache cache(10, 300s, clock.function());
  cache.remember_rejection("PUB", "wrong");
  cache.remember_rejection("PUB", "right", verified_key_cache::rejection::revoked);
  EXPECT_EQ(cache.recently_rejected("PUB", "wrong"), verified_key_cache::rejection::invalid);
  EXPECT_EQ(cache.recently_rejected("PUB", "right"), verified_key_cache::rejection::revoked);
}

TEST(verified_key_cache, public_id_and_secret_do_not_blur_together) {
  manual_clock clock;
  verified_key_cache cache(10, 300s, clock.function());
  cache.remember_rejection("PUBa", "b");
  EXPECT_FALSE(cache.recently_rejected("PUB", "ab"));
}

} // namespace
} // namespace emr
