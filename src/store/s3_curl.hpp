// One S3 request over libcurl, which is loaded when the first one is made: the request and
// the answer as the rest of the backend sees them, and the bounds every transfer keeps (the
// bytes it may return, the time it may take, the deadline of its operation).
#pragma once

#include "store/backend.hpp"
#include "store/s3_config.hpp"
#include "store/s3_xml.hpp"
#include "util/error.hpp"

#include <chrono>
#include <cstdint>
#include <exception>
#include <map>
#include <optional>
#include <string>
#include <utility>

namespace ephemera::store {

using Clock = std::chrono::steady_clock;

// The slowest transfer worth waiting for: a request may take request_timeout plus its size
// at this rate, so a server that trickles a few bytes a second cannot hold it for long.
constexpr uint64_t k_min_rate = 256 << 10; // bytes per second

// How long one request of `bytes` (its body or its range; 0 when unknown) may take.
std::chrono::seconds transfer_timeout(uint64_t bytes, std::chrono::seconds floor);

// A 2xx answer held in memory (a listing page, an upload's answer) is at most this: well
// above a page of 1000 keys of 1024 bytes each, every byte written as an XML entity.
constexpr uint64_t k_max_page = s3xml::k_max_document;

struct Response {
  long status = 0;
  std::string body; // error bodies and small responses
  std::string etag;
  std::optional<std::chrono::seconds> retry_after;
  std::optional<uint64_t> length; // Content-Length
  std::string location;           // of a redirect, which is never followed
  int64_t mtime = 0;
  uint64_t range_first = 0; // Content-Range: bytes first-last/total
  uint64_t range_last = 0;
  uint64_t total = 0;
  uint64_t received = 0;         // bytes of a 2xx body taken
  bool range_ignored = false;    // a 200 with the whole object to a Range request
  bool range_wrong = false;      // a 206 with other bytes than asked for
  bool length_wrong = false;     // a Content-Length other than the request's
  bool too_long = false;         // a 2xx body past what the request may return
  bool cut = false;              // an error body cut off at k_max_error_body
  std::exception_ptr sink_error; // what the sink threw, rethrown as it was
};

struct Request {
  std::string method = "GET";
  std::string key; // whole object key, checked ("" for the bucket)
  std::map<std::string, std::string> query;
  const std::string* body = nullptr;
  Sink* sink = nullptr;        // GET bodies on 2xx
  std::string* into = nullptr; // or into this, emptied before every try so it can be retried
  std::optional<std::pair<uint64_t, uint64_t>> range; // first and last byte
  uint64_t max_body = k_max_page; // the most a 2xx body may be; the transfer stops past it
  std::optional<uint64_t> length; // the exact size a 2xx body must have, when known
  std::optional<Clock::time_point> deadline; // of the operation this request is part of
};

// A server that answers a Range request with the whole object.
struct RangeIgnored : util::StoreError {
  using util::StoreError::StoreError;
};

// One try of r at url (whole, query included), signed with config's credentials and timed
// by its limits. Returns any answer the server completed, whatever its status; throws
// StoreError for a transfer that failed (transient), timed out (timeout) or was stopped
// because its body broke r's bounds (permanent; RangeIgnored for a whole object sent to a
// Range request); what a sink threw is rethrown as it was. `what` names the request.
Response send_once(const S3Config& config, const std::string& url, const Request& r,
                   const std::string& what);

// The error of an operation whose deadline (EPHEMERA_S3_DEADLINE) has passed.
util::StoreError out_of_time(const std::string& what, long deadline_seconds);

} // namespace ephemera::store
