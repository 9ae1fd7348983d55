// One S3 request made with libcurl (curl_lib.hpp loads it at the first request): URL,
// signing, timeouts, and the checks every byte of an answer passes before it is kept.
#include "store/s3_curl.hpp"

#include "store/curl_lib.hpp"
#include "util/budget.hpp"
#include "util/sha256.hpp"

#include <curl/curl.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>

namespace ephemera::store {

using util::StoreError;
using util::StoreErrorKind;

std::chrono::seconds transfer_timeout(uint64_t bytes, std::chrono::seconds floor) {
  return floor + std::chrono::seconds(bytes / k_min_rate);
}

StoreError out_of_time(const std::string& what, long deadline_seconds) {
  return StoreError(
      StoreErrorKind::timeout,
      fmt::format("unable to {}: out of time, the operation may take {} s (EPHEMERA_S3_DEADLINE)",
                  what, deadline_seconds));
}

namespace {

// Of an error body, what is kept to explain the failure; the transfer stops there.
constexpr size_t k_max_error_body = 64 << 10;

struct WriteContext {
  Response* resp;
  const Request* request;
};

// Every byte of a body passes here. A 2xx body is checked before its first byte is kept
// (a whole object, or other bytes, must not pass for the range that was asked for, nor
// an object of another size for the one the manifest names) and stopped as soon as it
// runs past what the request may return; an error body is kept up to k_max_error_body.
size_t on_write(char* data, size_t size, size_t n, void* user) {
  auto* ctx = static_cast<WriteContext*>(user);
  Response* resp = ctx->resp;
  const Request& r = *ctx->request;
  size_t bytes = size * n;
  if (resp->status / 100 != 2) {
    size_t room = k_max_error_body - std::min(resp->body.size(), k_max_error_body);
    resp->body.append(data, std::min(bytes, room));
    if (bytes > room) {
      resp->cut = true;
      return 0;
    }
    return bytes;
  }
  if (r.range && resp->status != 206) {
    resp->range_ignored = true;
    return 0;
  }
  if (r.range && (resp->range_first != r.range->first || resp->range_last != r.range->second)) {
    resp->range_wrong = true;
    return 0;
  }
  if (r.length && resp->length && *resp->length != *r.length) {
    resp->length_wrong = true;
    return 0;
  }
  if (bytes > r.max_body - resp->received || (resp->length && *resp->length > r.max_body)) {
    resp->too_long = true;
    return 0;
  }
  resp->received += bytes;
  if (r.sink != nullptr) {
    try {
      r.sink->write(data, bytes);
    } catch (...) {
      resp->sink_error = std::current_exception();
      return 0; // aborts the transfer; the sink's error is rethrown as it was
    }
  } else {
    resp->body.append(data, bytes);
  }
  return bytes;
}

// Called about once a second while a transfer runs, bytes or none: a nonzero answer ends it.
int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const auto* ctx = static_cast<const WriteContext*>(user);
  return ctx->request->sink != nullptr && ctx->request->sink->cancelled() ? 1 : 0;
}

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* resp = static_cast<Response*>(user);
  std::string line(data, size * n);
  auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    value.erase(value.find_last_not_of(" \t\r\n") + 1);
    if (name == "etag") {
      resp->etag = value;
    } else if (name == "retry-after") {
      // Clamped here: a huge value must not wrap when it becomes milliseconds.
      resp->retry_after =
          std::chrono::seconds(std::clamp(std::strtoll(value.c_str(), nullptr, 10), 0LL, 3600LL));
    } else if (name == "content-length") {
      resp->length = std::strtoull(value.c_str(), nullptr, 10);
    } else if (name == "location") {
      resp->location = value.substr(0, 300);
    } else if (name == "content-range") {
      unsigned long long first = 0, last = 0, total = 0;
      if (std::sscanf(value.c_str(), "bytes %llu-%llu/%llu", &first, &last, &total) == 3) {
        resp->range_first = first;
        resp->range_last = last;
        resp->total = total;
      }
    } else if (name == "last-modified") {
      struct tm tm {};
      if (::strptime(value.c_str(), "%a, %d %b %Y %H:%M:%S", &tm) != nullptr) {
        resp->mtime = ::timegm(&tm);
      }
    }
  } else if (line.rfind("HTTP/", 0) == 0) {
    *resp = Response{}; // a new response (after a redirect or 100 Continue)
    resp->status = std::atol(line.substr(line.find(' ') + 1).c_str());
  }
  return size * n;
}

struct Upload {
  const std::string* body;
  size_t pos = 0;
};

size_t on_read(char* buf, size_t size, size_t n, void* user) {
  auto* up = static_cast<Upload*>(user);
  size_t len = std::min(size * n, up->body->size() - up->pos);
  std::memcpy(buf, up->body->data() + up->pos, len);
  up->pos += len;
  return len;
}

// Why on_write stopped a transfer. An error body cut short is still read for its <Code>.
void write_error(const Request& r, const Response& resp, const std::string& what) {
  if (resp.cut) {
    return;
  }
  if (resp.sink_error) {
    std::rethrow_exception(resp.sink_error);
  }
  if (resp.range_ignored) {
    throw RangeIgnored(
        StoreErrorKind::permanent,
        fmt::format("unable to {}: the server answered a Range request with the whole object",
                    what));
  }
  if (resp.range_wrong) {
    throw StoreError(StoreErrorKind::permanent,
                     fmt::format("unable to {}: asked for bytes {}-{}, the server sent {}-{}", what,
                                 r.range->first, r.range->second, resp.range_first,
                                 resp.range_last));
  }
  if (resp.length_wrong) {
    throw StoreError(StoreErrorKind::permanent,
                     fmt::format("unable to {}: the server says it is {} bytes, expected {}", what,
                                 resp.length.value_or(0), *r.length));
  }
  if (resp.too_long) {
    throw StoreError(
        StoreErrorKind::permanent,
        fmt::format("unable to {}: the server sent more than the {} bytes this request may return",
                    what, r.max_body));
  }
  throw StoreError(StoreErrorKind::transient,
                   fmt::format("unable to {}: the transfer was stopped", what));
}

} // namespace

Response send_once(const S3Config& config, const std::string& url, const Request& r,
                   const std::string& what) {
  const CurlLib& c = CurlLib::get("the S3 store");
  CURL* curl = c.easy_init();
  if (curl == nullptr) {
    throw StoreError(StoreErrorKind::transient, "unable to start a request");
  }
  std::unique_ptr<CURL, void (*)(CURL*)> guard(curl, c.easy_cleanup);
  // Every transfer ends by a time proportional to its size, and by its operation's deadline.
  uint64_t bytes = r.body != nullptr                               ? r.body->size()
                   : r.length                                      ? *r.length
                   : r.sink != nullptr && r.max_body != UINT64_MAX ? r.max_body
                                                                   : 0;
  auto budget = std::chrono::duration_cast<std::chrono::milliseconds>(
      transfer_timeout(bytes, std::chrono::seconds(config.request_timeout)));
  bool by_deadline = false;
  if (r.deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*r.deadline - Clock::now());
    if (left <= std::chrono::milliseconds(0)) {
      throw out_of_time(what, config.deadline);
    }
    by_deadline = left < budget;
    budget = std::min(budget, left);
  }
  // The phase's time budget (pre --budget) bounds it too, and says so when it is what ran out.
  bool by_budget = false;
  if (auto left = util::budget::left()) {
    if (left->count() == 0) {
      throw util::budget::exceeded("unable to " + what);
    }
    by_budget = *left <= budget;
    budget = std::min(budget, *left);
  }
  Response resp;
  WriteContext ctx{&resp, &r};
  Upload up{r.body};
  std::string hash = r.body != nullptr ? util::sha256_hex(*r.body) : util::sha256_hex("");
  struct curl_slist* headers = nullptr;
  headers = c.slist_append(headers, ("x-amz-content-sha256: " + hash).c_str());
  if (!config.session_token.empty()) {
    headers = c.slist_append(headers, ("x-amz-security-token: " + config.session_token).c_str());
  }
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> hguard(headers, c.slist_free_all);
  std::string sigv4 = "aws:amz:" + config.region + ":s3";
  c.easy_setopt(curl, CURLOPT_URL, url.c_str());
  c.easy_setopt(curl, CURLOPT_AWS_SIGV4, sigv4.c_str());
  c.easy_setopt(curl, CURLOPT_USERNAME, config.access_key.c_str());
  c.easy_setopt(curl, CURLOPT_PASSWORD, config.secret_key.c_str());
  c.easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  c.easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  c.easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, config.connect_timeout);
  c.easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
  c.easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, config.stall_timeout);
  c.easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(budget.count()));
  // The path goes out as it was signed: no dot segments removed (a checked key has none),
  // no redirect followed (to another host, with the credentials), no scheme but HTTP(S).
  c.easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);
  c.easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  c.easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  c.easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_write);
  c.easy_setopt(curl, CURLOPT_WRITEDATA, &ctx);
  c.easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  c.easy_setopt(curl, CURLOPT_HEADERDATA, &resp);
  if (r.sink != nullptr) {
    c.easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    c.easy_setopt(curl, CURLOPT_XFERINFODATA, &ctx);
    c.easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  }
  if (r.method == "HEAD") {
    c.easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (r.method == "PUT") {
    c.easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    c.easy_setopt(curl, CURLOPT_READFUNCTION, on_read);
    c.easy_setopt(curl, CURLOPT_READDATA, &up);
    c.easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(r.body->size()));
  } else if (r.method == "POST") {
    c.easy_setopt(curl, CURLOPT_POST, 1L);
    c.easy_setopt(curl, CURLOPT_POSTFIELDS, r.body != nullptr ? r.body->c_str() : "");
    c.easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                  static_cast<curl_off_t>(r.body != nullptr ? r.body->size() : 0));
  } else if (r.method != "GET") {
    c.easy_setopt(curl, CURLOPT_CUSTOMREQUEST, r.method.c_str());
  }
  std::string range;
  if (r.range) {
    range = fmt::format("{}-{}", r.range->first, r.range->second);
    c.easy_setopt(curl, CURLOPT_RANGE, range.c_str());
  }
  CURLcode rc = c.easy_perform(curl);
  long status = 0;
  c.easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  resp.status = status;
  if (rc == CURLE_WRITE_ERROR) {
    write_error(r, resp, what);
  }
  if (rc == CURLE_ABORTED_BY_CALLBACK) {
    throw StoreError(StoreErrorKind::permanent,
                     fmt::format("unable to {}: stopped, the bytes are no longer wanted", what));
  }
  if (rc == CURLE_OPERATION_TIMEDOUT && by_budget && util::budget::ran_out_by_timeout()) {
    throw util::budget::exceeded("unable to " + what);
  }
  if (rc == CURLE_OPERATION_TIMEDOUT && by_deadline) {
    throw out_of_time(what, config.deadline);
  }
  if (rc == CURLE_OPERATION_TIMEDOUT) {
    throw StoreError(StoreErrorKind::timeout,
                     fmt::format("unable to {}: timed out (no progress for {} s, or over {} s)",
                                 what, config.stall_timeout, budget.count() / 1000));
  }
  if (rc != CURLE_OK) {
    throw StoreError(StoreErrorKind::transient,
                     fmt::format("unable to {}: {}", what, c.easy_strerror(rc)));
  }
  if (r.method != "HEAD" && status / 100 == 2 && r.length && resp.received != *r.length) {
    throw StoreError(StoreErrorKind::permanent,
                     fmt::format("unable to {}: the server sent {} bytes, expected {}", what,
                                 resp.received, *r.length));
  }
  return resp;
}

} // namespace ephemera::store
