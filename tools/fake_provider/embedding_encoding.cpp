// Float, quantized and base64 encodings of one vector; see embedding_encoding.hpp.

#include "tools/fake_provider/embedding_encoding.hpp"

#include "providers/float_codec.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace emr::fake {

namespace {

std::vector<int> quantize(const std::vector<float>& v, dtype type) {
  std::vector<int> out;
  if (type == dtype::int8 || type == dtype::uint8) {
    out.reserve(v.size());
    for (float x : v) {
      if (type == dtype::int8)
        out.push_back(static_cast<int>(std::clamp(std::lround(x * 127.0), -128L, 127L)));
      else
        out.push_back(static_cast<int>(std::clamp(std::lround((x + 1.0) * 127.5), 0L, 255L)));
    }
    return out;
  }
  // Bit-packed, MSB first, bit = 1 iff the component is positive; binary is offset by 128.
  out.assign((v.size() + 7) / 8, 0);
  for (std::size_t i = 0; i < v.size(); ++i)
    if (v[i] > 0)
      out[i / 8] |= 1 << (7 - i % 8);
  if (type == dtype::binary)
    for (int& x : out)
      x -= 128;
  return out;
}

void append_int_array(std::string& out, const std::vector<int>& v) {
  out += '[';
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i)
      out += ',';
    out += std::to_string(v[i]);
  }
  out += ']';
}

} // namespace

// Not emr's append_json_floats: that one writes a NaN as to_chars does ("nan"), and the fault
// that breaks an answer with a NaN sends it the way a JavaScript server would.
void append_float_array(std::string& out, const std::vector<float>& v) {
  out += '[';
  char buf[32];
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i)
      out += ',';
    if (std::isnan(v[i]))
      out += "NaN";
    else
      out.append(buf, std::to_chars(buf, buf + sizeof buf, v[i]).ptr);
  }
  out += ']';
}

void append_embedding(std::string& out, const std::vector<float>& v, encoding enc) {
  if (enc.type == dtype::float32) {
    if (!enc.base64)
      return append_float_array(out, v);
    out += '"';
    append_base64_floats(out, v.data(), v.size());
    out += '"';
    return;
  }
  const std::vector<int> q = quantize(v, enc.type);
  if (!enc.base64)
    return append_int_array(out, q);
  std::vector<unsigned char> bytes(q.size());
  std::transform(q.begin(), q.end(), bytes.begin(),
                 [](int x) { return static_cast<unsigned char>(x & 0xff); });
  out += '"';
  append_base64(out, bytes.data(), bytes.size());
  out += '"';
}

} // namespace emr::fake
