#pragma once
// Constructors of the adapters behind make_provider, and the decoder the list-shaped APIs share.

#include "providers/provider.hpp"

#include <boost/json/array.hpp>

namespace emr {

std::unique_ptr<embedding_provider> make_voyage_provider();
std::unique_ptr<embedding_provider> make_cohere_provider(bool v2);
std::unique_ptr<embedding_provider> make_openai_provider(bool compatible);

/// The batch's texts as the JSON array every provider's request body carries.
boost::json::array text_array(const std::vector<std::string_view>& texts);

/// Decodes `{"data":[{"index":i,"embedding":...}],"usage":{<usage_key>:n}}` (Voyage, OpenAI).
decoded_response decode_data_list(std::string_view body, expected_shape expected,
                                  std::string_view usage_key);

} // namespace emr
