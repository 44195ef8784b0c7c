#include "actors/embedding_cache.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <utility>

namespace emr {

namespace {

void append_field(std::string& out, std::string_view field) {
  out += std::to_string(field.size());
  out.push_back(':');
  out.append(field);
}

// One digest context per thread, reused: request actors hash every text they look up.
struct digest_context {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~digest_context() { EVP_MD_CTX_free(ctx); }
};

// Blocks written ahead for the slabs: a sixteenth of the bound, and at most 16 (4 MiB), the full
// slabs a burst of a thousand new 1,024-float vectors fills. They count against the bound: the
// shards share what they leave.
std::size_t ready_blocks(std::size_t max_bytes) {
  return std::min<std::size_t>(16, max_bytes / 16 / prepared_blocks::block_bytes);
}

} // namespace

std::string cache_scope(const provider_spec& spec) {
  std::string scope;
  append_field(scope, to_string(spec.type));
  append_field(scope, spec.endpoint);
  return scope;
}

cache_key make_cache_key(std::string_view scope, std::string_view model,
                         std::string_view input_type, int dimensions, std::string_view text) {
  std::string head{scope};
  append_field(head, model);
  append_field(head, input_type);
  append_field(head, std::to_string(dimensions));
  head += std::to_string(text.size());
  head.push_back(':');
  thread_local digest_context context;
  cache_key key;
  unsigned int length = 0;
  if (!context.ctx || EVP_DigestInit_ex(context.ctx, EVP_sha256(), nullptr) != 1 ||
      EVP_DigestUpdate(context.ctx, head.data(), head.size()) != 1 ||
      EVP_DigestUpdate(context.ctx, text.data(), text.size()) != 1 ||
      EVP_DigestFinal_ex(context.ctx, key.data(), &length) != 1 || length != key.size())
    throw std::runtime_error("SHA-256 is unavailable");
  return key;
}

embedding_cache::embedding_cache(cache_settings settings)
    : settings_(settings), blocks_(ready_blocks(settings.max_bytes)),
      shard_bytes_(
          (settings.max_bytes - ready_blocks(settings.max_bytes) * prepared_blocks::block_bytes) /
          shard_count) {
  for (std::size_t i = 0; i < shard_count; ++i)
    shards_.push_back(std::make_unique<shard>(shard_bytes_, blocks_));
}

std::size_t embedding_cache::key_hash::operator()(const cache_key& k) const {
  std::size_t h;
  std::memcpy(&h, k.data(), sizeof h);
  return h;
}

std::size_t embedding_cache::bookkeeping_bytes() {
  // A list node holds two links and the entry; a map node its link, the key, the iterator and
  // the cached hash; the bucket array a pointer per entry at load factor 1.
  constexpr std::size_t map_node =
      sizeof(void*) + sizeof(cache_key) + sizeof(std::list<entry>::iterator) + sizeof(std::size_t);
  return allocated_bytes(2 * sizeof(void*) + sizeof(entry)) + allocated_bytes(map_node) +
         sizeof(void*);
}

embedding_cache::shard& embedding_cache::shard_of(const cache_key& key) {
  // The digest's first bytes pick the bucket, its last byte the shard.
  return *shards_[key.back() % shard_count];
}

void embedding_cache::erase(shard& s, std::list<entry>::iterator it) {
  s.slabs.give_back(it->values, it->dims);
  s.index.erase(it->key);
  s.lru.erase(it);
}

std::size_t embedding_cache::erase_slab_of(shard& s, std::list<entry>::iterator victim) {
  auto dims = victim->dims;
  auto [begin, end] = s.slabs.slab_of(victim->values, dims);
  std::size_t erased = 0;
  for (auto it = s.lru.begin(); it != s.lru.end();) {
    auto next = std::next(it);
    if (it != victim && it->dims == dims && it->values >= begin && it->values < end) {
      erase(s, it);
      ++erased;
    }
    it = next;
  }
  erase(s, victim);
  return erased + 1;
}

bool embedding_cache::holds(const cache_key& key, clock_time now) {
  if (!enabled())
    return false;
  auto& s = shard_of(key);
  std::lock_guard guard{s.mutex};
  auto found = s.index.find(key);
  return found != s.index.end() && found->second->expires > now;
}

std::optional<cached_vector> embedding_cache::find(const cache_key& key, clock_time now) {
  if (!enabled())
    return std::nullopt;
  auto& s = shard_of(key);
  std::lock_guard guard{s.mutex};
  auto found = s.index.find(key);
  if (found == s.index.end()) {
    ++misses_;
    return std::nullopt;
  }
  auto it = found->second;
  if (it->expires <= now) {
    erase(s, it);
    ++expired_;
    ++misses_;
    return std::nullopt;
  }
  s.lru.splice(s.lru.begin(), s.lru, it);
  ++hits_;
  // A copy: the slot may be someone else's vector by the time the caller's answer is written.
  auto matrix = std::make_shared<embedding_matrix>();
  matrix->rows = 1;
  matrix->dims = it->dims;
  matrix->values.assign(it->values, it->values + it->dims);
  matrix->total_tokens = it->tokens;
  return cached_vector{std::move(matrix), it->tokens};
}

bool embedding_cache::insert(const cache_key& key, const float* row, std::size_t dims,
                             std::int64_t tokens, clock_time expires) {
  auto bound = shard_bytes_;
  auto& s = shard_of(key);
  if (!enabled() || s.slabs.most_slots(dims) == 0)
    return false;
  std::lock_guard guard{s.mutex};
  if (auto found = s.index.find(key); found != s.index.end())
    erase(s, found->second);
  // The least recently used go until the entry and its slot fit; a new slab counts whole. A
  // vector of the same size frees a slot this one takes. One of another size frees bytes only
  // with its whole slab, so its slab-mates go with it: without that, one vector of a new size
  // could take most of a shard's vectors down before a slab came free.
  for (;;) {
    bool room = s.slabs.has_room(dims);
    if (s.bytes() + bookkeeping_bytes() + (room ? 0 : s.slabs.next_slab_bytes(dims)) <= bound ||
        s.lru.empty())
      break;
    auto victim = std::prev(s.lru.end());
    if (room || victim->dims == dims) {
      erase(s, victim);
      ++evicted_;
    } else {
      evicted_ += erase_slab_of(s, victim);
    }
  }
  auto* slot = s.slabs.take(dims);
  std::copy(row, row + dims, slot);
  s.lru.push_front(entry{key, slot, dims, tokens, expires});
  s.index.emplace(key, s.lru.begin());
  return true;
}

void embedding_cache::store(const cache_key& key, const float* row, std::size_t dims,
                            std::int64_t tokens, clock_time now) {
  auto expires = now + settings_.ttl;
  if (!insert(key, row, dims, tokens, expires))
    return;
  ++stored_;
  if (settings_.stored_entries == 0)
    return;
  auto bytes = allocated_bytes(dims * sizeof(float)) + sizeof(unsaved_vector);
  std::lock_guard guard{unsaved_mutex_};
  if (unsaved_bytes_ + bytes > max_unsaved_bytes()) {
    ++unsaved_dropped_;
    return;
  }
  unsaved_.push_back(unsaved_vector{key, std::vector<float>(row, row + dims), tokens, expires});
  unsaved_bytes_ += bytes;
}

void embedding_cache::restore(const cache_key& key, const std::vector<float>& values,
                              std::int64_t tokens, clock_time expires) {
  if (insert(key, values.data(), values.size(), tokens, expires))
    ++restored_;
}

std::vector<unsaved_vector> embedding_cache::take_unsaved() {
  std::lock_guard guard{unsaved_mutex_};
  unsaved_bytes_ = 0;
  return std::exchange(unsaved_, {});
}

std::size_t embedding_cache::clear() {
  std::size_t dropped = 0;
  for (auto& s : shards_) {
    std::lock_guard guard{s->mutex};
    dropped += s->lru.size();
    s->index.clear();
    s->lru.clear();
    s->slabs.clear();
  }
  return dropped;
}

cache_stats embedding_cache::stats() const {
  cache_stats out;
  out.max_bytes = settings_.max_bytes;
  out.ttl_s = settings_.ttl.count();
  for (const auto& s : shards_) {
    std::lock_guard guard{s->mutex};
    out.bytes += s->bytes();
    out.entries += s->lru.size();
  }
  out.hits = hits_.load();
  out.misses = misses_.load();
  out.stored = stored_.load();
  out.evicted = evicted_.load();
  out.expired = expired_.load();
  out.stored_max_entries = settings_.stored_entries;
  out.restored = restored_.load();
  out.saved = saved_.load();
  out.unsaved_dropped = unsaved_dropped_.load();
  out.store_errors = store_errors_.load();
  return out;
}

} // namespace emr
