// The S3 backend: stat, get, put, list and remove as S3 requests (ranged GETs and multipart
// uploads of large objects, in parallel), listings bounded and their keys checked.
#include "store/s3.hpp"

#include "store/s3_client.hpp"
#include "store/s3_curl.hpp"
#include "store/s3_parts.hpp"
#include "store/s3_xml.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/sha256.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

namespace ephemera::store {

using util::StoreError;
using util::StoreErrorKind;

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

// Fills body from source; a source that ends early is an error.
void read_exactly(Source& source, std::string& body) {
  size_t done = 0;
  while (done < body.size()) {
    size_t n = source.read(body.data() + done, body.size() - done);
    if (n == 0) {
      throw util::Error("the upload source ended early");
    }
    done += n;
  }
}

class S3Backend : public Backend, public Presigner, public LeftoverCleaner, public PartPresigner {
public:
  explicit S3Backend(S3Config config) : m_client(std::move(config)) {}

  std::optional<ObjectInfo> stat(const std::string& key) override {
    Request r;
    r.method = "HEAD";
    r.key = m_client.full(key);
    auto resp = m_client.perform(r, true);
    if (resp.status == 404) {
      return std::nullopt;
    }
    return ObjectInfo{key, resp.length.value_or(0), resp.mtime};
  }

  void get(const std::string& key, Sink& sink) override {
    if (auto size = sink.expected_size()) {
      get_sized(key, *size, sink);
      return;
    }
    Request r;
    r.key = m_client.full(key);
    r.sink = &sink;
    r.max_body = sink.max_bytes();
    m_client.perform(r, false);
  }

  void get_range(const std::string& key, uint64_t offset, uint64_t length, Sink& sink) override {
    if (length == 0) { // HTTP has no empty range
      auto st = stat(key);
      if (!st) {
        throw StoreError(StoreErrorKind::not_found,
                         fmt::format("unable to GET {}: not found", url(key)));
      }
      if (offset > st->size) {
        throw StoreError(StoreErrorKind::permanent,
                         fmt::format("unable to GET {}: byte {} is past its end ({} bytes)",
                                     url(key), offset, st->size));
      }
      return;
    }
    Request r;
    r.key = m_client.full(key);
    r.sink = &sink;
    r.range = {offset, offset + length - 1};
    r.max_body = length;
    r.length = length;
    m_client.perform(r, false);
  }

  // Parts of download_part bytes fetched by `parallel` threads, each retried whole on its
  // own and handed to the sink in order, at most `parallel` parts held. The whole download,
  // retries included, ends by the deadline (EPHEMERA_S3_DEADLINE).
  void get_sized(const std::string& key, uint64_t size, Sink& sink) {
    const std::string whole = m_client.full(key);
    const auto deadline = Clock::now() + std::chrono::seconds(config().deadline);
    const uint64_t part_size = config().download_part;
    if (size <= part_size || config().parallel <= 1) {
      get_whole(whole, size, sink, deadline);
      return;
    }
    Parts parts((size + part_size - 1) / part_size, config().parallel);
    uint64_t delivered = 0;
    try {
      parts.run([&](uint64_t part) {
        uint64_t first = part * part_size, last = std::min(size, first + part_size) - 1;
        std::string buf = get_part(key, whole, size, first, last, deadline);
        parts.in_turn(part, [&] {
          sink.write(buf.data(), buf.size());
          ++delivered;
        });
      });
    } catch (const RangeIgnored& e) {
      if (delivered != 0) {
        throw;
      }
      util::log::debug("{}; fetching it in one piece", e.what());
      get_whole(whole, size, sink, deadline);
    }
  }

  void put(const std::string& key, Source& source) override {
    const std::string whole = m_client.full(key);
    source.rewind();
    if (source.size() <= config().part_size) {
      std::string body(source.size(), '\0');
      read_exactly(source, body);
      Request r;
      r.method = "PUT";
      r.key = whole;
      r.body = &body;
      m_client.perform(r, false);
      return;
    }
    multipart(whole, source);
  }

  std::vector<ObjectInfo> list(const std::string& prefix) override {
    check_prefix(prefix);
    const std::string requested = config().prefix + prefix;
    ListingLimits limits(url(prefix), Clock::now() + std::chrono::seconds(config().deadline));
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
      auto page = s3xml::parse_list_objects(m_client.perform(r, false).body);
      uint64_t bytes = 0;
      for (const auto& o : page.objects) {
        bytes += o.key.size();
      }
      limits.page(page.objects.size(), bytes);
      for (auto& o : page.objects) {
        if (auto key = listed_key(o.key, config().prefix, requested)) {
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
    r.key = m_client.full(key);
    m_client.perform(r, true); // 404: already gone
  }

  std::string url(const std::string& key) const override { return m_client.url(key); }

  // EPHEMERA_S3_PARALLEL, as for the parts of an archive.
  int parallel_reads() const override { return config().parallel; }

  const Presigner* presigner() const override { return this; }
  LeftoverCleaner* leftover_cleaner() override { return this; }
  PartPresigner* part_presigner() override { return this; }

  // Parts of part_size, or larger where S3's 10,000 parts would not hold the object.
  uint64_t part_size(uint64_t size) const override {
    return std::max<uint64_t>(config().part_size, (size + 9999) / 10000);
  }

  std::string start_upload(const std::string& key) override {
    Request create;
    create.method = "POST";
    create.key = m_client.full(key);
    create.query = {{"uploads", ""}};
    std::string empty;
    create.body = &empty;
    return s3xml::parse_upload_id(m_client.perform(create, false).body);
  }

  std::string presign_part(const std::string& key, const std::string& upload, uint64_t number,
                           std::chrono::seconds ttl) const override {
    return m_client.presign(key, ttl, "PUT",
                            {{"partNumber", std::to_string(number)}, {"uploadId", upload}});
  }

  void complete_upload(const std::string& key, const std::string& upload,
                       const std::vector<std::string>& etags) override {
    complete(m_client.full(key), upload, etags);
  }

  void abort_upload(const std::string& key, const std::string& upload) override {
    abort(m_client.full(key), upload);
  }

  std::string presign(const std::string& key, std::chrono::seconds ttl) const override {
    return m_client.presign(key, ttl);
  }

  // Multipart uploads a killed save never completed or aborted: invisible, but their parts
  // take space until aborted. Bounded and checked as list() is.
  std::vector<Leftover> leftovers(const std::string& prefix) override {
    check_prefix(prefix);
    const std::string requested = config().prefix + prefix;
    ListingLimits limits("the multipart uploads of " + url(prefix),
                         Clock::now() + std::chrono::seconds(config().deadline));
    Skipped skipped;
    std::vector<Leftover> out;
    std::string key_marker, id_marker;
    while (true) {
      Request r;
      r.query = {{"uploads", ""}, {"prefix", requested}};
      if (!key_marker.empty()) {
        r.query["key-marker"] = key_marker;
        r.query["upload-id-marker"] = id_marker;
      }
      r.deadline = limits.deadline();
      auto page = s3xml::parse_list_uploads(m_client.perform(r, false).body);
      uint64_t bytes = 0;
      for (const auto& u : page.uploads) {
        bytes += u.key.size() + u.upload_id.size();
      }
      limits.page(page.uploads.size(), bytes);
      for (auto& u : page.uploads) {
        auto key = listed_key(u.key, config().prefix, requested);
        // The id goes into the abort's query string (encoded there): never empty, no
        // control byte.
        if (key && valid_key(u.upload_id)) {
          out.push_back(Leftover{std::move(*key), std::move(u.upload_id), 0, u.initiated});
        } else {
          skipped.add(u.key + " (upload " + u.upload_id + ")");
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

  void remove_leftover(const Leftover& leftover) override {
    if (leftover.upload.empty()) {
      throw StoreError(StoreErrorKind::permanent,
                       fmt::format("refusing to abort an upload of {}: it has no upload id",
                                   util::printable(url(leftover.key))));
    }
    Request r;
    r.method = "DELETE";
    r.key = m_client.full(leftover.key);
    r.query = {{"uploadId", leftover.upload}};
    m_client.perform(r, true); // 404: already aborted or completed
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
    m_client.perform(r, false);
  }

  void multipart(const std::string& key, Source& source) {
    Request create;
    create.method = "POST";
    create.key = key;
    create.query = {{"uploads", ""}};
    std::string empty;
    create.body = &empty;
    std::string upload_id = s3xml::parse_upload_id(m_client.perform(create, false).body);
    try {
      complete(key, upload_id, upload_parts(key, upload_id, source));
    } catch (...) {
      abort(key, upload_id);
      throw;
    }
  }

  // CompleteMultipartUpload of the whole key, whose answer may be an error inside a 200.
  void complete(const std::string& key, const std::string& upload_id,
                const std::vector<std::string>& etags) {
    std::string xml = "<CompleteMultipartUpload>";
    for (size_t i = 0; i < etags.size(); ++i) {
      xml +=
          fmt::format("<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>", i + 1, etags[i]);
    }
    xml += "</CompleteMultipartUpload>";
    Request complete;
    complete.method = "POST";
    complete.key = key;
    complete.query = {{"uploadId", upload_id}};
    complete.body = &xml;
    auto done = m_client.perform(complete, false);
    if (done.body.find("<Error>") != std::string::npos) {
      Response failed;
      failed.status = 500;
      failed.body = done.body;
      m_client.classify(failed, "complete the upload of " + key);
    }
  }

  // AbortMultipartUpload of the whole key; a failure is a warning (gc removes the leftover).
  void abort(const std::string& key, const std::string& upload_id) {
    Request abort;
    abort.method = "DELETE";
    abort.key = key;
    abort.query = {{"uploadId", upload_id}};
    try {
      m_client.perform(abort, true);
    } catch (const std::exception& e) {
      util::log::warn("unable to abort the multipart upload of {}: {}", url(key), e.what());
    }
  }

  // Bytes first..last of an object that must be `size` bytes.
  std::string get_part(const std::string& key, const std::string& whole, uint64_t size,
                       uint64_t first, uint64_t last, Clock::time_point deadline) {
    std::string buf;
    buf.reserve(last - first + 1);
    Request r;
    r.key = whole;
    r.into = &buf;
    r.range = {first, last};
    r.max_body = last - first + 1;
    r.length = last - first + 1;
    r.deadline = deadline;
    auto resp = m_client.perform(r, false);
    if (resp.total != size) {
      throw StoreError(StoreErrorKind::permanent,
                       fmt::format("{} is {} bytes, expected {}", url(key), resp.total, size));
    }
    if (buf.size() != last - first + 1) { // never more: the transfer stops past the range
      throw StoreError(
          StoreErrorKind::permanent,
          fmt::format("unable to GET {}: bytes {}-{} came {} bytes short", url(key), first, last,
                      last - first + 1 - std::min<uint64_t>(buf.size(), last - first + 1)));
    }
    return buf;
  }

  // The parts of a multipart upload, read from the source in order and sent by `parallel`
  // threads; their ETags in part order.
  std::vector<std::string> upload_parts(const std::string& key, const std::string& upload_id,
                                        Source& source) {
    const uint64_t part_size = config().part_size;
    const uint64_t count = (source.size() + part_size - 1) / part_size;
    std::vector<std::string> etags(count);
    Parts parts(count, config().parallel);
    parts.run([&](uint64_t part) {
      std::string body(std::min<uint64_t>(part_size, source.size() - part * part_size), '\0');
      parts.in_turn(part, [&] { read_exactly(source, body); });
      Request r;
      r.method = "PUT";
      r.key = key;
      r.query = {{"partNumber", std::to_string(part + 1)}, {"uploadId", upload_id}};
      r.body = &body;
      etags[part] = m_client.perform(r, false).etag;
    });
    return etags;
  }

  const S3Config& config() const { return m_client.config(); }

  S3Client m_client;
};

} // namespace

std::unique_ptr<Backend> open_s3(const std::string& rest) {
  auto config = parse_s3_url(rest);
  if (config.access_key.empty() || config.secret_key.empty()) {
    throw StoreError(StoreErrorKind::unauthorized,
                     "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
  }
  return std::make_unique<S3Backend>(std::move(config));
}

} // namespace ephemera::store
