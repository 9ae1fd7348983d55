#include "store/broker_client.hpp"

#include "store/curl_lib.hpp"
#include "store/s3_parts.hpp"
#include "util/budget.hpp"
#include "util/error.hpp"
#include "util/log.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <optional>
#include <random>
#include <thread>

namespace ephemera::store {

using nlohmann::json;
using util::StoreError;
using util::StoreErrorKind;

namespace {

constexpr const char* k_who = "the broker's client";
// Of an error answer, what is kept to explain it.
constexpr size_t k_max_error_body = 16 << 10;
// A listing of the whole store, for an operator: 1000 keys of 1 KiB are 1 MiB.
constexpr uint64_t k_max_listing = 256ULL << 20;
constexpr int k_tries = 5;
// Objects larger than this go straight to the store in presigned parts where the broker's
// store takes them (S3), four parts at a time: the broker then moves none of their bytes.
constexpr uint64_t k_parts_above = 4 << 20;
constexpr int k_parallel = 4;
// The slowest upload worth waiting for, in bytes a second.
constexpr uint64_t k_min_rate = 256 << 10;

std::string encode(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    bool plain = std::isalnum(c) != 0 || c == '.' || c == '_' || c == '~' || c == '-' || c == '/';
    out += plain ? std::string(1, static_cast<char>(c)) : fmt::format("%{:02X}", c);
  }
  return out;
}

struct Call {
  std::string method = "GET";
  std::string url;
  bool token = true; // false for a presigned URL
  Source* upload = nullptr;
  Sink* sink = nullptr; // 2xx bodies go here, or into `into`
  std::string* into = nullptr;
  uint64_t max_into = 1 << 20;
  std::optional<std::pair<uint64_t, uint64_t>> range; // first and last byte (presigned)
};

struct Answer {
  long status = 0;
  std::string body; // of an error
  std::string location;
  std::string etag;
  std::optional<long> retry_after;
  uint64_t delivered = 0; // bytes given to the sink
  std::exception_ptr sink_error;
};

struct Transfer {
  const Call* call;
  Answer* answer;
  Sink* sink;
};

size_t on_body(char* data, size_t, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  auto& a = *t->answer;
  if (a.status == 0) {
    return 0;
  }
  if (a.status < 200 || a.status >= 300) {
    a.body.append(data, std::min(n, k_max_error_body - std::min(k_max_error_body, a.body.size())));
    return n;
  }
  try {
    if (t->call->into != nullptr) {
      if (t->call->into->size() + n > t->call->max_into) {
        throw StoreError(
            StoreErrorKind::permanent,
            fmt::format("the broker's answer is larger than {} bytes", t->call->max_into));
      }
      t->call->into->append(data, n);
    } else if (t->sink != nullptr) {
      if (a.delivered + n > t->sink->max_bytes()) {
        throw StoreError(
            StoreErrorKind::permanent,
            fmt::format("the object is larger than the {} bytes expected", t->sink->max_bytes()));
      }
      t->sink->write(data, n);
    }
    a.delivered += n;
    return n;
  } catch (...) {
    a.sink_error = std::current_exception();
    return 0;
  }
}

// Called about once a second while a transfer runs, bytes or none: a nonzero answer ends it.
int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const auto* t = static_cast<const Transfer*>(user);
  return t->sink != nullptr && t->sink->cancelled() ? 1 : 0;
}

size_t on_header(char* data, size_t, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string line(data, n);
  if (line.rfind("HTTP/", 0) == 0) {
    auto sp = line.find(' ');
    t->answer->status = sp == std::string::npos ? 0 : std::atol(line.c_str() + sp + 1);
    t->answer->location.clear();
    t->answer->etag.clear();
    return n;
  }
  auto colon = line.find(':');
  if (colon == std::string::npos) {
    return n;
  }
  std::string name = line.substr(0, colon);
  for (auto& c : name) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  std::string value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
    value.erase(0, 1);
  }
  while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) {
    value.pop_back();
  }
  if (name == "location") {
    t->answer->location = value;
  } else if (name == "etag") {
    t->answer->etag = value;
  } else if (name == "retry-after") {
    t->answer->retry_after = std::atol(value.c_str());
  }
  return n;
}

size_t on_upload(char* buf, size_t size, size_t n, void* user) {
  try {
    return static_cast<Source*>(user)->read(buf, size * n);
  } catch (...) {
    return CURL_READFUNC_ABORT;
  }
}

class BrokerBackend : public Backend, public LeftoverCleaner {
public:
  explicit BrokerBackend(std::string base) : m_base(std::move(base)) {
    if (const char* t = std::getenv("EPHEMERA_TOKEN"); t != nullptr) {
      m_token = t;
    }
  }

  std::optional<ObjectInfo> stat(const std::string& key) override {
    check_key(key);
    std::string body;
    try {
      call_json(m_base + "/v1/stat/" + encode(key), body, "stat " + key);
    } catch (const StoreError& e) {
      if (e.kind() == StoreErrorKind::not_found) {
        return std::nullopt;
      }
      throw;
    }
    auto j = json::parse(body, nullptr, false);
    if (!j.is_object() || !j.contains("size") || !j["size"].is_number_unsigned() ||
        !j.contains("mtime") || !j["mtime"].is_number_integer()) {
      throw StoreError(StoreErrorKind::permanent, "the broker's stat answer is malformed");
    }
    return ObjectInfo{key, j["size"].get<uint64_t>(), j["mtime"].get<int64_t>()};
  }

  void get(const std::string& key, Sink& sink) override { fetch(key, std::nullopt, sink); }

  void get_range(const std::string& key, uint64_t offset, uint64_t length, Sink& sink) override {
    if (length == 0) {
      return;
    }
    fetch(key, std::make_pair(offset, length), sink);
  }

  void put(const std::string& key, Source& source) override {
    check_key(key);
    if (source.size() > k_parts_above && m_parts.load() && put_in_parts(key, source)) {
      return;
    }
    Call c;
    c.method = "PUT";
    c.url = m_base + "/v1/objects/" + encode(key);
    c.upload = &source;
    perform(c, "PUT " + key);
  }

  std::vector<ObjectInfo> list(const std::string& prefix) override {
    std::vector<ObjectInfo> out;
    for (const auto& o : listing("/v1/list", prefix)) {
      out.push_back(ObjectInfo{o.key, o.size, o.mtime});
    }
    return out;
  }

  LeftoverCleaner* leftover_cleaner() override { return this; }

  // The store's, as the broker lists them to an operator's token.
  std::vector<Leftover> leftovers(const std::string& prefix) override {
    return listing("/v1/leftovers", prefix);
  }

  void remove(const std::string& key) override {
    check_key(key);
    remove_at(m_base + "/v1/objects/" + encode(key), "DELETE " + key);
  }

  void remove_leftover(const Leftover& leftover) override {
    check_key(leftover.key);
    remove_at(m_base + "/v1/leftovers/" + encode(leftover.key) +
                  "?upload=" + encode(leftover.upload),
              "DELETE the leftover " + leftover.name());
  }

  std::string url(const std::string& key) const override {
    return m_base + "/v1/objects/" + encode(key);
  }

  // Ranges come as presigned GETs straight from the store, as many at once as parts go up.
  int parallel_reads() const override { return k_parallel; }

  // The PEM key the broker signs with: the one request that carries no token.
  std::string public_key() {
    std::string body;
    Call c;
    c.url = m_base + "/v1/key";
    c.token = false;
    c.into = &body;
    c.max_into = 16 << 10;
    perform(c, "read the signing key");
    return body;
  }

private:
  // Puts source straight into the store in parts the broker presigned, and has the broker
  // complete it; false (and never again) when the broker's store takes no such uploads.
  bool put_in_parts(const std::string& key, Source& source) {
    std::string body;
    Call start;
    start.method = "POST";
    start.url = m_base + "/v1/uploads/" + encode(key) + fmt::format("?size={}", source.size());
    StringSource nothing("");
    start.upload = &nothing;
    start.into = &body;
    start.max_into = k_max_listing;
    try {
      perform(start, "start the upload of " + key);
    } catch (const StoreError& e) {
      if (e.kind() != StoreErrorKind::not_found) {
        throw;
      }
      m_parts = false;
      return false;
    }
    auto j = json::parse(body, nullptr, false);
    if (j.is_object() && j.value("exists", false)) {
      return true; // a content-addressed object: the store has these bytes
    }
    auto plan = upload_plan(j, key, source.size());
    try {
      auto etags = send_parts(key, plan, source);
      plan.erase("parts");
      plan["etags"] = etags;
      post_json("/v1/complete/", key, plan, "complete the upload of " + key);
    } catch (...) {
      plan.erase("parts");
      plan.erase("etags");
      try {
        post_json("/v1/abort/", key, plan, "abort the upload of " + key);
      } catch (const std::exception& e) {
        util::log::debug("{}", e.what()); // gc removes what is left
      }
      throw;
    }
    return true;
  }

  // The broker's answer to a start, checked: its part URLs cover exactly `size` bytes.
  static json upload_plan(const json& j, const std::string& key, uint64_t size) {
    auto malformed = [&](const char* why) {
      return StoreError(
          StoreErrorKind::permanent,
          fmt::format("the broker's upload of {} is malformed: {}", util::printable(key), why));
    };
    if (!j.is_object() || !j.contains("upload") || !j["upload"].is_string() ||
        !j.contains("part_size") || !j["part_size"].is_number_unsigned() || !j.contains("parts") ||
        !j["parts"].is_array() || !j.contains("ticket") || !j["ticket"].is_string() ||
        j.value("size", uint64_t{0}) != size) {
      throw malformed("no upload, size, part_size, parts or ticket");
    }
    uint64_t part = j["part_size"].get<uint64_t>();
    if (part == 0 || j["parts"].size() != (size + part - 1) / part) {
      throw malformed("its parts do not cover the object");
    }
    for (const auto& url : j["parts"]) {
      if (!url.is_string() || (url.get<std::string>().rfind("https://", 0) != 0 &&
                               url.get<std::string>().rfind("http://", 0) != 0)) {
        throw malformed("a part's URL is not HTTP");
      }
    }
    return j;
  }

  // The parts, read from source in order and sent by k_parallel threads; their ETags.
  std::vector<std::string> send_parts(const std::string& key, const json& plan, Source& source) {
    const uint64_t part_size = plan["part_size"].get<uint64_t>();
    const uint64_t count = plan["parts"].size(), size = source.size();
    std::vector<std::string> etags(count);
    source.rewind();
    Parts parts(count, k_parallel);
    parts.run([&](uint64_t part) {
      std::string bytes(std::min(part_size, size - part * part_size), '\0');
      parts.in_turn(part, [&] {
        size_t got = 0;
        while (got < bytes.size()) {
          size_t n = source.read(bytes.data() + got, bytes.size() - got);
          if (n == 0) {
            throw StoreError(StoreErrorKind::permanent,
                             fmt::format("the upload of {} ended early", util::printable(key)));
          }
          got += n;
        }
      });
      StringSource body(bytes);
      Call c;
      c.method = "PUT";
      c.url = plan["parts"][part].get<std::string>();
      c.token = false;
      c.upload = &body;
      auto a = perform(c, fmt::format("PUT part {} of {} (presigned)", part + 1, key));
      if (a.etag.empty()) {
        throw StoreError(StoreErrorKind::permanent,
                         fmt::format("the store gave part {} of {} no ETag", part + 1, key));
      }
      etags[part] = a.etag;
    });
    return etags;
  }

  void post_json(const std::string& path, const std::string& key, const json& j,
                 const std::string& what) {
    StringSource body(j.dump());
    Call c;
    c.method = "POST";
    c.url = m_base + path + encode(key);
    c.upload = &body;
    perform(c, what);
  }

  void fetch(const std::string& key, std::optional<std::pair<uint64_t, uint64_t>> range,
             Sink& sink) {
    check_key(key);
    Call c;
    c.url = m_base + "/v1/objects/" + encode(key);
    if (range) {
      c.url += fmt::format("?offset={}&length={}", range->first, range->second);
    }
    c.sink = &sink;
    auto a = perform(c, "GET " + key);
    if (a.status != 307) {
      return;
    }
    // The broker hands large reads to the store itself: the URL is presigned, the token
    // stays here.
    Call direct;
    direct.url = a.location;
    direct.token = false;
    direct.sink = &sink;
    if (range) {
      direct.range = std::make_pair(range->first, range->first + range->second - 1);
    }
    if (direct.url.rfind("https://", 0) != 0 && direct.url.rfind("http://", 0) != 0) {
      throw StoreError(StoreErrorKind::permanent,
                       "the broker redirected to a URL that is not HTTP");
    }
    auto d = perform(direct, "GET " + key + " (presigned)");
    if (range && d.status != 206) {
      throw StoreError(StoreErrorKind::permanent,
                       fmt::format("the store answered a range of {} with HTTP {}", key, d.status));
    }
  }

  // DELETE of url; one already gone is not an error.
  void remove_at(const std::string& url, const std::string& what) {
    Call c;
    c.method = "DELETE";
    c.url = url;
    try {
      perform(c, what);
    } catch (const StoreError& e) {
      if (e.kind() != StoreErrorKind::not_found) {
        throw;
      }
    }
  }

  // A listing's entries; "upload" is read where the broker gives one (its leftovers).
  std::vector<Leftover> listing(const std::string& path, const std::string& prefix) {
    check_prefix(prefix);
    std::string body;
    Call c;
    c.url = m_base + path + "?prefix=" + encode(prefix);
    c.into = &body;
    c.max_into = k_max_listing;
    perform(c, "list " + prefix);
    auto j = json::parse(body, nullptr, false);
    if (!j.is_array()) {
      throw StoreError(StoreErrorKind::permanent, "the broker's listing is not a JSON array");
    }
    std::vector<Leftover> out;
    for (const auto& o : j) {
      if (!o.is_object() || !o.contains("key") || !o["key"].is_string() || !o.contains("size") ||
          !o["size"].is_number_unsigned() || !o.contains("mtime") ||
          !o["mtime"].is_number_integer() || (o.contains("upload") && !o["upload"].is_string())) {
        throw StoreError(StoreErrorKind::permanent, "the broker's listing is malformed");
      }
      auto key = o["key"].get<std::string>();
      check_key(key, "listed key");
      if (key.rfind(prefix, 0) != 0) {
        throw StoreError(StoreErrorKind::permanent,
                         fmt::format("the broker listed {} under {}", util::printable(key),
                                     util::printable(prefix)));
      }
      out.push_back(Leftover{key, o.value("upload", std::string()), o["size"].get<uint64_t>(),
                             o["mtime"].get<int64_t>()});
    }
    return out;
  }

  void call_json(const std::string& url, std::string& body, const std::string& what) {
    Call c;
    c.url = url;
    c.into = &body;
    perform(c, what);
  }

  // c, retried while its failure is transient and nothing has reached its sink; throws
  // StoreError for any other answer than 2xx (and 307 to a presigned URL from the broker).
  Answer perform(const Call& c, const std::string& what) {
    static thread_local std::mt19937 rng{std::random_device{}()};
    for (int attempt = 1;; ++attempt) {
      if (c.into != nullptr) {
        c.into->clear();
      }
      if (c.upload != nullptr) {
        c.upload->rewind();
      }
      std::optional<StoreError> failure;
      Answer a;
      try {
        a = once(c);
        if ((a.status >= 200 && a.status < 300) || (a.status == 307 && c.token)) {
          return a;
        }
        failure = classify(a, what);
      } catch (const StoreError& e) {
        failure = e;
      }
      bool unwanted = c.sink != nullptr && c.sink->cancelled();
      if (!failure->retryable() || attempt == k_tries || a.delivered > 0 || unwanted) {
        throw StoreError(failure->kind(),
                         attempt > 1 ? fmt::format("{} (after {} tries)", failure->what(), attempt)
                                     : std::string(failure->what()));
      }
      double delay = a.retry_after
                         ? static_cast<double>(*a.retry_after)
                         : 0.25 * (1 << attempt) * std::uniform_real_distribution(0.5, 1.0)(rng);
      delay = std::min(delay, 10.0);
      if (auto left = util::budget::left()) { // the next try then says the budget ran out
        delay = std::min(delay, std::chrono::duration<double>(*left).count());
      }
      std::this_thread::sleep_for(std::chrono::duration<double>(delay));
    }
  }

  StoreError classify(const Answer& a, const std::string& what) const {
    std::string why = a.body.substr(0, a.body.find('\n'));
    std::string msg = fmt::format("unable to {} through the broker {}: HTTP {} {}", what, m_base,
                                  a.status, util::printable(why.substr(0, 300)));
    if (a.status == 404) {
      return StoreError(StoreErrorKind::not_found, msg);
    }
    if (a.status == 401 || a.status == 403) {
      return StoreError(StoreErrorKind::unauthorized, msg);
    }
    if (a.status == 429 || a.status == 500 || a.status == 503 || a.status == 504) {
      return StoreError(StoreErrorKind::transient, msg);
    }
    return StoreError(StoreErrorKind::permanent, msg);
  }

  Answer once(const Call& c) {
    const auto& curl = CurlLib::get(k_who);
    CURL* h = curl.easy_init();
    if (h == nullptr) {
      throw StoreError(StoreErrorKind::transient, "unable to start a libcurl transfer");
    }
    Answer a;
    Transfer t{&c, &a, c.sink};
    curl_slist* headers = nullptr;
    std::string auth;
    if (c.token) {
      if (m_token.empty()) {
        curl.easy_cleanup(h);
        throw StoreError(StoreErrorKind::unauthorized,
                         "EPHEMERA_TOKEN is not set: a broker's store needs the job's token");
      }
      auth = "Authorization: Bearer " + m_token;
      headers = curl.slist_append(headers, auth.c_str());
    }
    std::string range;
    if (c.range) {
      range = fmt::format("{}-{}", c.range->first, c.range->second);
      curl.easy_setopt(h, CURLOPT_RANGE, range.c_str());
    }
    curl.easy_setopt(h, CURLOPT_URL, c.url.c_str());
    curl.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl.easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    // The phase's time budget (pre --budget) bounds every call, the presigned one too.
    auto budget = util::budget::left();
    if (budget && budget->count() == 0) {
      curl.easy_cleanup(h);
      throw util::budget::exceeded(fmt::format("unable to reach the broker {}", m_base));
    }
    if (c.upload != nullptr) {
      // Once the body is sent the broker answers only when the object is in the store, which
      // takes about as long again: no bytes move meanwhile, so the bound is the whole time.
      long ms = static_cast<long>(120 + 2 * c.upload->size() / k_min_rate) * 1000;
      curl.easy_setopt(h, CURLOPT_TIMEOUT_MS, budget ? std::min<long>(ms, budget->count()) : ms);
    } else {
      curl.easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
      curl.easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 30L);
    }
    if (budget && c.upload == nullptr) {
      curl.easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(budget->count()));
    }
    curl.easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl.easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl.easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl.easy_setopt(h, CURLOPT_WRITEDATA, &t);
    curl.easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl.easy_setopt(h, CURLOPT_HEADERDATA, &t);
    if (c.sink != nullptr) {
      curl.easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
      curl.easy_setopt(h, CURLOPT_XFERINFODATA, &t);
      curl.easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    }
    if (c.upload != nullptr) {
      curl.easy_setopt(h, CURLOPT_UPLOAD, 1L);
      curl.easy_setopt(h, CURLOPT_READFUNCTION, on_upload);
      curl.easy_setopt(h, CURLOPT_READDATA, c.upload);
      curl.easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(c.upload->size()));
    }
    if (c.method != "GET" && c.method != "PUT") {
      curl.easy_setopt(h, CURLOPT_CUSTOMREQUEST, c.method.c_str());
    }
    if (headers != nullptr) {
      curl.easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    }
    CURLcode rc = curl.easy_perform(h);
    long status = 0;
    curl.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl.easy_cleanup(h);
    curl.slist_free_all(headers);
    if (a.sink_error) {
      std::rethrow_exception(a.sink_error);
    }
    if (rc == CURLE_ABORTED_BY_CALLBACK) {
      throw StoreError(StoreErrorKind::permanent, "a transfer from the broker's store was stopped: "
                                                  "its bytes are no longer wanted");
    }
    if (rc == CURLE_OPERATION_TIMEDOUT && budget && util::budget::ran_out_by_timeout()) {
      throw util::budget::exceeded(fmt::format("unable to reach the broker {}", m_base));
    }
    if (rc != CURLE_OK) {
      auto kind =
          rc == CURLE_OPERATION_TIMEDOUT ? StoreErrorKind::timeout : StoreErrorKind::transient;
      throw StoreError(
          kind, fmt::format("unable to reach the broker {}: {}", m_base, curl.easy_strerror(rc)));
    }
    a.status = status;
    return a;
  }

  std::string m_base;
  std::string m_token;
  std::atomic<bool> m_parts{true}; // whether the broker's store takes uploads in parts
};

} // namespace

bool is_broker_url(const std::string& url) {
  return url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0;
}

std::unique_ptr<Backend> open_broker(const std::string& base) {
  std::string b = base;
  while (!b.empty() && b.back() == '/') {
    b.pop_back();
  }
  auto host = b.find("://");
  if (!is_broker_url(b) || host == std::string::npos || b.size() == host + 3 ||
      b.find_first_of("?#") != std::string::npos) {
    throw util::InputError(fmt::format("'{}' is not a broker's URL: http(s)://host[:port][/path]",
                                       util::printable(base)));
  }
  return std::make_unique<BrokerBackend>(b);
}

std::string broker_public_key(const std::string& base) {
  auto backend = open_broker(base);
  return static_cast<BrokerBackend&>(*backend).public_key();
}

} // namespace ephemera::store
