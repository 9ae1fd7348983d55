#pragma once

#include "store/backend.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

// S3-compatible object storage over HTTP with SigV4 (libcurl's CURLOPT_AWS_SIGV4), no SDK.
namespace ephemera::store {

struct S3Config {
  std::string bucket;
  std::string prefix;           // "" or "a/b/" (always ends in '/')
  std::string endpoint;         // scheme://host[:port]
  std::string region = "us-east-1";
  bool path_style = true;
  std::string access_key;
  std::string secret_key;
  std::string session_token;
  long connect_timeout = 10;    // seconds
  long stall_timeout = 30;      // seconds without progress
  long request_timeout = 900;   // seconds for one request
  int attempts = 4;             // tries for transient errors and timeouts
  uint64_t part_size = 16 << 20;       // upload parts
  uint64_t download_part = 8 << 20;    // ranged GETs of archives
  int parallel = 4;             // parts in flight, either way
};

// "bucket/prefix?endpoint=...&region=...&addressing=path|virtual"; credentials and the
// defaults from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION,
// EPHEMERA_S3_ENDPOINT.
S3Config parse_s3_url(const std::string& rest);
std::unique_ptr<Backend> open_s3(const std::string& rest);

// Delay before retry `attempt` (1-based): exponential from 200 ms, capped at 10 s, with
// jitter in [50%, 100%] from `jitter` (0..1); a server's Retry-After wins when given.
std::chrono::milliseconds retry_delay(int attempt, double jitter,
                                      std::optional<std::chrono::seconds> retry_after);

// A SigV4 presigned GET URL (query signing, UNSIGNED-PAYLOAD), exposed for tests.
std::string presign_get(const std::string& url_base, const std::string& host,
                        const std::string& canonical_uri, const std::string& region,
                        const std::string& access_key, const std::string& secret_key,
                        const std::string& session_token, const std::string& amz_date,
                        std::chrono::seconds ttl);

// Percent-encode every byte outside A-Za-z0-9-_.~ (and '/' too unless keep_slash).
std::string uri_encode(std::string_view s, bool keep_slash);

} // namespace ephemera::store
