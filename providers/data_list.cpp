// The list-shaped answers of Voyage and OpenAI, decoded as they are parsed.
//
// Parsed into a document first, a 128-row answer became 128 copies of its base64 strings in
// freshly allocated memory, read once and freed: on a process's first burst, heap growth and
// the page faults behind it were a fifth of emr's CPU. Read with Boost.JSON's event parser, each
// row goes from the body straight to its vector; what the parser checks (well-formed JSON, depth)
// and what response_reader checks (every row once, one length, finite) stay as they were, and
// so do the errors, in the same order.

#include "providers/adapters.hpp"

#include "providers/float_codec.hpp"
#include "providers/response_reader.hpp"

#include <boost/json/basic_parser_impl.hpp>

#include <optional>
#include <string>
#include <vector>

namespace emr {

namespace {

namespace json = boost::json;

// The parser's events, tracked just deep enough to find each item's index and embedding and
// the usage count. Depths: the root object 1, the data list 2, its items 3, an embedding's
// array 4.
class data_list_events {
public:
  static constexpr std::size_t max_array_size = -1;
  static constexpr std::size_t max_object_size = -1;
  static constexpr std::size_t max_string_size = -1;
  static constexpr std::size_t max_key_size = -1;

  data_list_events(expected_shape expected, std::string_view usage_key)
      : reader_(expected), usage_key_(usage_key) {}

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }

  bool on_object_begin(json::error_code&) {
    if (data_list_ && depth_ == list_depth)
      item_.clear();
    else
      other_value();
    ++depth_;
    return true;
  }
  bool on_object_end(std::size_t, json::error_code&) {
    --depth_;
    if (data_list_ && depth_ == list_depth)
      end_item();
    return true;
  }
  bool on_array_begin(json::error_code&) {
    if (depth_ == root_depth && key_ == "data" && !data_seen_) {
      data_list_ = true;
      data_seen_ = true;
    } else if (in_item_field("embedding")) {
      item_.embedding = kind::numbers;
      item_.values.clear();
    } else {
      other_value();
    }
    ++depth_;
    return true;
  }
  bool on_array_end(std::size_t, json::error_code&) {
    --depth_;
    if (depth_ == root_depth)
      data_list_ = false;
    return true;
  }

  bool on_key_part(json::string_view s, std::size_t, json::error_code&) {
    key_part_.append(s.data(), s.size());
    return true;
  }
  bool on_key(json::string_view s, std::size_t, json::error_code&) {
    key_part_.append(s.data(), s.size());
    if (depth_ == root_depth) {
      key_ = key_part_;
      // A key given twice: which value counts is the sender's guess, not a fact. Two data lists
      // are refused; a second usage replaces the first, as the last of two keys did before.
      data_keys_ += key_ == "data" ? 1 : 0;
      if (key_ == "usage") {
        usage_field_ = false;
        tokens_ = 0;
      }
    } else if (data_list_ && depth_ == item_depth) {
      item_.key = key_part_;
    } else if (depth_ == root_depth + 1 && key_ == "usage") {
      usage_field_ = key_part_ == usage_key_;
      if (usage_field_)
        tokens_ = 0; // only an integer that follows counts
    }
    key_part_.clear();
    return true;
  }

  bool on_string_part(json::string_view s, std::size_t, json::error_code&) {
    if (in_item_field("embedding"))
      text_part_.append(s.data(), s.size());
    return true;
  }
  bool on_string(json::string_view s, std::size_t, json::error_code&) {
    if (!in_item_field("embedding"))
      return other_value();
    // Whole in one piece, unless it is long and has escapes (a slash may come as backslash
    // slash): the parser unescapes through a buffer of its own and hands on each bufferful.
    std::string_view text{s.data(), s.size()};
    if (!text_part_.empty()) {
      text_part_.append(s.data(), s.size());
      text = text_part_;
    }
    item_.values.clear();
    item_.embedding = decode_base64_floats(text, item_.values) ? kind::base64 : kind::bad_base64;
    text_part_.clear();
    return true;
  }

  bool on_number_part(json::string_view, json::error_code&) { return true; }
  bool on_int64(std::int64_t i, json::string_view, json::error_code&) {
    if (in_item_field("index")) {
      item_.index = i;
      return true;
    }
    if (depth_ == root_depth + 1 && key_ == "usage" && usage_field_) {
      tokens_ = i;
      return true;
    }
    return number(static_cast<double>(i));
  }
  bool on_uint64(std::uint64_t u, json::string_view, json::error_code&) {
    return number(static_cast<double>(u));
  }
  bool on_double(double d, json::string_view, json::error_code&) { return number(d); }
  bool on_bool(bool, json::error_code&) { return other_value(); }
  bool on_null(json::error_code&) { return other_value(); }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }

  /// The answer, once the parser took the whole body without an error.
  decoded_response finish(std::string_view body) {
    if (data_keys_ > 1)
      return reader_.fail("upstream response has more than one data list");
    if (!data_seen_)
      return reader_.fail("upstream response has no data list: " + body_excerpt(body));
    return reader_.finish(failed_ ? 0 : tokens_);
  }

private:
  static constexpr int root_depth = 1, list_depth = 2, item_depth = 3, embedding_depth = 4;

  // What an item's embedding turned out to be.
  enum class kind { none, base64, bad_base64, numbers, bad_numbers, other };
  struct item {
    std::string key;
    std::optional<std::int64_t> index;
    kind embedding = kind::none;
    std::vector<float> values;
    /// Ready for the next item; the vector keeps its room for the next row.
    void clear() {
      key.clear();
      index.reset();
      embedding = kind::none;
      values.clear();
    }
  };

  /// Whether the value now parsed is the current item's field `name`.
  bool in_item_field(std::string_view name) const {
    return data_list_ && depth_ == item_depth && item_.key == name;
  }

  // A number: a component of an embedding array, or else a value of some other kind.
  bool number(double d) {
    if (data_list_ && depth_ == embedding_depth && item_.key == "embedding" &&
        item_.embedding == kind::numbers) {
      item_.values.push_back(static_cast<float>(d));
      return true;
    }
    return other_value();
  }

  // A value other than those looked for, about to be parsed at the current depth. In the data
  // list it is an item that is no object; as an item's index, none that counts (not an int64);
  // as its embedding, neither an array nor a string; inside an embedding's array, not a number.
  bool other_value() {
    if (!data_list_)
      return true;
    if (depth_ == list_depth) {
      fail_item("upstream response item lacks an index or an embedding");
    } else if (depth_ == item_depth) {
      if (item_.key == "index")
        item_.index.reset();
      else if (item_.key == "embedding")
        item_.embedding = kind::other;
    } else if (depth_ == embedding_depth && item_.key == "embedding" &&
               item_.embedding == kind::numbers) {
      item_.embedding = kind::bad_numbers;
    }
    return true;
  }

  void fail_item(std::string why) {
    if (failed_)
      return;
    reader_.fail(std::move(why));
    failed_ = true;
  }

  // An item is complete: its row goes to the reader, or the first failure stays. The rest of
  // the body is still parsed, so that malformed JSON after it is told as such.
  void end_item() {
    if (failed_)
      return;
    if (!item_.index || item_.embedding == kind::none)
      return fail_item("upstream response item lacks an index or an embedding");
    std::string_view unreadable;
    if (item_.embedding == kind::bad_base64)
      unreadable = "upstream returned an invalid base64 embedding";
    else if (item_.embedding == kind::bad_numbers)
      unreadable = "upstream returned a non-numeric embedding value";
    else if (item_.embedding == kind::other)
      unreadable = "upstream returned an embedding that is neither an array nor a string";
    failed_ = !reader_.add_values(*item_.index, item_.values, unreadable);
  }

  response_reader reader_;
  std::string_view usage_key_;
  int depth_ = 0;        ///< of the structure whose contents are being parsed
  std::string key_;      ///< the root object's current key
  std::string key_part_; ///< a key arriving in pieces
  std::string text_part_;
  bool data_list_ = false; ///< inside the root's "data" array
  bool data_seen_ = false;
  int data_keys_ = 0;
  bool usage_field_ = false;
  item item_;
  bool failed_ = false;
  std::int64_t tokens_ = 0;
};

} // namespace

decoded_response decode_data_list(std::string_view body, expected_shape expected,
                                  std::string_view usage_key) {
  json::parse_options opts;
  opts.max_depth = 16;
  json::basic_parser<data_list_events> parser{opts, expected, usage_key};
  json::error_code ec;
  auto used = parser.write_some(false, body.data(), body.size(), ec);
  if (!ec && used < body.size())
    ec = json::error::extra_data;
  if (ec)
    return {std::nullopt,
            "upstream returned malformed JSON (" + ec.message() + "): " + body_excerpt(body)};
  return parser.handler().finish(body);
}

} // namespace emr
