#include "providers/matrix_buffers.hpp"

namespace emr {

matrix_buffers& decoded_matrix_buffers() {
  // Never destroyed: a matrix still held at exit gives its buffer back after static destruction.
  // A decoder writes every row, so a new buffer's pages are mapped in at once.
  static auto* buffers = new matrix_buffers(16 << 20, 256 << 10, true);
  return *buffers;
}

std::shared_ptr<const embedding_matrix> share_matrix(embedding_matrix matrix,
                                                     matrix_buffers& buffers) {
  return {new embedding_matrix(std::move(matrix)), [&buffers](embedding_matrix* m) {
            buffers.give_back(std::move(m->values));
            delete m;
          }};
}

} // namespace emr
