// The S3 store's settings: bucket, prefix, endpoint, region and addressing from its URL;
// credentials and limits from the environment.
#pragma once

#include <cstdint>
#include <string>

namespace ephemera::store {

struct S3Config {
  std::string bucket;
  std::string prefix;   // "" or "a/b/" (always ends in '/')
  std::string endpoint; // scheme://host[:port]
  std::string region = "us-east-1";
  bool path_style = true;
  std::string access_key;
  std::string secret_key;
  std::string session_token;
  long connect_timeout = 10;        // seconds
  long stall_timeout = 30;          // seconds without progress
  long request_timeout = 60;        // seconds for one request, plus its bytes at k_min_rate
  long deadline = 1800;             // seconds for one listing or one download, retries included
  int attempts = 4;                 // tries for transient errors and timeouts
  uint64_t part_size = 16 << 20;    // upload parts
  uint64_t download_part = 8 << 20; // ranged GETs of archives
  int parallel = 4;                 // parts in flight, either way
};

// "bucket/prefix?endpoint=...&region=...&addressing=path|virtual"; credentials and the
// defaults from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION,
// EPHEMERA_S3_ENDPOINT, and the EPHEMERA_S3_*_SECONDS / EPHEMERA_S3_DEADLINE limits. The
// bucket and every prefix component must be names S3 keeps as they are (InputError).
S3Config parse_s3_url(const std::string& rest);

} // namespace ephemera::store
