// Retries with backoff, error classification and URL building for the S3 backend.
#include "store/s3_client.hpp"

#include "store/backend.hpp"
#include "store/s3_sigv4.hpp"
#include "store/s3_xml.hpp"
#include "util/budget.hpp"
#include "util/log.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <random>
#include <thread>

namespace ephemera::store {

using util::StoreError;
using util::StoreErrorKind;

std::chrono::milliseconds retry_delay(int attempt, double jitter,
                                      std::optional<std::chrono::seconds> retry_after) {
  if (retry_after) {
    return std::min<std::chrono::milliseconds>(*retry_after, std::chrono::seconds(60));
  }
  double base = 200.0 * static_cast<double>(1u << std::min(attempt - 1, 10));
  base = std::min(base, 10000.0);
  double factor = 0.5 + 0.5 * std::clamp(jitter, 0.0, 1.0);
  return std::chrono::milliseconds(static_cast<int64_t>(base * factor));
}

S3Client::S3Client(S3Config config) : m_config(std::move(config)) {
  auto scheme_end = m_config.endpoint.find("://");
  m_scheme = m_config.endpoint.substr(0, scheme_end);
  m_host = m_config.endpoint.substr(scheme_end + 3);
  while (!m_host.empty() && m_host.back() == '/') {
    m_host.pop_back();
  }
  if (!m_config.path_style) {
    m_host = m_config.bucket + "." + m_host;
  }
}

std::string S3Client::full(const std::string& key) const {
  check_key(key);
  return m_config.prefix + key;
}

std::string S3Client::url(const std::string& key) const {
  bool prefix = key.empty() || (key.back() == '/' && valid_key(key.substr(0, key.size() - 1)));
  return fmt::format("s3://{}/{}{}", m_config.bucket, m_config.prefix,
                     valid_key(key) || prefix ? key : util::printable(key.substr(0, 200)));
}

std::string S3Client::presign(const std::string& key, std::chrono::seconds ttl,
                              const std::string& method,
                              const std::map<std::string, std::string>& query) const {
  const std::string whole = full(key);
  return store::presign(method, m_scheme + "://" + m_host, m_host, canonical_uri(whole), query,
                        m_config.region, m_config.access_key, m_config.secret_key,
                        m_config.session_token, amz_date(std::time(nullptr)), ttl);
}

std::string S3Client::canonical_uri(const std::string& whole_key) const {
  std::string path = m_config.path_style ? "/" + m_config.bucket : "";
  return path + "/" + uri_encode(whole_key, true);
}

std::string S3Client::request_url(const Request& r) const {
  std::string url = m_scheme + "://" + m_host + canonical_uri(r.key);
  if (r.key.empty()) {
    url = m_scheme + "://" + m_host + (m_config.path_style ? "/" + m_config.bucket + "/" : "/");
  }
  std::string query = canonical_query(r.query);
  if (!query.empty()) {
    url += "?" + query;
  }
  return url;
}

void S3Client::classify(const Response& resp, const std::string& what) const {
  auto [code, message] = s3xml::parse_error(resp.body);
  // The server's words reach a log line escaped: they may hold anything.
  std::string detail =
      fmt::format("unable to {}: HTTP {}{}{}", what, resp.status,
                  code.empty() ? "" : " " + util::printable(code.substr(0, 100)),
                  message.empty() ? "" : " (" + util::printable(message.substr(0, 500)) + ")");
  if (resp.status / 100 == 3) {
    detail += fmt::format(
        ": the server redirects to '{}', and redirects are not followed (is the endpoint "
        "or the region right?)",
        util::printable(resp.location));
  }
  StoreErrorKind kind = StoreErrorKind::permanent;
  if (resp.status == 404 && code != "NoSuchBucket" && code != "NoSuchUpload") {
    kind = StoreErrorKind::not_found;
  } else if (resp.status == 401 || resp.status == 403) {
    kind = StoreErrorKind::unauthorized;
  } else if (resp.status >= 500 || resp.status == 429 || code == "SlowDown" ||
             code == "RequestTimeout") {
    kind = StoreErrorKind::transient;
  }
  if (code == "NoSuchBucket") {
    detail += fmt::format(": the bucket '{}' does not exist", m_config.bucket);
  } else if (code == "RequestTimeTooSkewed") {
    detail += ": this machine's clock and the store's differ by more than S3 allows (15 minutes)";
  }
  throw StoreError(kind, detail);
}

Response S3Client::perform(const Request& r, bool allow_404) const {
  std::string what = fmt::format("{} {}", r.method,
                                 url(r.key.substr(std::min(r.key.size(), m_config.prefix.size()))));
  if (r.key.empty()) {
    what = fmt::format("{} s3://{}/ (prefix '{}')", r.method, m_config.bucket,
                       r.query.count("prefix") != 0 ? r.query.at("prefix") : "");
  }
  static thread_local std::mt19937 rng{std::random_device{}()};
  // A download is retried only while nothing has reached its sink (an error status or
  // a failure before the body); bytes already delivered cannot be taken back.
  struct Counting : Sink {
    Sink* inner = nullptr;
    uint64_t bytes = 0;
    void write(const char* data, size_t size) override {
      inner->write(data, size);
      bytes += size;
    }
    bool cancelled() const override { return inner->cancelled(); }
  } counting;
  struct Into : Sink {
    std::string* s = nullptr;
    void write(const char* data, size_t size) override { s->append(data, size); }
  } into;
  Request req = r;
  if (r.into != nullptr) {
    into.s = r.into;
    req.sink = &into;
  } else if (r.sink != nullptr) {
    counting.inner = r.sink;
    req.sink = &counting;
  }
  for (int i = 1;; ++i) {
    std::optional<std::chrono::seconds> retry_after;
    if (r.into != nullptr) {
      r.into->clear();
    }
    try {
      auto resp = send_once(m_config, request_url(req), req, what);
      if (resp.status / 100 == 2 || (allow_404 && resp.status == 404)) {
        return resp;
      }
      retry_after = resp.retry_after;
      classify(resp, what);
    } catch (const StoreError& e) {
      bool late = r.deadline && Clock::now() >= *r.deadline;
      bool unwanted = r.sink != nullptr && r.sink->cancelled();
      if (!e.retryable() || i >= m_config.attempts || counting.bytes > 0 || late || unwanted) {
        if (i > 1) {
          throw StoreError(e.kind(), fmt::format("{} (after {} tries)", e.what(), i));
        }
        throw;
      }
      auto delay = retry_delay(i, std::uniform_real_distribution<double>(0, 1)(rng), retry_after);
      if (r.deadline) {
        delay = std::min(delay, std::chrono::duration_cast<std::chrono::milliseconds>(
                                    *r.deadline - Clock::now()));
      }
      if (auto left = util::budget::left()) {
        delay = std::min(delay, *left); // the next try then says the budget ran out
      }
      util::log::debug("{}; retrying in {} ms", e.what(), delay.count());
      std::this_thread::sleep_for(delay);
    }
  }
}

} // namespace ephemera::store
