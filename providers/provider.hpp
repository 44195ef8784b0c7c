#pragma once
// The EmbeddingProvider interface: how emr speaks to one upstream, apart from how it batches.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace emr {

/// The provider types an operator can register.
enum class provider_type { voyage, cohere, openai, openai_compatible };

std::optional<provider_type> parse_provider_type(std::string_view);
std::string_view to_string(provider_type);

/// What an operator registered, minus secrets: the key's value stays in the environment.
struct provider_spec {
  std::string name;
  provider_type type = provider_type::voyage;
  std::string endpoint; ///< full URL of the embeddings endpoint
  std::string model;
  std::string api_key_env;   ///< name of the environment variable holding the key
  std::size_t max_batch = 0; ///< 0 = the provider's own maximum
  bool enabled = true;
  /// The provider's rate limits for this key, as the operator knows them; 0 = not set, learned
  /// from the provider's answers instead.
  std::uint64_t requests_per_minute = 0;
  std::uint64_t tokens_per_minute = 0;

  friend bool operator==(const provider_spec&, const provider_spec&) = default;
};

/// Per-call limits: a batch never exceeds either.
struct batch_limits {
  std::size_t max_texts = 1;
  std::size_t max_tokens = 0; ///< 0 = no per-call token cap
};

/// The texts of one upstream call and the parameters they share.
struct upstream_batch {
  std::string model;
  std::string input_type; ///< "", "query", "document", "classification" or "clustering"
  int dimensions = 0;     ///< 0 = the model's default
  std::vector<std::string_view> texts;
};

/// Vectors of one upstream answer, row-major float32, one row per text sent.
struct embedding_matrix {
  std::size_t rows = 0;
  std::size_t dims = 0;
  std::vector<float> values;
  std::int64_t total_tokens = 0;
  const float* row(std::size_t i) const { return values.data() + i * dims; }
};

/// What a 2xx answer must hold: one row per text sent, each of `dims` values. A provider that
/// ignores the requested dimensions must not hand callers vectors of another size.
struct expected_shape {
  std::size_t rows = 0;
  std::size_t dims = 0; ///< 0 = whatever the provider answers, as long as every row agrees
  /// The most numbers the answer's bytes can hold (each takes at least a digit and a comma):
  /// rows of more dimensions than that cannot all be in it, and are not allocated.
  std::size_t most_values = SIZE_MAX;
};

/// The most dimensions accepted from a provider whose model's dimensions emr does not know:
/// more than any embedding model has.
constexpr std::size_t most_unknown_dims = 16384;

/// The longest answer `rows` embeddings of `dims` dimensions (0: not known) can take, written
/// out at length: an answer past it is cut off unread.
constexpr std::size_t most_answer_bytes(std::size_t rows, std::size_t dims) {
  constexpr std::size_t per_value = 32, per_row = 256, envelope = 64 << 10;
  return envelope + rows * (per_row + per_value * (dims == 0 ? most_unknown_dims : dims));
}

/// The result of decoding an upstream 2xx body: vectors, or why they cannot be trusted.
struct decoded_response {
  std::optional<embedding_matrix> matrix;
  std::string error; ///< set when matrix is empty
};

/// Speaks one provider's wire format. Implementations are stateless and thread-safe.
class embedding_provider {
public:
  virtual ~embedding_provider() = default;
  /// Body of the POST for this batch.
  virtual std::string encode_request(const upstream_batch& batch) const = 0;
  /// Decodes a 2xx body; every row must be present exactly once, all of the expected length.
  virtual decoded_response decode_response(std::string_view body,
                                           expected_shape expected) const = 0;
  /// The provider's own error message from an error body (its error shape), or a short excerpt.
  virtual std::string error_message(std::string_view body) const = 0;
  /// The largest call the provider accepts for this model.
  virtual batch_limits limits(std::string_view model) const = 0;
  /// Whether the model takes a dimensions parameter with this value.
  virtual bool supports_dimensions(std::string_view model, int dimensions) const = 0;
  /// The length of the model's vectors when no dimensions are requested; 0 when unknown.
  virtual std::size_t native_dimensions(std::string_view model) const = 0;
};

/// The adapter for a registered provider (Cohere's API version follows the endpoint's path).
std::unique_ptr<embedding_provider> make_provider(const provider_spec& spec);

/// Conservative token estimate from bytes: never below what real tokenizers count for text.
inline std::size_t estimate_tokens(std::string_view text) {
  return text.size() / 3 + 1;
}

/// The length every vector of this batch's answer must have: the requested dimensions, else the
/// model's native ones; 0 when neither is known.
std::size_t expected_dimensions(const embedding_provider& provider, const upstream_batch& batch);

/// What one call of this model may carry: the provider's own maxima for the model, with the
/// operator's max batch applied. The one source of per-model limits: routing sizes chunks by it,
/// the batcher admits and packs by it, whichever model (registered or `provider/model`) is asked.
batch_limits model_limits(const embedding_provider& provider, std::string_view model,
                          provider_type type, std::size_t max_batch);
inline batch_limits model_limits(const provider_spec& spec, const embedding_provider& provider,
                                 std::string_view model) {
  return model_limits(provider, model, spec.type, spec.max_batch);
}

} // namespace emr
