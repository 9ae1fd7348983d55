#include "store/s3.hpp"

#include "store/s3_xml.hpp"

#include "util/error.hpp"
#include "util/log.hpp"
#include "util/sha256.hpp"

#include <curl/curl.h>
#include <dlfcn.h>
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <ctime>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <type_traits>

namespace ephemera::store {

using util::StoreError;
using util::StoreErrorKind;

std::string uri_encode(std::string_view s, bool keep_slash) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

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

std::chrono::seconds transfer_timeout(uint64_t bytes, std::chrono::seconds floor) {
  return floor + std::chrono::seconds(bytes / k_min_rate);
}

ListingLimits::ListingLimits(std::string what, std::chrono::steady_clock::time_point deadline,
                             Bounds bounds)
    : m_what(std::move(what)), m_deadline(deadline), m_bounds(bounds) {}

void ListingLimits::page(uint64_t keys, uint64_t key_bytes) {
  ++m_pages;
  m_keys += keys;
  m_key_bytes += key_bytes;
  if (m_pages > m_bounds.pages || m_keys > m_bounds.keys || m_key_bytes > m_bounds.key_bytes) {
    throw StoreError(
        StoreErrorKind::permanent,
        fmt::format("unable to list {}: the server has sent {} pages and {} keys and does not end "
                    "the listing (at most {} pages, {} keys or {} bytes of keys are read)",
                    m_what, m_pages, m_keys, m_bounds.pages, m_bounds.keys, m_bounds.key_bytes));
  }
  if (std::chrono::steady_clock::now() >= m_deadline) {
    throw StoreError(
        StoreErrorKind::timeout,
        fmt::format("unable to list {}: out of time after {} pages (EPHEMERA_S3_DEADLINE)", m_what,
                    m_pages));
  }
}

void ListingLimits::next(std::string_view token) {
  if (!m_tokens.insert(util::sha256_hex(token)).second) {
    throw StoreError(
        StoreErrorKind::permanent,
        fmt::format("unable to list {}: the server sent the continuation '{}' a second time, "
                    "so the listing would never end",
                    m_what, util::printable(token.substr(0, 100))));
  }
}

std::optional<std::string> listed_key(std::string_view listed, std::string_view store_prefix,
                                      std::string_view requested) {
  if (listed.substr(0, requested.size()) != requested ||
      listed.substr(0, store_prefix.size()) != store_prefix) {
    return std::nullopt;
  }
  auto key = listed.substr(store_prefix.size());
  if (!valid_key(key)) {
    return std::nullopt;
  }
  return std::string(key);
}

namespace {

using Clock = std::chrono::steady_clock;

// A 2xx answer held in memory (a listing page, an upload's answer) is at most this: well
// above a page of 1000 keys of 1024 bytes each, every byte written as an XML entity.
constexpr uint64_t k_max_page = s3xml::k_max_document;
// Of an error body, what is kept to explain the failure; the transfer stops there.
constexpr size_t k_max_error_body = 64 << 10;

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

std::string query_value(const std::string& query, const std::string& key) {
  size_t start = 0;
  while (start < query.size()) {
    size_t end = query.find('&', start);
    std::string part = query.substr(start, end == std::string::npos ? std::string::npos : end - start);
    auto eq = part.find('=');
    if (part.substr(0, eq) == key) {
      return eq == std::string::npos ? "" : part.substr(eq + 1);
    }
    if (end == std::string::npos) {
      break;
    }
    start = end + 1;
  }
  return "";
}

constexpr const char* k_upload_marker = "#upload=";

// libcurl, loaded by the first S3 request rather than linked: with the TLS, Kerberos,
// LDAP, SSH and IDN libraries it brings it is 26 of the 46 libraries the dynamic loader
// would map at every start, about 11 ms of every hook, most of which use a local store.
struct Curl {
  decltype(&::curl_global_init) global_init = nullptr;
  decltype(&::curl_easy_init) easy_init = nullptr;
  decltype(&::curl_easy_cleanup) easy_cleanup = nullptr;
  decltype(&::curl_easy_setopt) easy_setopt = nullptr;
  decltype(&::curl_easy_perform) easy_perform = nullptr;
  decltype(&::curl_easy_getinfo) easy_getinfo = nullptr;
  decltype(&::curl_easy_strerror) easy_strerror = nullptr;
  decltype(&::curl_slist_append) slist_append = nullptr;
  decltype(&::curl_slist_free_all) slist_free_all = nullptr;

  // Loaded and initialised once per process; an error names the library and why.
  static const Curl& get() {
    static const Curl curl = load();
    return curl;
  }

private:
  static Curl load() {
    // Debian's flavours of libcurl 4 (OpenSSL, GnuTLS) share one interface.
    void* lib = nullptr;
    std::string why;
    for (const char* name : {"libcurl.so.4", "libcurl-gnutls.so.4", "libcurl-nss.so.4"}) {
      lib = ::dlopen(name, RTLD_NOW | RTLD_LOCAL);
      if (lib != nullptr) {
        break;
      }
      if (why.empty()) {
        const char* e = ::dlerror();
        why = e != nullptr ? e : name;
      }
    }
    if (lib == nullptr) {
      throw StoreError(StoreErrorKind::permanent,
                       fmt::format("the S3 store needs libcurl (package libcurl4): {}", why));
    }
    Curl c;
    auto bind = [&](auto& fn, const char* symbol) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(::dlsym(lib, symbol));
      if (fn == nullptr) {
        throw StoreError(StoreErrorKind::permanent,
                         fmt::format("the S3 store needs libcurl 7.75 or later: the one "
                                     "installed has no {}", symbol));
      }
    };
    bind(c.global_init, "curl_global_init");
    bind(c.easy_init, "curl_easy_init");
    bind(c.easy_cleanup, "curl_easy_cleanup");
    bind(c.easy_setopt, "curl_easy_setopt");
    bind(c.easy_perform, "curl_easy_perform");
    bind(c.easy_getinfo, "curl_easy_getinfo");
    bind(c.easy_strerror, "curl_easy_strerror");
    bind(c.slist_append, "curl_slist_append");
    bind(c.slist_free_all, "curl_slist_free_all");
    if (c.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      throw StoreError(StoreErrorKind::permanent, "unable to initialise libcurl");
    }
    return c;
  }
};

struct Response {
  long status = 0;
  std::string body;             // error bodies and small responses
  std::string etag;
  std::optional<std::chrono::seconds> retry_after;
  std::optional<uint64_t> length; // Content-Length
  std::string location;           // of a redirect, which is never followed
  int64_t mtime = 0;
  uint64_t range_first = 0;     // Content-Range: bytes first-last/total
  uint64_t range_last = 0;
  uint64_t total = 0;
  uint64_t received = 0;        // bytes of a 2xx body taken
  bool range_ignored = false;   // a 200 with the whole object to a Range request
  bool range_wrong = false;     // a 206 with other bytes than asked for
  bool length_wrong = false;    // a Content-Length other than the request's
  bool too_long = false;        // a 2xx body past what the request may return
  bool cut = false;             // an error body cut off at k_max_error_body
  std::exception_ptr sink_error; // what the sink threw, rethrown as it was
};

struct Request {
  std::string method = "GET";
  std::string key; // whole object key, checked ("" for the bucket)
  std::map<std::string, std::string> query;
  const std::string* body = nullptr;
  Sink* sink = nullptr;         // GET bodies on 2xx
  std::string* into = nullptr;  // or into this, emptied before every try so it can be retried
  std::optional<std::pair<uint64_t, uint64_t>> range; // first and last byte
  uint64_t max_body = k_max_page; // the most a 2xx body may be; the transfer stops past it
  std::optional<uint64_t> length; // the exact size a 2xx body must have, when known
  std::optional<Clock::time_point> deadline; // of the operation this request is part of
};

// A server that answers a Range request with the whole object.
struct RangeIgnored : StoreError {
  using StoreError::StoreError;
};

class S3Backend : public Backend {
public:
  explicit S3Backend(S3Config config) : m_config(std::move(config)) {
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

  std::optional<ObjectInfo> stat(const std::string& key) override {
    Request r;
    r.method = "HEAD";
    r.key = full(key);
    auto resp = perform(r, true);
    if (resp.status == 404) {
      return std::nullopt;
    }
    return ObjectInfo{key, resp.length.value_or(0), resp.mtime};
  }

  void get(const std::string& key, Sink& sink) override {
    Request r;
    r.key = full(key);
    r.sink = &sink;
    r.max_body = sink.max_bytes();
    perform(r, false);
  }

  void get_range(const std::string& key, uint64_t offset, uint64_t length, Sink& sink) override {
    if (length == 0) { // HTTP has no empty range
      auto st = stat(key);
      if (!st) {
        throw StoreError(StoreErrorKind::not_found, fmt::format("unable to GET {}: not found", url(key)));
      }
      if (offset > st->size) {
        throw StoreError(StoreErrorKind::permanent,
                         fmt::format("unable to GET {}: byte {} is past its end ({} bytes)", url(key), offset, st->size));
      }
      return;
    }
    Request r;
    r.key = full(key);
    r.sink = &sink;
    r.range = {offset, offset + length - 1};
    r.max_body = length;
    r.length = length;
    perform(r, false);
  }

  // Parts of download_part bytes fetched by `parallel` threads, each retried whole on its
  // own; this thread hands them to the sink in order, at most parallel + 1 parts held. The
  // whole download, retries included, ends by the deadline (EPHEMERA_S3_DEADLINE).
  void get_sized(const std::string& key, uint64_t size, Sink& sink) override {
    const std::string whole = full(key);
    const auto deadline = Clock::now() + std::chrono::seconds(m_config.deadline);
    const uint64_t part_size = m_config.download_part;
    if (size <= part_size || m_config.parallel <= 1) {
      get_whole(whole, size, sink, deadline);
      return;
    }
    const uint64_t parts = (size + part_size - 1) / part_size;
    const uint64_t window = static_cast<uint64_t>(m_config.parallel) + 1;
    std::mutex mutex;
    std::condition_variable cv;
    std::map<uint64_t, std::string> ready;
    uint64_t next_fetch = 0, next_deliver = 0;
    std::exception_ptr failure;
    auto fail = [&](std::exception_ptr e) {
      std::lock_guard lock(mutex);
      if (!failure) {
        failure = std::move(e);
      }
      cv.notify_all();
    };
    auto worker = [&] {
      while (true) {
        uint64_t part = 0;
        {
          std::unique_lock lock(mutex);
          cv.wait(lock, [&] { return failure || next_fetch >= parts || next_fetch < next_deliver + window; });
          if (failure || next_fetch >= parts) {
            return;
          }
          part = next_fetch++;
        }
        try {
          uint64_t first = part * part_size, last = std::min(size, first + part_size) - 1;
          std::string buf;
          buf.reserve(last - first + 1);
          Request r;
          r.key = whole;
          r.into = &buf;
          r.range = {first, last};
          r.max_body = last - first + 1;
          r.length = last - first + 1;
          r.deadline = deadline;
          auto resp = perform(r, false);
          if (resp.total != size) {
            throw StoreError(StoreErrorKind::permanent,
                             fmt::format("{} is {} bytes, expected {}", url(key), resp.total, size));
          }
          if (buf.size() != last - first + 1) { // never more: the transfer stops past the range
            throw StoreError(
                StoreErrorKind::permanent,
                fmt::format("unable to GET {}: bytes {}-{} came {} bytes short", url(key), first,
                            last,
                            last - first + 1 - std::min<uint64_t>(buf.size(), last - first + 1)));
          }
          std::lock_guard lock(mutex);
          ready.emplace(part, std::move(buf));
          cv.notify_all();
        } catch (...) {
          fail(std::current_exception());
          return;
        }
      }
    };
    std::vector<std::thread> threads;
    for (uint64_t i = 0; i < std::min<uint64_t>(parts, static_cast<uint64_t>(m_config.parallel)); ++i) {
      threads.emplace_back(worker);
    }
    while (true) {
      std::string buf;
      {
        std::unique_lock lock(mutex);
        cv.wait(lock, [&] { return failure || next_deliver >= parts || ready.count(next_deliver) != 0; });
        if (failure || next_deliver >= parts) {
          break;
        }
        buf = std::move(ready.at(next_deliver));
        ready.erase(next_deliver);
      }
      try {
        sink.write(buf.data(), buf.size());
      } catch (...) {
        fail(std::current_exception());
        break;
      }
      std::lock_guard lock(mutex);
      ++next_deliver;
      cv.notify_all();
    }
    for (auto& t : threads) {
      t.join();
    }
    if (failure) {
      try {
        std::rethrow_exception(failure);
      } catch (const RangeIgnored& e) {
        if (next_deliver != 0) {
          throw;
        }
        util::log::debug("{}; fetching it in one piece", e.what());
        get_whole(whole, size, sink, deadline);
      }
    }
  }

  void put(const std::string& key, Source& source) override {
    const std::string whole = full(key);
    source.rewind();
    if (source.size() <= m_config.part_size) {
      std::string body(source.size(), '\0');
      size_t done = 0;
      while (done < body.size()) {
        size_t n = source.read(body.data() + done, body.size() - done);
        if (n == 0) {
          throw util::Error("the upload source ended early");
        }
        done += n;
      }
      Request r;
      r.method = "PUT";
      r.key = whole;
      r.body = &body;
      perform(r, false);
      return;
    }
    multipart(whole, source);
  }

  std::vector<ObjectInfo> list(const std::string& prefix) override {
    check_prefix(prefix);
    const std::string requested = m_config.prefix + prefix;
    ListingLimits limits(url(prefix), Clock::now() + std::chrono::seconds(m_config.deadline));
    Skipped skipped;
    std::vector<ObjectInfo> out;
    std::string token;
    while (true) {
      Request r;
      r.query = {{"list-type", "2"}, {"prefix", requested}};
      if (!token.empty()) {
        r.query["continuation-token"] = token;
      }
      r.deadline = limits.deadline();
      auto page = s3xml::parse_list_objects(perform(r, false).body);
      uint64_t bytes = 0;
      for (const auto& o : page.objects) {
        bytes += o.key.size();
      }
      limits.page(page.objects.size(), bytes);
      for (auto& o : page.objects) {
        if (auto key = listed_key(o.key, m_config.prefix, requested)) {
          out.push_back(ObjectInfo{std::move(*key), o.size, o.mtime});
        } else {
          skipped.add(o.key);
        }
      }
      if (!page.truncated) {
        break;
      }
      limits.next(page.next_token);
      token = page.next_token;
    }
    skipped.warn(url(prefix));
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.key < b.key; });
    return out;
  }

  void remove(const std::string& key) override {
    Request r;
    r.method = "DELETE";
    auto marker = key.find(k_upload_marker);
    if (marker != std::string::npos) { // a leftover: abort the multipart upload
      r.key = full(key.substr(0, marker));
      r.query = {{"uploadId", key.substr(marker + std::strlen(k_upload_marker))}};
      if (r.query["uploadId"].empty()) {
        throw StoreError(
            StoreErrorKind::permanent,
            fmt::format("refusing to abort the upload '{}': it has no upload id", url(key)));
      }
    } else {
      r.key = full(key);
    }
    auto resp = perform(r, true);
    (void)resp; // 404: already gone
  }

  // Multipart uploads a killed save never completed or aborted: invisible, but their parts
  // take space until aborted. Named "<key>#upload=<id>" for remove(); bounded and checked
  // as list() is.
  std::vector<ObjectInfo> leftovers(const std::string& prefix) override {
    check_prefix(prefix);
    const std::string requested = m_config.prefix + prefix;
    ListingLimits limits("the multipart uploads of " + url(prefix),
                         Clock::now() + std::chrono::seconds(m_config.deadline));
    Skipped skipped;
    std::vector<ObjectInfo> out;
    std::string key_marker, id_marker;
    while (true) {
      Request r;
      r.query = {{"uploads", ""}, {"prefix", requested}};
      if (!key_marker.empty()) {
        r.query["key-marker"] = key_marker;
        r.query["upload-id-marker"] = id_marker;
      }
      r.deadline = limits.deadline();
      auto page = s3xml::parse_list_uploads(perform(r, false).body);
      uint64_t bytes = 0;
      for (const auto& u : page.uploads) {
        bytes += u.key.size() + u.upload_id.size();
      }
      limits.page(page.uploads.size(), bytes);
      for (auto& u : page.uploads) {
        auto key = listed_key(u.key + k_upload_marker + u.upload_id, m_config.prefix, requested);
        if (key && listed_key(u.key, m_config.prefix, requested)) {
          ObjectInfo o;
          o.key = std::move(*key);
          o.mtime = u.initiated;
          out.push_back(std::move(o));
        } else {
          skipped.add(u.key + k_upload_marker + u.upload_id);
        }
      }
      if (!page.truncated || page.next_key_marker.empty()) {
        break;
      }
      limits.next(page.next_key_marker + ' ' + page.next_upload_id_marker);
      key_marker = page.next_key_marker;
      id_marker = page.next_upload_id_marker;
    }
    skipped.warn("the multipart uploads of " + url(prefix));
    return out;
  }

  // A key or prefix that is not valid (named only in a message about it) is escaped.
  std::string url(const std::string& key) const override {
    bool prefix = key.empty() || (key.back() == '/' && valid_key(key.substr(0, key.size() - 1)));
    return fmt::format("s3://{}/{}{}", m_config.bucket, m_config.prefix,
                       valid_key(key) || prefix ? key : util::printable(key.substr(0, 200)));
  }

  std::optional<std::string> presign(const std::string& key, std::chrono::seconds ttl) const override {
    const std::string whole = full(key);
    std::time_t now = std::time(nullptr);
    struct tm tm {};
    ::gmtime_r(&now, &tm);
    char date[32];
    std::strftime(date, sizeof date, "%Y%m%dT%H%M%SZ", &tm);
    return presign_get(m_scheme + "://" + m_host, m_host, canonical_uri(whole), m_config.region,
                       m_config.access_key, m_config.secret_key, m_config.session_token, date, ttl);
  }

private:
  // Listed keys a listing does not hand on (outside the prefix asked for, or not a valid
  // key): counted, and named once, escaped, when the listing ends.
  struct Skipped {
    uint64_t count = 0;
    std::string first;
    void add(const std::string& key) {
      if (count++ == 0) {
        first = key.substr(0, 300);
      }
    }
    void warn(const std::string& what) const {
      if (count != 0) {
        util::log::warn(
            "ignoring {} key(s) the server listed under {} that lie outside it or are not valid "
            "object keys, such as '{}'",
            count, what, util::printable(first));
      }
    }
  };

  // The whole object, which must be `size` bytes, in one GET.
  void get_whole(const std::string& whole, uint64_t size, Sink& sink, Clock::time_point deadline) {
    Request r;
    r.key = whole;
    r.sink = &sink;
    r.max_body = size;
    r.length = size;
    r.deadline = deadline;
    perform(r, false);
  }

  // The whole key of a store key, checked first: nothing outside the store's prefix, and no
  // key that a server or libcurl could read as another, is ever asked for.
  std::string full(const std::string& key) const {
    check_key(key);
    return m_config.prefix + key;
  }

  std::string canonical_uri(const std::string& key) const {
    std::string path = m_config.path_style ? "/" + m_config.bucket : "";
    return path + "/" + uri_encode(key, true);
  }

  static std::string canonical_query(const std::map<std::string, std::string>& q) {
    std::string out;
    for (const auto& [k, v] : q) { // std::map: sorted by key, as SigV4 wants
      out += out.empty() ? "" : "&";
      out += uri_encode(k, false) + "=" + uri_encode(v, false);
    }
    return out;
  }

  struct WriteContext {
    Response* resp;
    const Request* request;
  };

  // Every byte of a body passes here. A 2xx body is checked before its first byte is kept
  // (a whole object, or other bytes, must not pass for the range that was asked for, nor
  // an object of another size for the one the manifest names) and stopped as soon as it
  // runs past what the request may return; an error body is kept up to k_max_error_body.
  static size_t on_write(char* data, size_t size, size_t n, void* user) {
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

  static size_t on_header(char* data, size_t size, size_t n, void* user) {
    auto* resp = static_cast<Response*>(user);
    std::string line(data, size * n);
    auto colon = line.find(':');
    if (colon != std::string::npos) {
      std::string name = line.substr(0, colon);
      std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
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

  static size_t on_read(char* buf, size_t size, size_t n, void* user) {
    auto* up = static_cast<Upload*>(user);
    size_t len = std::min(size * n, up->body->size() - up->pos);
    std::memcpy(buf, up->body->data() + up->pos, len);
    up->pos += len;
    return len;
  }

  // One attempt; throws StoreError classified.
  Response attempt(const Request& r, const std::string& what) const {
    const Curl& c = Curl::get();
    CURL* curl = c.easy_init();
    if (curl == nullptr) {
      throw StoreError(StoreErrorKind::transient, "unable to start a request");
    }
    std::unique_ptr<CURL, void (*)(CURL*)> guard(curl, c.easy_cleanup);
    std::string url = m_scheme + "://" + m_host + canonical_uri(r.key);
    if (r.key.empty()) {
      url = m_scheme + "://" + m_host + (m_config.path_style ? "/" + m_config.bucket + "/" : "/");
    }
    std::string query = canonical_query(r.query);
    if (!query.empty()) {
      url += "?" + query;
    }
    // Every transfer ends by a time proportional to its size, and by its operation's deadline.
    uint64_t bytes = r.body != nullptr                               ? r.body->size()
                     : r.length                                      ? *r.length
                     : r.sink != nullptr && r.max_body != UINT64_MAX ? r.max_body
                                                                     : 0;
    auto budget = std::chrono::duration_cast<std::chrono::milliseconds>(
        transfer_timeout(bytes, std::chrono::seconds(m_config.request_timeout)));
    bool by_deadline = false;
    if (r.deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*r.deadline - Clock::now());
      if (left <= std::chrono::milliseconds(0)) {
        throw out_of_time(what);
      }
      by_deadline = left < budget;
      budget = std::min(budget, left);
    }
    Response resp;
    WriteContext ctx{&resp, &r};
    Upload up{r.body};
    std::string hash = r.body != nullptr ? util::sha256_hex(*r.body) : util::sha256_hex("");
    struct curl_slist* headers = nullptr;
    headers = c.slist_append(headers, ("x-amz-content-sha256: " + hash).c_str());
    if (!m_config.session_token.empty()) {
      headers = c.slist_append(headers, ("x-amz-security-token: " + m_config.session_token).c_str());
    }
    std::unique_ptr<curl_slist, void (*)(curl_slist*)> hguard(headers, c.slist_free_all);
    std::string sigv4 = "aws:amz:" + m_config.region + ":s3";
    c.easy_setopt(curl, CURLOPT_URL, url.c_str());
    c.easy_setopt(curl, CURLOPT_AWS_SIGV4, sigv4.c_str());
    c.easy_setopt(curl, CURLOPT_USERNAME, m_config.access_key.c_str());
    c.easy_setopt(curl, CURLOPT_PASSWORD, m_config.secret_key.c_str());
    c.easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    c.easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    c.easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, m_config.connect_timeout);
    c.easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    c.easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, m_config.stall_timeout);
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
    if (rc == CURLE_OPERATION_TIMEDOUT && by_deadline) {
      throw out_of_time(what);
    }
    if (rc == CURLE_OPERATION_TIMEDOUT) {
      throw StoreError(StoreErrorKind::timeout,
                       fmt::format("unable to {}: timed out (no progress for {} s, or over {} s)",
                                   what, m_config.stall_timeout, budget.count() / 1000));
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

  // Why on_write stopped a transfer. An error body cut short is still read for its <Code>.
  void write_error(const Request& r, const Response& resp, const std::string& what) const {
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
                       fmt::format("unable to {}: asked for bytes {}-{}, the server sent {}-{}",
                                   what, r.range->first, r.range->second, resp.range_first,
                                   resp.range_last));
    }
    if (resp.length_wrong) {
      throw StoreError(StoreErrorKind::permanent,
                       fmt::format("unable to {}: the server says it is {} bytes, expected {}",
                                   what, resp.length.value_or(0), *r.length));
    }
    if (resp.too_long) {
      throw StoreError(
          StoreErrorKind::permanent,
          fmt::format(
              "unable to {}: the server sent more than the {} bytes this request may return", what,
              r.max_body));
    }
    throw StoreError(StoreErrorKind::transient,
                     fmt::format("unable to {}: the transfer was stopped", what));
  }

  StoreError out_of_time(const std::string& what) const {
    return StoreError(
        StoreErrorKind::timeout,
        fmt::format("unable to {}: out of time, the operation may take {} s (EPHEMERA_S3_DEADLINE)",
                    what, m_config.deadline));
  }

  [[noreturn]] void classify(const Response& resp, const std::string& what) const {
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
    } else if (resp.status >= 500 || resp.status == 429 || code == "SlowDown" || code == "RequestTimeout") {
      kind = StoreErrorKind::transient;
    }
    if (code == "NoSuchBucket") {
      detail += fmt::format(": the bucket '{}' does not exist", m_config.bucket);
    } else if (code == "RequestTimeTooSkewed") {
      detail += ": this machine's clock and the store's differ by more than S3 allows (15 minutes)";
    }
    throw StoreError(kind, detail);
  }

  // Retries transient errors and timeouts with backoff; a 404 is returned when allow_404.
  Response perform(const Request& r, bool allow_404) const {
    std::string what = fmt::format("{} {}", r.method, url(r.key.substr(std::min(r.key.size(), m_config.prefix.size()))));
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
        auto resp = attempt(req, what);
        if (resp.status / 100 == 2 || (allow_404 && resp.status == 404)) {
          return resp;
        }
        retry_after = resp.retry_after;
        classify(resp, what);
      } catch (const StoreError& e) {
        bool late = r.deadline && Clock::now() >= *r.deadline;
        if (!e.retryable() || i >= m_config.attempts || counting.bytes > 0 || late) {
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
        util::log::debug("{}; retrying in {} ms", e.what(), delay.count());
        std::this_thread::sleep_for(delay);
      }
    }
  }

  void multipart(const std::string& key, Source& source) {
    Request create;
    create.method = "POST";
    create.key = key;
    create.query = {{"uploads", ""}};
    std::string empty;
    create.body = &empty;
    std::string upload_id = s3xml::parse_upload_id(perform(create, false).body);
    try {
      auto etags = upload_parts(key, upload_id, source);
      std::string xml = "<CompleteMultipartUpload>";
      for (size_t i = 0; i < etags.size(); ++i) {
        xml += fmt::format("<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>", i + 1, etags[i]);
      }
      xml += "</CompleteMultipartUpload>";
      Request complete;
      complete.method = "POST";
      complete.key = key;
      complete.query = {{"uploadId", upload_id}};
      complete.body = &xml;
      auto done = perform(complete, false);
      if (done.body.find("<Error>") != std::string::npos) {
        Response failed;
        failed.status = 500;
        failed.body = done.body;
        classify(failed, "complete the upload of " + key);
      }
    } catch (...) {
      Request abort;
      abort.method = "DELETE";
      abort.key = key;
      abort.query = {{"uploadId", upload_id}};
      try {
        perform(abort, true);
      } catch (const std::exception& e) {
        util::log::warn("unable to abort the multipart upload of {}: {}", url(key), e.what());
      }
      throw;
    }
  }

  std::vector<std::string> upload_parts(const std::string& key, const std::string& upload_id, Source& source) {
    uint64_t parts = (source.size() + m_config.part_size - 1) / m_config.part_size;
    std::vector<std::string> etags(parts);
    std::mutex mutex;
    uint64_t next = 0;
    std::exception_ptr failure;
    auto worker = [&] {
      std::string body;
      while (true) {
        uint64_t part = 0;
        {
          std::lock_guard lock(mutex);
          if (failure || next >= parts) {
            return;
          }
          part = next++;
          body.resize(std::min<uint64_t>(m_config.part_size, source.size() - part * m_config.part_size));
          size_t done = 0;
          while (done < body.size()) {
            size_t n = source.read(body.data() + done, body.size() - done);
            if (n == 0) {
              failure = std::make_exception_ptr(util::Error("the upload source ended early"));
              return;
            }
            done += n;
          }
        }
        try {
          Request r;
          r.method = "PUT";
          r.key = key;
          r.query = {{"partNumber", std::to_string(part + 1)}, {"uploadId", upload_id}};
          r.body = &body;
          auto resp = perform(r, false);
          etags[part] = resp.etag;
        } catch (...) {
          std::lock_guard lock(mutex);
          failure = std::current_exception();
          return;
        }
      }
    };
    std::vector<std::thread> threads;
    for (int i = 0; i < std::max(1, m_config.parallel); ++i) {
      threads.emplace_back(worker);
    }
    for (auto& t : threads) {
      t.join();
    }
    if (failure) {
      std::rethrow_exception(failure);
    }
    return etags;
  }

  S3Config m_config;
  std::string m_scheme;
  std::string m_host;
};

} // namespace

std::string presign_get(const std::string& url_base, const std::string& host,
                        const std::string& canonical_uri, const std::string& region,
                        const std::string& access_key, const std::string& secret_key,
                        const std::string& session_token, const std::string& amz_date,
                        std::chrono::seconds ttl) {
  std::string date = amz_date.substr(0, 8);
  std::string scope = fmt::format("{}/{}/s3/aws4_request", date, region);
  std::map<std::string, std::string> q{{"X-Amz-Algorithm", "AWS4-HMAC-SHA256"},
                                       {"X-Amz-Credential", access_key + "/" + scope},
                                       {"X-Amz-Date", amz_date},
                                       {"X-Amz-Expires", std::to_string(ttl.count())},
                                       {"X-Amz-SignedHeaders", "host"}};
  if (!session_token.empty()) {
    q["X-Amz-Security-Token"] = session_token;
  }
  std::string query;
  for (const auto& [k, v] : q) {
    query += query.empty() ? "" : "&";
    query += uri_encode(k, false) + "=" + uri_encode(v, false);
  }
  std::string canonical = fmt::format("GET\n{}\n{}\nhost:{}\n\nhost\nUNSIGNED-PAYLOAD", canonical_uri,
                                      query, host);
  std::string to_sign = fmt::format("AWS4-HMAC-SHA256\n{}\n{}\n{}", amz_date, scope,
                                    util::sha256_hex(canonical));
  std::string k = util::hmac_sha256_raw("AWS4" + secret_key, date);
  k = util::hmac_sha256_raw(k, region);
  k = util::hmac_sha256_raw(k, "s3");
  k = util::hmac_sha256_raw(k, "aws4_request");
  std::string signature = util::hmac_sha256_hex(k, to_sign);
  return fmt::format("{}{}?{}&X-Amz-Signature={}", url_base, canonical_uri, query, signature);
}

S3Config parse_s3_url(const std::string& rest) {
  S3Config c;
  std::string path = rest.substr(0, rest.find('?'));
  std::string query = rest.find('?') == std::string::npos ? "" : rest.substr(rest.find('?') + 1);
  auto slash = path.find('/');
  c.bucket = path.substr(0, slash);
  if (c.bucket.empty()) {
    throw util::InputError("an S3 store URL needs a bucket: s3://bucket/prefix");
  }
  // A bucket name goes into every path (or the host name) as it is: S3's own characters only.
  if (c.bucket.size() > 63 || c.bucket == "." || c.bucket == ".." ||
      c.bucket.find_first_not_of(
          "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") !=
          std::string::npos) {
    throw util::InputError(
        fmt::format("'{}' is not an S3 bucket name (letters, digits, '.', '-' and '_')",
                    util::printable(c.bucket)));
  }
  if (slash != std::string::npos) {
    c.prefix = path.substr(slash + 1);
    while (!c.prefix.empty() && c.prefix.front() == '/') {
      c.prefix.erase(0, 1);
    }
    if (!c.prefix.empty() && c.prefix.back() != '/') {
      c.prefix += '/';
    }
    if (!c.prefix.empty() && !valid_key(c.prefix.substr(0, c.prefix.size() - 1))) {
      throw util::InputError(
          fmt::format("the S3 store prefix '{}' has an empty, '.' or '..' component or a "
                      "control character",
                      util::printable(c.prefix)));
    }
  }
  c.region = query_value(query, "region");
  if (c.region.empty()) {
    c.region = !env("AWS_REGION").empty() ? env("AWS_REGION") : !env("AWS_DEFAULT_REGION").empty() ? env("AWS_DEFAULT_REGION") : "us-east-1";
  }
  c.endpoint = query_value(query, "endpoint");
  if (c.endpoint.empty()) {
    c.endpoint = env("EPHEMERA_S3_ENDPOINT");
  }
  bool custom = !c.endpoint.empty();
  if (!custom) {
    c.endpoint = fmt::format("https://s3.{}.amazonaws.com", c.region);
  }
  if (c.endpoint.find("://") == std::string::npos) {
    c.endpoint = "https://" + c.endpoint;
  }
  // The endpoint becomes every request's host and every presigned link's: a user:password
  // in it would be sent as the host and written into reports.
  auto authority = c.endpoint.substr(c.endpoint.find("://") + 3);
  if (authority.substr(0, authority.find('/')).find('@') != std::string::npos) {
    throw util::InputError("the S3 endpoint must not hold credentials (user:password@): set "
                           "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY instead");
  }
  std::string addressing = query_value(query, "addressing");
  c.path_style = addressing.empty() ? custom : addressing == "path";
  if (!addressing.empty() && addressing != "path" && addressing != "virtual") {
    throw util::InputError(fmt::format("addressing='{}': use path or virtual", addressing));
  }
  c.access_key = env("AWS_ACCESS_KEY_ID");
  c.secret_key = env("AWS_SECRET_ACCESS_KEY");
  c.session_token = env("AWS_SESSION_TOKEN");
  if (auto s = env("EPHEMERA_S3_STALL_SECONDS"); !s.empty()) {
    c.stall_timeout = std::max(1L, std::atol(s.c_str()));
  }
  if (auto s = env("EPHEMERA_S3_TIMEOUT_SECONDS"); !s.empty()) {
    c.request_timeout = std::max(1L, std::atol(s.c_str()));
  }
  if (auto s = env("EPHEMERA_S3_DEADLINE"); !s.empty()) {
    c.deadline = std::max(1L, std::atol(s.c_str()));
  }
  if (auto s = env("EPHEMERA_S3_CONNECT_SECONDS"); !s.empty()) {
    c.connect_timeout = std::max(1L, std::atol(s.c_str()));
  }
  if (auto s = env("EPHEMERA_S3_PARALLEL"); !s.empty()) {
    c.parallel = std::clamp(std::atoi(s.c_str()), 1, 64);
  }
  return c;
}

std::unique_ptr<Backend> open_s3(const std::string& rest) {
  auto config = parse_s3_url(rest);
  if (config.access_key.empty() || config.secret_key.empty()) {
    throw StoreError(StoreErrorKind::unauthorized,
                     "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
  }
  return std::make_unique<S3Backend>(std::move(config));
}

} // namespace ephemera::store
