#pragma once
// Vectors already paid for, by text: a byte-bounded LRU shared by every request actor, so a
// caller whose texts were embedded before (a re-index, a retried job, a popular query) sends only
// the new ones upstream. Thread-safe; time is passed in.

#include "actors/messages.hpp"
#include "actors/stat_field.hpp"
#include "actors/vector_slabs.hpp"

#include <array>
#include <atomic>
#include <list>
#include <mutex>
#include <unordered_map>

namespace emr {

/// What a cached vector is filed under: SHA-256 over the provider's scope (its type and
/// endpoint), the model, the input type, the dimensions and the text, each length-prefixed so
/// that no two different tuples encode alike. Two entries collide only if SHA-256 does; the text
/// itself is never kept. Providers registered under other names on the same endpoint share
/// entries, and a provider moved to another endpoint finds none of its old ones.
using cache_key = std::array<unsigned char, 32>;

/// What every key of one provider shares: its type and endpoint, length-prefixed.
std::string cache_scope(const provider_spec& spec);

/// The key of `text` asked of `model` at the provider with `scope`, with this input type and
/// dimensions.
cache_key make_cache_key(std::string_view scope, std::string_view model,
                         std::string_view input_type, int dimensions, std::string_view text);

/// One text's vector as the provider answered it, and its share of that call's tokens.
struct cached_vector {
  shared_matrix vector; ///< one row
  std::int64_t tokens = 0;
};

struct cache_settings {
  std::size_t max_bytes = 256 * 1024 * 1024; ///< 0 turns the cache off
  std::chrono::seconds ttl{24 * 3600};
  /// Most vectors also kept in the store (http/stored_cache.hpp); 0 keeps them in memory only.
  std::size_t stored_entries = 0;
};

/// A vector stored in the memory cache that the store does not have yet.
struct unsaved_vector {
  cache_key key;
  std::vector<float> values;
  std::int64_t tokens = 0;
  clock_time expires{};
};

struct cache_stats {
  std::uint64_t max_bytes = 0;
  std::uint64_t bytes = 0;
  std::uint64_t entries = 0;
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;
  std::uint64_t stored = 0;
  std::uint64_t evicted = 0; ///< to stay within max_bytes
  std::uint64_t expired = 0; ///< found past their TTL
  std::int64_t ttl_s = 0;
  std::uint64_t stored_max_entries = 0;
  std::uint64_t restored = 0;        ///< read back from the store into memory
  std::uint64_t saved = 0;           ///< written to the store
  std::uint64_t unsaved_dropped = 0; ///< new vectors never written: the store fell behind
  std::uint64_t store_errors = 0;    ///< reads and writes of the store that failed
};

template <class F> void describe(const cache_stats& s, F&& f) {
  using enum metric_type;
  f(s.max_bytes, {"max_bytes", gauge, "emr_cache_max_bytes",
                  "The embedding cache's bound: its entries never take more bytes."});
  f(s.bytes, {"bytes", gauge, "emr_cache_bytes",
              "Bytes the embedding cache's entries take (vectors and bookkeeping)."});
  f(s.entries, {"entries", gauge, "emr_cache_entries", "Texts the embedding cache holds."});
  f(s.hits, {"hits", counter, "emr_cache_hits_total",
             "Texts answered from the embedding cache instead of upstream."});
  f(s.misses, {"misses", counter, "emr_cache_misses_total",
               "Texts looked up in the embedding cache and not found."});
  f(s.stored,
    {"stored", counter, "emr_cache_stored_total", "Texts whose vectors the embedding cache kept."});
  f(s.evicted, {"evicted", counter, "emr_cache_evictions_total",
                "Texts the embedding cache dropped, least recently used first, to stay in bound."});
  f(s.expired, {"expired", counter, "emr_cache_expired_total",
                "Texts found in the embedding cache past their time to live."});
  f(s.ttl_s, {"ttl_s"});
  f(s.stored_max_entries,
    {"stored_max_entries", gauge, "emr_cache_stored_max_entries",
     "Most vectors the embedding cache keeps in the store; 0 keeps them in memory only."});
  f(s.restored, {"restored", counter, "emr_cache_restored_total",
                 "Texts the embedding cache read back from the store (another replica or an "
                 "earlier run embedded them)."});
  f(s.saved, {"saved", counter, "emr_cache_saved_total",
              "New vectors the embedding cache wrote to the store."});
  f(s.unsaved_dropped, {"unsaved_dropped", counter, "emr_cache_unsaved_dropped_total",
                        "New vectors never written to the store because it fell behind."});
  f(s.store_errors, {"store_errors", counter, "emr_cache_store_errors_total",
                     "Reads and writes of the embedding cache's stored vectors that failed."});
}

class embedding_cache {
public:
  explicit embedding_cache(cache_settings settings = {});

  bool enabled() const { return settings_.max_bytes > 0; }
  /// The vector kept under `key`, if one is and its time to live has not passed.
  std::optional<cached_vector> find(const cache_key& key, clock_time now);
  /// Keeps a copy of one row: the least recently used entries go until it fits.
  void store(const cache_key& key, const float* row, std::size_t dims, std::int64_t tokens,
             clock_time now);
  /// Whether a live vector is kept under `key`; counts neither a hit nor a miss.
  bool holds(const cache_key& key, clock_time now);
  /// Keeps a vector read back from the store, without writing it there again.
  void restore(const cache_key& key, const std::vector<float>& values, std::int64_t tokens,
               clock_time expires);
  /// Drops every entry; returns how many there were.
  std::size_t clear();
  cache_stats stats() const;

  /// The vectors stored since the last call, for the store; only kept when stored_entries > 0.
  std::vector<unsaved_vector> take_unsaved();
  void count_saved(std::size_t n) { saved_ += n; }
  void count_unsaved_dropped(std::size_t n) { unsaved_dropped_ += n; }
  void count_store_error() { ++store_errors_; }
  /// The bytes of new vectors that may wait for the store: an eighth of max_bytes. More are
  /// dropped, and counted, while the store falls behind.
  std::size_t max_unsaved_bytes() const { return settings_.max_bytes / 8; }

  /// What one entry counts against max_bytes besides its vector's slot: its key and the list
  /// and map nodes that file it.
  static std::size_t bookkeeping_bytes();

private:
  struct entry {
    cache_key key;
    float* values = nullptr; ///< a slot of the shard's slabs
    std::size_t dims = 0;
    std::int64_t tokens = 0;
    clock_time expires{};
  };
  struct key_hash {
    std::size_t operator()(const cache_key& k) const;
  };
  // Each shard holds an equal part of the bound, so concurrent callers rarely share a lock.
  struct shard {
    shard(std::size_t bound, prepared_blocks& blocks) : slabs(bound, bookkeeping_bytes(), blocks) {}
    mutable std::mutex mutex;
    std::list<entry> lru; ///< most recently used first
    std::unordered_map<cache_key, std::list<entry>::iterator, key_hash> index;
    vector_slabs slabs;
    std::size_t bytes() const { return lru.size() * bookkeeping_bytes() + slabs.bytes(); }
  };
  static constexpr std::size_t shard_count = 16;
  shard& shard_of(const cache_key& key);
  static void erase(shard& s, std::list<entry>::iterator it);
  /// Erases `victim` and every entry whose vector shares its slab; returns how many went.
  static std::size_t erase_slab_of(shard& s, std::list<entry>::iterator victim);
  /// False when even an empty shard has no room for it.
  bool insert(const cache_key& key, const float* row, std::size_t dims, std::int64_t tokens,
              clock_time expires);

  cache_settings settings_;
  prepared_blocks blocks_;  ///< before the shards: their slabs give blocks back as they go
  std::size_t shard_bytes_; ///< each shard's part of max_bytes, less the blocks written ahead
  std::vector<std::unique_ptr<shard>> shards_;
  std::atomic<std::uint64_t> hits_{0}, misses_{0}, stored_{0}, evicted_{0}, expired_{0};
  std::atomic<std::uint64_t> restored_{0}, saved_{0}, unsaved_dropped_{0}, store_errors_{0};
  std::mutex unsaved_mutex_;
  std::vector<unsaved_vector> unsaved_;
  std::size_t unsaved_bytes_ = 0;
};

} // namespace emr
