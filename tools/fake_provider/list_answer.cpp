// Rendering the list answer; see list_answer.hpp.

#include "tools/fake_provider/list_answer.hpp"

#include "tools/fake_provider/embedding_encoding.hpp"
#include "tools/fake_vectors.hpp"

#include <boost/json.hpp>

#include <limits>

namespace emr::fake {

namespace {

void append_list_item(std::string& out, const embed_job& job, std::size_t i, malformed shape,
                      list_layout layout) {
  std::vector<float> v = fake_vector(job.model, job.input_type, job.texts[i], job.dims);
  if (shape == malformed::nan && i == 0 && !v.empty())
    v[0] = std::numeric_limits<float>::quiet_NaN();
  const std::string index = std::to_string(i + (shape == malformed::bad_index ? 1 : 0));
  const bool with_index = shape != malformed::missing_index;
  out += R"({"object":"embedding",)";
  if (layout.index_before_embedding && with_index)
    out += R"("index":)" + index + ',';
  out += R"("embedding":)";
  append_embedding(out, v, job.enc);
  if (!layout.index_before_embedding && with_index)
    out += R"(,"index":)" + index;
  out += '}';
}

} // namespace

std::string render_list(const embed_job& job, malformed shape, list_layout layout) {
  const std::size_t count = job.texts.size() - (shape == malformed::wrong_count ? 1 : 0);
  std::string out;
  out.reserve(64 + count * (static_cast<std::size_t>(job.dims) * 12 + 64));
  out += R"({"object":"list","data":[)";
  for (std::size_t i = 0; i < count; ++i) {
    if (i)
      out += ',';
    append_list_item(out, job, i, shape, layout);
  }
  out += R"(],"model":)";
  out += boost::json::serialize(std::string_view{job.model});
  const std::string n = std::to_string(job.total_tokens);
  if (layout.prompt_tokens)
    out += R"(,"usage":{"prompt_tokens":)" + n + R"(,"total_tokens":)" + n + "}}";
  else
    out += R"(,"usage":{"total_tokens":)" + n + "}}";
  return out;
}

} // namespace emr::fake
