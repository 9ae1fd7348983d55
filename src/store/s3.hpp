#pragma once

#include "store/backend.hpp"
#include "store/s3_client.hpp"
#include "store/s3_config.hpp"
#include "store/s3_curl.hpp"
#include "store/s3_sigv4.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>

// S3-compatible object storage over HTTP with SigV4 (libcurl's CURLOPT_AWS_SIGV4), no SDK.
// The backend is in s3.cpp; its layers, below it: s3_client (retries, classification,
// URLs), s3_curl (the libcurl shim and one request), s3_sigv4 (signing), s3_config
// (settings), s3_parts (the pool for parts), s3_xml (answers).
namespace ephemera::store {

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

// The S3 backend of an s3:// URL without its scheme (parse_s3_url); throws
// StoreError(unauthorized) when there are no credentials.
std::unique_ptr<Backend> open_s3(const std::string& rest);

} // namespace ephemera::store
