// The S3 protocol's transport: where a key's requests go (URL, addressing), each request
// retried with backoff while it may be, and a failed answer classified into a StoreError.
#pragma once

#include "store/s3_config.hpp"
#include "store/s3_curl.hpp"

#include <chrono>
#include <map>
#include <optional>
#include <string>

namespace ephemera::store {

// Delay before retry `attempt` (1-based): exponential from 200 ms, capped at 10 s, with
// jitter in [50%, 100%] from `jitter` (0..1); a server's Retry-After wins when given.
std::chrono::milliseconds retry_delay(int attempt, double jitter,
                                      std::optional<std::chrono::seconds> retry_after);

class S3Client {
public:
  explicit S3Client(S3Config config);
  const S3Config& config() const { return m_config; }

  // The whole key of a store key, checked first: nothing outside the store's prefix, and no
  // key that a server or libcurl could read as another, is ever asked for.
  std::string full(const std::string& key) const;
  // s3://bucket/prefix/key for people; a key or prefix that is not valid (named only in a
  // message about it) is escaped.
  std::string url(const std::string& key) const;
  // A presigned link to the store key: a GET, or another method with query parameters of
  // its own (a part's number and upload id).
  std::string presign(const std::string& key, std::chrono::seconds ttl,
                      const std::string& method = "GET",
                      const std::map<std::string, std::string>& query = {}) const;

  // r, retried while its errors are transient or timeouts, up to config().attempts and its
  // deadline, and never once bytes have reached its sink. Returns a 2xx answer, or a 404
  // when allow_404; throws StoreError classified otherwise.
  Response perform(const Request& r, bool allow_404) const;
  // The StoreError of a failed answer: its kind from the status and S3 <Code>, its message
  // with the server's words escaped.
  [[noreturn]] void classify(const Response& resp, const std::string& what) const;

private:
  std::string canonical_uri(const std::string& whole_key) const;
  std::string request_url(const Request& r) const;

  S3Config m_config;
  std::string m_scheme;
  std::string m_host;
};

} // namespace ephemera::store
