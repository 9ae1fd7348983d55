#pragma once

#include "store/backend.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>

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
  long request_timeout = 60;    // seconds for one request, plus its bytes at k_min_rate
  long deadline = 1800;         // seconds for one listing or one download, retries included
  int attempts = 4;             // tries for transient errors and timeouts
  uint64_t part_size = 16 << 20;       // upload parts
  uint64_t download_part = 8 << 20;    // ranged GETs of archives
  int parallel = 4;             // parts in flight, either way
};

// The slowest transfer worth waiting for: a request may take request_timeout plus its size
// at this rate, so a server that trickles a few bytes a second cannot hold it for long.
constexpr uint64_t k_min_rate = 256 << 10; // bytes per second

// How long one request of `bytes` (its body or its range; 0 when unknown) may take.
std::chrono::seconds transfer_timeout(uint64_t bytes, std::chrono::seconds floor);

// The bounds of one listing, all its pages: a server that never ends one (repeating a
// continuation token, or sending fresh ones forever) is refused with StoreError, never
// followed until time or memory run out.
class ListingLimits {
public:
  struct Bounds {
    uint64_t pages = 100000;
    uint64_t keys = 1000000;
    uint64_t key_bytes = 256 << 20; // what the keys held take in memory
  };
  ListingLimits(std::string what, std::chrono::steady_clock::time_point deadline, Bounds bounds);
  ListingLimits(std::string what, std::chrono::steady_clock::time_point deadline)
      : ListingLimits(std::move(what), deadline, Bounds{}) {}
  // A page of `keys` keys of `key_bytes` bytes in all arrived; throws StoreError(permanent)
  // past the bounds and
  // StoreError(timeout) past the deadline.
  void page(uint64_t keys, uint64_t key_bytes = 0);
  // The listing goes on with `token` (the next continuation token, or the next markers
  // joined); throws StoreError(permanent) for a token seen before in this listing.
  void next(std::string_view token);
  std::chrono::steady_clock::time_point deadline() const { return m_deadline; }

private:
  std::string m_what;
  std::chrono::steady_clock::time_point m_deadline;
  Bounds m_bounds;
  uint64_t m_pages = 0;
  uint64_t m_keys = 0;
  uint64_t m_key_bytes = 0;
  std::set<std::string> m_tokens; // digests of the tokens seen, so a long one costs 64 bytes
};

// The store's key of a listed object: `listed` (the server's whole key) when it lies under
// `requested` (the whole prefix asked for, which starts with store_prefix) and what follows
// store_prefix is a valid key; std::nullopt for a key the listing must not hand on.
std::optional<std::string> listed_key(std::string_view listed, std::string_view store_prefix,
                                      std::string_view requested);

// "bucket/prefix?endpoint=...&region=...&addressing=path|virtual"; credentials and the
// defaults from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION,
// EPHEMERA_S3_ENDPOINT, and the EPHEMERA_S3_*_SECONDS / EPHEMERA_S3_DEADLINE limits. The
// bucket and every prefix component must be names S3 keeps as they are (InputError).
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
