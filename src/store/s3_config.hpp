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
// InputError for a limit that is set but is not a whole number in its range, naming it.
S3Config parse_s3_url(const std::string& rest);

// The value of the environment variable `name`: `fallback` when it is unset or empty, else
// a whole number from min (at least 0) to max, in decimal and nothing else; InputError
// naming the variable, its value (escaped) and the range otherwise.
long env_limit(const char* name, long fallback, long min, long max, const char* unit);

} // namespace ephemera::store
