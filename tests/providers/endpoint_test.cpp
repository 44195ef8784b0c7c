// Provider endpoints: which URLs emr accepts, how it splits them, and why it refuses the rest.

#include "providers/endpoint.hpp"

#include <gtest/gtest.h>

namespace emr {
namespace {

struct good_url {
  std::string url;
  bool tls;
  std::string host;
  std::uint16_t port;
  std::string target;
};

TEST(endpoint, splits_every_accepted_form) {
  const std::vector<good_url> rows{
      {"https://api.voyageai.com/v1/embeddings", true, "api.voyageai.com", 443, "/v1/embeddings"},
      {"http://127.0.0.1:8080/v1/embeddings", false, "127.0.0.1", 8080, "/v1/embeddings"},
      {"http://[::1]:8080/x", false, "::1", 8080, "/x"},
      {"https://[fd00::a:1]/v2/embed", true, "fd00::a:1", 443, "/v2/embed"},
      {"HTTPS://API.Cohere.com/v2/embed", true, "API.Cohere.com", 443, "/v2/embed"},
      {"http://tei", false, "tei", 80, "/"},
      {"http://tei_internal:65535", false, "tei_internal", 65535, "/"},
      {"http://host:1/", false, "host", 1, "/"},
      {"http://host:0000080/", false, "host", 80, "/"},
      // Percent-encoding stays as given on the request line; a host is decoded before it is
      // checked.
      {"http://host/a%20b/embed%2Fv1", false, "host", 80, "/a%20b/embed%2Fv1"},
      {"http://exa%6Dple.com/v1", false, "example.com", 80, "/v1"},
      // Azure-style gateways route by query.
      {"https://r.openai.azure.com/openai/deployments/d/embeddings?api-version=2024-02-01", true,
       "r.openai.azure.com", 443, "/openai/deployments/d/embeddings?api-version=2024-02-01"},
      {"http://host?v=1", false, "host", 80, "/?v=1"},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.url);
    auto parsed = parse_endpoint(row.url);
    ASSERT_TRUE(parsed.endpoint) << parsed.problem;
    EXPECT_TRUE(parsed.problem.empty());
    EXPECT_EQ(parsed.endpoint->tls, row.tls);
    EXPECT_EQ(parsed.endpoint->host, row.host);
    EXPECT_EQ(parsed.endpoint->port, row.port);
    EXPECT_EQ(parsed.endpoint->target, row.target);
  }
}

TEST(endpoint, refuses_with_the_reason) {
  const std::vector<std::pair<std::string, std::string>> rows{
      {"", "http:// or https://"},
      {"api.voyageai.com/v1/embeddings", "http:// or https://"},
      // Boost.URL 1.81 asserts on this shape; it must be refused before reaching the parser.
      {"httt:?", "http:// or https://"},
      {"http:?", "http:// or https://"},
      {"ftp://example.com/embed", "http:// or https://"},
      {"file:///etc/passwd", "http:// or https://"},
      {"javascript:alert(1)", "http:// or https://"},
      {"http:/x", "http:// or https://"},
      {"http:///v1/embeddings", "must name a host"},
      {"http://user:pw@host/", "user name or password"},
      {"http://user@host/", "user name or password"},
      {"http://@host/", "user name or password"},
      {"http://:secret@host/", "user name or password"},
      {"http://host/v1#frag", "fragment"},
      {"http://host/#", "fragment"},
      {"http://host:99999/", "port from 1 to 65535"},
      {"http://host:65536/", "port from 1 to 65535"},
      {"http://host:0/", "port from 1 to 65535"},
      {"http://host:/", "port from 1 to 65535"},
      {"http://host:4294967376/", "port from 1 to 65535"},
      {"http://host:-1/", "not a valid absolute URL"},
      {"http://host:8o/", "not a valid absolute URL"},
      {"http://host:80x", "not a valid absolute URL"},
      {" http://host/", "spaces or control characters"},
      {"http://host/ ", "spaces or control characters"},
      {"http://host/a b", "spaces or control characters"},
      {"http://host/\tx", "spaces or control characters"},
      {"http://host/x\r\nX-Injected: 1", "spaces or control characters"},
      {std::string("http://host/\0x", 14), "spaces or control characters"},
      {"http://host/\x7f", "spaces or control characters"},
      {"http://host/%zz", "not a valid absolute URL"},
      {"http://host/%4", "not a valid absolute URL"},
      {"http://ho%0Ast/", "DNS name"},
      {"http://h%C3%A9te.example/", "DNS name"},
      {"http://a!b/", "DNS name"},
      {"http://[::1/", "not a valid absolute URL"},
      {"http://[v1.fe]/", "DNS name, IPv4 or IPv6"},
      {"http://[fe80::1%25eth0]/", "not a valid absolute URL"},
      {"http://h\xc3\xa9te.example/", "not a valid absolute URL"},
      {"http://host/v1?key=sk-123", "credential in its query ('key')"},
      {"http://host/v1?a=1&API_KEY=sk-123", "credential in its query"},
      {"http://host/v1?access_token=x", "credential in its query"},
      {"http://host/" + std::string(2048, 'a'), "at most 2048 bytes"},
  };
  for (const auto& [url, why] : rows) {
    SCOPED_TRACE(url);
    auto parsed = parse_endpoint(url);
    EXPECT_FALSE(parsed.endpoint);
    EXPECT_NE(parsed.problem.find(why), std::string::npos) << parsed.problem;
  }
}

TEST(endpoint, never_quotes_a_refused_secret) {
  for (std::string url : {"http://user:hunter2@host/", "http://host/?token=hunter2",
                          "ftp://user:hunter2@host/", "http://user:hunter2@host/ x"}) {
    auto parsed = parse_endpoint(url);
    EXPECT_FALSE(parsed.endpoint);
    EXPECT_EQ(parsed.problem.find("hunter2"), std::string::npos) << parsed.problem;
  }
}

TEST(endpoint, redaction_drops_user_information_only) {
  EXPECT_EQ(redact_endpoint("http://user:pw@host:8080/v1?x=1"), "http://host:8080/v1?x=1");
  EXPECT_EQ(redact_endpoint("https://a@b@host/v1"), "https://host/v1");
  EXPECT_EQ(redact_endpoint("http://user:pw@host"), "http://host");
  // Refused by the parser (a space) and still redacted: records may predate the parser.
  EXPECT_EQ(redact_endpoint("http://user:pw@host/a b"), "http://host/a b");
  EXPECT_EQ(redact_endpoint("http://host/v1@x"), "http://host/v1@x");
  EXPECT_EQ(redact_endpoint("http://host?q=a@b"), "http://host?q=a@b");
  EXPECT_EQ(redact_endpoint("https://api.voyageai.com/v1/embeddings"),
            "https://api.voyageai.com/v1/embeddings");
  EXPECT_EQ(redact_endpoint("not a url"), "not a url");
}

} // namespace
} // namespace emr
