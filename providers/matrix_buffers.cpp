#include "providers/matrix_buffers.hpp"

#include "providers/fresh_pages.hpp"

namespace emr {

matrix_buffers::matrix_buffers(std::size_t most_kept_bytes, std::size_t smallest_kept_bytes)
    : most_kept_bytes_(most_kept_bytes), smallest_kept_bytes_(smallest_kept_bytes) {}

matrix_buffers& matrix_buffers::process_wide() {
  // Never destroyed: a matrix still held at exit gives its buffer back after static destruction.
  static auto* buffers = new matrix_buffers(16 << 20, 256 << 10);
  return *buffers;
}

std::vector<float> matrix_buffers::take(std::size_t floats) {
  std::vector<float> buffer;
  // A small matrix (a lone caller's) comes from the arenas: a kept buffer is for a batch's.
  if (floats * sizeof(float) < smallest_kept_bytes_) {
    buffer.assign(floats, 0.0f);
    return buffer;
  }
  {
    std::lock_guard guard{mutex_};
    if (auto fit = kept_.lower_bound(floats); fit != kept_.end()) {
      buffer = std::move(fit->second);
      kept_bytes_ -= fit->first * sizeof(float);
      kept_.erase(fit);
    }
  }
  if (buffer.capacity() < floats) {
    buffer.reserve(floats);
    map_in_for_writing(buffer.data(), floats * sizeof(float));
  }
  buffer.assign(floats, 0.0f);
  return buffer;
}

void matrix_buffers::give_back(std::vector<float> buffer) {
  auto floats = buffer.capacity();
  if (floats * sizeof(float) < smallest_kept_bytes_ || floats * sizeof(float) > most_kept_bytes_)
    return;
  buffer.clear();
  std::vector<std::vector<float>> dropped; // freed once the lock is released
  std::lock_guard guard{mutex_};
  kept_bytes_ += floats * sizeof(float);
  kept_.emplace(floats, std::move(buffer));
  while (kept_bytes_ > most_kept_bytes_) {
    auto smallest = kept_.begin();
    kept_bytes_ -= smallest->first * sizeof(float);
    dropped.push_back(std::move(smallest->second));
    kept_.erase(smallest);
  }
}

std::size_t matrix_buffers::kept_bytes() const {
  std::lock_guard guard{mutex_};
  return kept_bytes_;
}

std::shared_ptr<const embedding_matrix> share_matrix(embedding_matrix matrix,
                                                     matrix_buffers& buffers) {
  return {new embedding_matrix(std::move(matrix)), [&buffers](embedding_matrix* m) {
            buffers.give_back(std::move(m->values));
            delete m;
          }};
}

} // namespace emr
