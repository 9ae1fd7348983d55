// The broker's HTTP endpoints. Each handler is the token check, the scope decision and one
// store primitive; they are kept in one file so that every endpoint's checks read side by
// side and none can be missed.

#include "broker/server.hpp"

#include "broker/body.hpp"
#include "broker/rate.hpp"
#include "broker/scope.hpp"
#include "broker/token.hpp"
#include "store/catalog.hpp"
#include "store/events.hpp"
#include "store/selection.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/log.hpp"
#include "util/sha256.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <openssl/crypto.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <httplib.h>
#include <pthread.h>
#include <thread>
#include <unistd.h>

namespace ephemera::broker {

namespace fs = std::filesystem;
using nlohmann::json;
using util::StoreError;
using util::StoreErrorKind;

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// An answer that ends the request: its status and a one-line reason.
struct Answer {
  int status;
  std::string why;
  bool refusal = true; // false: an answer the client expects (logged only with --verbose)
};

// A spooled upload: an unlinked file, so that a broker killed mid-upload leaves nothing.
class SpoolSource : public store::Source {
public:
  SpoolSource(int fd, uint64_t size) : m_fd(fd), m_size(size) {}
  uint64_t size() const override { return m_size; }
  size_t read(char* buf, size_t max) override {
    ssize_t n = util::read_full(m_fd.fd, buf, max, static_cast<off_t>(m_pos));
    if (n < 0) {
      throw util::Error(fmt::format("unable to read the spooled upload: {}", std::strerror(errno)));
    }
    m_pos += static_cast<uint64_t>(n);
    return static_cast<size_t>(n);
  }
  void rewind() override { m_pos = 0; }

private:
  util::Fd m_fd;
  uint64_t m_size;
  uint64_t m_pos = 0;
};

class FdSink : public store::Sink {
public:
  explicit FdSink(int fd) : m_fd(fd) {}
  void write(const char* data, size_t size) override {
    if (!util::write_all(m_fd, std::string_view(data, size))) {
      throw util::Error(fmt::format("unable to spool a download: {}", std::strerror(errno)));
    }
  }

private:
  int m_fd;
};

Framing framing_of(const httplib::Request& req) {
  Framing f;
  if (req.has_header("Content-Length")) {
    f.content_length = req.get_header_value("Content-Length");
  }
  if (req.has_header("Transfer-Encoding")) {
    f.transfer_encoding = req.get_header_value("Transfer-Encoding");
  }
  return f;
}

// Reads the request's body into receiver, if it has one: a request that declares none has
// none, where cpp-httplib's reader would wait for the client to close.
void read_body(const httplib::Request& req, const httplib::ContentReader& reader,
               const httplib::ContentReceiver& receiver) {
  if (has_body(framing_of(req))) {
    reader(receiver);
  }
}

int status_of(StoreErrorKind kind) {
  switch (kind) {
  case StoreErrorKind::not_found:
    return 404;
  case StoreErrorKind::transient:
  case StoreErrorKind::timeout:
    return 503;
  case StoreErrorKind::unauthorized:
  case StoreErrorKind::permanent:
    return 502;
  }
  return 502;
}

} // namespace

struct Server::Impl {
  std::unique_ptr<store::Backend> backend;
  util::Ed25519Key signing_key;
  util::Ed25519Key token_key;
  ServerOptions options;
  std::shared_ptr<const store::Signer> signer;
  RateLimiter limiter;
  RecordQuota records;
  std::string ticket_secret; // of upload tickets: derived from the signing key
  httplib::Server http;

  Impl(std::unique_ptr<store::Backend> b, util::Ed25519Key sk, util::Ed25519Key tk, ServerOptions o)
      : backend(std::move(b)), signing_key(std::move(sk)), token_key(std::move(tk)),
        options(std::move(o)), limiter(options.rate, options.rate * 4) {}

  // The request's claims, after the token's signature, time, audience and rate; throws
  // Answer (401, 403, 429).
  Claims claims_of(const httplib::Request& req) {
    auto header = req.get_header_value("Authorization");
    const std::string bearer = "Bearer ";
    if (header.rfind(bearer, 0) != 0) {
      throw Answer{401, "no token: send Authorization: Bearer <token> (EPHEMERA_TOKEN)"};
    }
    std::string token = header.substr(bearer.size());
    Claims c;
    try {
      c = verify(token, token_key, static_cast<int64_t>(now_seconds()), options.audience);
    } catch (const StoreError& e) {
      throw Answer{403, e.what()};
    }
    if (auto wait = limiter.take(util::sha256_hex(token), now_seconds()); wait > 0) {
      throw Answer{429, fmt::format("rate limit: more than {} requests a second", options.rate)};
    }
    return c;
  }

  static std::string key_of(const httplib::Request& req) {
    std::string key = req.matches[1];
    store::check_key(key);
    return key;
  }

  void check(const Claims& c, Op op, const std::string& key) {
    auto v = authorize(c, op, key, options.protected_branches);
    if (!v.allowed) {
      throw Answer{v.hide ? 404 : 403, v.why};
    }
  }

  // The save's manifest as the store holds it, for a read of it or its archive; a save the
  // token may not see, or one whose manifest is missing or malformed, is absent to it.
  std::string readable_manifest(const Claims& c, const ParsedKey& p) {
    store::StringSink sink(store::k_max_small_object);
    try {
      backend->get(p.manifest, sink);
    } catch (const StoreError& e) {
      if (e.kind() == StoreErrorKind::not_found) {
        throw Answer{404, "no manifest: the save is absent or not yet complete"};
      }
      throw;
    }
    if (c.role != Role::operator_) {
      auto j = json::parse(sink.data(), nullptr, false);
      store::Manifest m;
      try {
        m = store::Manifest::from_json(j, p.manifest);
      } catch (const StoreError& e) {
        throw Answer{404, fmt::format("a malformed manifest ({})", e.what())};
      }
      if (auto v = may_read(c, m); !v.allowed) {
        throw Answer{404, v.why};
      }
    }
    return sink.data();
  }

  void stat(const httplib::Request& req, httplib::Response& res, const Claims& c) {
    auto key = key_of(req);
    check(c, Op::read, key);
    auto info = backend->stat(key);
    if (!info) {
      throw Answer{404, "no such object"};
    }
    res.set_content(json{{"size", info->size}, {"mtime", info->mtime}}.dump(), "application/json");
  }

  void get(const httplib::Request& req, httplib::Response& res, const Claims& c) {
    auto key = key_of(req);
    check(c, Op::read, key);
    auto p = parse_key(key);
    std::string manifest;
    if (p.kind == KeyKind::manifest || p.kind == KeyKind::archive) {
      manifest = readable_manifest(c, p);
    }
    bool ranged = req.has_param("offset");
    uint64_t offset = 0, length = 0;
    if (ranged) {
      try {
        offset = std::stoull(req.get_param_value("offset"));
        length = std::stoull(req.get_param_value("length"));
      } catch (const std::exception&) {
        throw Answer{400, "offset and length must be whole numbers"};
      }
    }
    if (p.kind == KeyKind::manifest && !ranged) {
      res.set_content(manifest, "application/json");
      return;
    }
    const auto* presigner = backend->presigner();
    // Content-addressed objects are read in runs of a few MiB each: every one goes straight
    // from the store, which answers a range past the end itself (and the client refuses any
    // answer but the range it asked for).
    if (presigner != nullptr && p.kind == KeyKind::cas) {
      redirect(res, presigner->presign(key, options.presign_ttl), key);
      return;
    }
    auto info = backend->stat(key);
    if (!info) {
      throw Answer{404, "no such object"};
    }
    if (ranged && (length == 0 || offset > info->size || length > info->size - offset)) {
      throw Answer{416, "the range reaches past the object's end"};
    }
    uint64_t size = ranged ? length : info->size;
    if (presigner != nullptr && size > options.presign_above) {
      redirect(res, presigner->presign(key, options.presign_ttl), key);
      return;
    }
    int fd = backend->open_local(key);
    if (fd < 0) {
      fd = spool_download(key, ranged, offset, length);
      offset = ranged ? 0 : offset;
    }
    stream_fd(res, fd, offset, size);
  }

  static void redirect(httplib::Response& res, const std::string& url, const std::string& key) {
    util::log::debug("GET {}: sent to a presigned URL", util::printable(key));
    res.status = 307;
    res.set_header("Location", url);
  }

  // The object (or its range) in an unlinked file of the spool, for a store that neither
  // presigns nor lies on this machine.
  int spool_download(const std::string& key, bool ranged, uint64_t offset, uint64_t length) {
    int fd = spool_file();
    util::Fd guard(fd);
    FdSink sink(fd);
    if (ranged) {
      backend->get_range(key, offset, length, sink);
    } else {
      backend->get(key, sink);
    }
    return guard.release();
  }

  static void stream_fd(httplib::Response& res, int fd, uint64_t offset, uint64_t size) {
    auto shared = std::make_shared<util::Fd>(fd);
    res.set_content_provider(
        size, "application/octet-stream",
        [shared, offset](size_t at, size_t length, httplib::DataSink& sink) {
          std::string buf(std::min<size_t>(length, 1 << 20), '\0');
          ssize_t n =
              util::read_full(shared->fd, buf.data(), buf.size(), static_cast<off_t>(offset + at));
          if (n <= 0) {
            return false; // the object shrank under the broker: the transfer is cut
          }
          return sink.write(buf.data(), static_cast<size_t>(n));
        },
        [shared](bool) {});
  }

  int spool_file() {
    std::string tmpl = (options.spool / "ephemera-broker.XXXXXX").string();
    int fd = ::mkstemp(tmpl.data());
    if (fd < 0) {
      throw util::Error(
          fmt::format("unable to spool in {}: {}", options.spool.string(), std::strerror(errno)));
    }
    ::unlink(tmpl.c_str());
    return fd;
  }

  void put(const httplib::Request& req, httplib::Response& res,
           const httplib::ContentReader& reader, const Claims& c) {
    auto key = key_of(req);
    check(c, Op::write, key);
    auto p = parse_key(key);
    bool small = p.kind == KeyKind::manifest || p.kind == KeyKind::marker ||
                 p.kind == KeyKind::use_marker || p.kind == KeyKind::event;
    uint64_t limit = p.kind == KeyKind::use_marker ? 0
                     : p.kind == KeyKind::event    ? store::k_max_event_bytes
                     : small                       ? store::k_max_small_object
                                                   : options.max_object;
    // A use marker marks a save the token may read (one it may not see is absent to it).
    if (p.kind == KeyKind::use_marker && c.role != Role::operator_) {
      readable_manifest(c, p);
      if (auto why = why_not_own_use(c, p, now_seconds()); !why.empty()) {
        throw Answer{403, "not the token's own use marker: " + why};
      }
    }
    // Saves are immutable; a content-addressed object already there holds these very bytes
    // (checked below), so its second upload is taken and not written again; so is a use
    // marker, which says no more the second time.
    bool exists = c.role != Role::operator_ && backend->stat(key).has_value();
    bool idempotent = p.kind == KeyKind::cas || p.kind == KeyKind::use_marker;
    if (exists && !idempotent) {
      throw Answer{403, "the object exists, and saves are immutable"};
    }
    int fd = spool_file();
    util::Fd guard(fd);
    uint64_t got = 0;
    bool too_large = false;
    std::string body;
    util::Sha256 hash;
    read_body(req, reader, [&](const char* data, size_t n) {
      got += n;
      if (got > limit) {
        too_large = true;
        return false;
      }
      if (p.kind == KeyKind::cas) {
        hash.update(data, n);
      }
      if (small) {
        body.append(data, n);
        return true;
      }
      return util::write_all(fd, std::string_view(data, n));
    });
    if (too_large) {
      throw Answer{p.kind == KeyKind::use_marker ? 403 : 413,
                   p.kind == KeyKind::use_marker
                       ? "a use marker is empty: its store time and place say everything"
                       : fmt::format("larger than the {} bytes such an object may be", limit)};
    }
    // A content-addressed name is a promise about the bytes: nobody may put others under it.
    if (p.kind == KeyKind::cas && hash.finish_hex() != p.sha256) {
      throw Answer{403, "its bytes are not those its name (their SHA-256) says"};
    }
    if (exists) {
      res.status = 204;
      return;
    }
    if (p.kind == KeyKind::manifest) {
      body = signed_manifest(c, key, body);
    } else if (p.kind == KeyKind::marker) {
      body = signed_marker(key, body);
    } else if (p.kind == KeyKind::event && c.role != Role::operator_) {
      body = own_event(c, req, p, body);
    }
    if (small) {
      store::StringSource source(body);
      backend->put(key, source);
    } else {
      SpoolSource source(guard.release(), got);
      backend->put(key, source);
    }
    res.status = 204;
  }

  // The event record the job sent, checked to be its own and within the token's quota, as
  // it is to be stored.
  std::string own_event(const Claims& c, const httplib::Request& req, const ParsedKey& p,
                        const std::string& body) {
    store::Event e;
    try {
      e = store::Event::from_json(json::parse(body));
    } catch (const std::exception& err) {
      throw Answer{403, fmt::format("not a valid event record: {}", err.what())};
    }
    if (auto why = why_not_own_event(c, p, e, now_seconds()); !why.empty()) {
      throw Answer{403, "not the token's own event record: " + why};
    }
    auto id = util::sha256_hex(req.get_header_value("Authorization"));
    if (!records.take(id, static_cast<double>(c.expires), now_seconds())) {
      throw Answer{403, fmt::format("the token has written the {} event records a token may",
                                    RecordQuota::k_per_token)};
    }
    return e.to_json().dump() + "\n";
  }

  // The whole body of a request, at most `limit` bytes (413 past it).
  static std::string body_of(const httplib::Request& req, const httplib::ContentReader& reader,
                             uint64_t limit) {
    std::string body;
    bool too_large = false;
    read_body(req, reader, [&](const char* data, size_t n) {
      if (body.size() + n > limit) {
        too_large = true;
        return false;
      }
      body.append(data, n);
      return true;
    });
    if (too_large) {
      throw Answer{413, fmt::format("a request body over {} bytes", limit)};
    }
    return body;
  }

  static uint64_t number_param(const httplib::Request& req, const char* name) {
    try {
      size_t used = 0;
      auto text = req.get_param_value(name);
      uint64_t n = std::stoull(text, &used);
      if (used != text.size() || text.empty() || text[0] == '-') {
        throw std::invalid_argument(name);
      }
      return n;
    } catch (const std::exception&) {
      throw Answer{400, fmt::format("'{}' must be a whole number", name)};
    }
  }

  std::string ticket_of(const httplib::Request& req, const std::string& key,
                        const std::string& upload, uint64_t size, uint64_t part_size) const {
    return upload_ticket(ticket_secret, req.get_header_value("Authorization"), key, upload, size,
                         part_size);
  }

  // The upload a request names, with the ticket that proves this token started it: its key,
  // upload id, size and part size.
  struct Upload {
    std::string key, id;
    uint64_t size = 0, part_size = 0;
    uint64_t parts() const { return (size + part_size - 1) / part_size; }
  };
  Upload ticketed_upload(const httplib::Request& req, const Claims& c, const json& j) {
    Upload u;
    u.key = key_of(req);
    check(c, Op::write, u.key);
    if (!j.is_object() || !j.contains("upload") || !j["upload"].is_string() ||
        !j.contains("size") || !j["size"].is_number_unsigned() || !j.contains("part_size") ||
        !j["part_size"].is_number_unsigned() || !j.contains("ticket") || !j["ticket"].is_string()) {
      throw Answer{400, "an upload is named by its upload, size, part_size and ticket"};
    }
    u.id = j["upload"].get<std::string>();
    u.size = j["size"].get<uint64_t>();
    u.part_size = j["part_size"].get<uint64_t>();
    auto ticket = j["ticket"].get<std::string>();
    auto want = ticket_of(req, u.key, u.id, u.size, u.part_size);
    if (u.part_size == 0 || ticket.size() != want.size() ||
        CRYPTO_memcmp(ticket.data(), want.data(), want.size()) != 0) {
      throw Answer{403, "the upload's ticket is not this token's for this key and upload"};
    }
    return u;
  }

  // Starts a multipart upload whose parts the client sends straight to the store, by
  // presigned links; the broker completes it (complete_upload). 404 where the store has no
  // such uploads: the client then PUTs the object through the broker.
  void start_upload(const httplib::Request& req, httplib::Response& res, const Claims& c) {
    auto key = key_of(req);
    check(c, Op::write, key);
    auto* parts = backend->part_presigner();
    if (parts == nullptr) {
      throw Answer{404, "this store takes uploads through the broker (PUT /v1/objects)", false};
    }
    auto p = parse_key(key);
    if (p.kind != KeyKind::archive && p.kind != KeyKind::cas) {
      throw Answer{403, "only archives and content-addressed objects go up in parts"};
    }
    uint64_t size = number_param(req, "size");
    if (size == 0 || size > options.max_object) {
      throw Answer{
          413, fmt::format("an upload of {} bytes: 1 to {} may go up", size, options.max_object)};
    }
    if (backend->stat(key)) {
      if (p.kind != KeyKind::cas) {
        throw Answer{403, "the object exists, and saves are immutable"};
      }
      res.set_content(json{{"exists", true}}.dump(), "application/json");
      return; // its name says its bytes: they are there already
    }
    Upload u{key, parts->start_upload(key), size, parts->part_size(size)};
    json urls = json::array();
    for (uint64_t n = 1; n <= u.parts(); ++n) {
      urls.push_back(parts->presign_part(key, u.id, n, options.presign_ttl));
    }
    util::log::debug("upload of {}: {} bytes in {} presigned part(s)", util::printable(key), size,
                     u.parts());
    res.set_content(json{{"upload", u.id},
                         {"size", size},
                         {"part_size", u.part_size},
                         {"parts", urls},
                         {"ticket", ticket_of(req, key, u.id, size, u.part_size)}}
                        .dump(),
                    "application/json");
  }

  // Completes an upload start_upload began, from its parts' ETags: once, by the token that
  // started it, for an object that is not there yet, to exactly the size declared.
  void complete_upload(const httplib::Request& req, httplib::Response& res,
                       const httplib::ContentReader& reader, const Claims& c) {
    auto j = json::parse(body_of(req, reader, k_max_completion), nullptr, false);
    auto u = ticketed_upload(req, c, j);
    auto* parts = backend->part_presigner();
    if (parts == nullptr) {
      throw Answer{404, "this store takes no uploads in parts"};
    }
    if (!j.contains("etags") || !j["etags"].is_array() || j["etags"].size() != u.parts()) {
      throw Answer{400,
                   fmt::format("the upload has {} parts: give their ETags in order", u.parts())};
    }
    std::vector<std::string> etags;
    for (const auto& e : j["etags"]) {
      if (!e.is_string() || !plain_etag(e.get<std::string>())) {
        throw Answer{400, "an ETag is hex digits and '-', in double quotes, of at most 128 bytes"};
      }
      etags.push_back(e.get<std::string>());
    }
    auto p = parse_key(u.key);
    if (c.role != Role::operator_ && backend->stat(u.key)) {
      parts->abort_upload(u.key, u.id);
      if (p.kind == KeyKind::cas) {
        res.status = 204;
        return;
      }
      throw Answer{403, "the object exists, and saves are immutable"};
    }
    parts->complete_upload(u.key, u.id, etags);
    auto info = backend->stat(u.key);
    if (!info || info->size != u.size) {
      backend->remove(u.key);
      throw Answer{403, fmt::format("the parts made {} bytes, not the {} declared",
                                    info ? info->size : 0, u.size)};
    }
    res.status = 204;
  }

  void abort_upload(const httplib::Request& req, httplib::Response& res,
                    const httplib::ContentReader& reader, const Claims& c) {
    auto j = json::parse(body_of(req, reader, k_max_completion), nullptr, false);
    auto u = ticketed_upload(req, c, j);
    if (auto* parts = backend->part_presigner()) {
      parts->abort_upload(u.key, u.id);
    }
    res.status = 204;
  }

  // The manifest the job sent, checked to be its own save, with the archive it names in the
  // store, and signed.
  std::string signed_manifest(const Claims& c, const std::string& key, const std::string& body) {
    auto j = json::parse(body, nullptr, false);
    store::Manifest m;
    try {
      m = store::Manifest::from_json(j, key);
    } catch (const StoreError& e) {
      throw Answer{403, fmt::format("not a valid manifest: {}", e.what())};
    }
    if (auto why = why_not_own(c, m, now_seconds()); !why.empty()) {
      throw Answer{403, "not the token's own save: " + why};
    }
    auto archive = backend->stat(m.archive);
    if (!archive || archive->size != m.compressed_size) {
      throw Answer{403, fmt::format("its archive {} is not in the store with {} bytes",
                                    util::printable(m.archive), m.compressed_size)};
    }
    m.signature = signer->sign(store::manifest_payload(m));
    return m.to_json().dump(2) + "\n";
  }

  // An operator's invalidation marker, signed.
  std::string signed_marker(const std::string& key, const std::string& body) {
    auto j = json::parse(body, nullptr, false);
    auto str = [&](const char* k) {
      if (!j.is_object() || !j.contains(k) || !j.at(k).is_string()) {
        throw Answer{400, fmt::format("not an invalidation marker: no string '{}'", k)};
      }
      return j.at(k).get<std::string>();
    };
    // Narrower markers carry a key or a branch, which their signature covers too.
    auto optional = [&](const char* k) { return j.is_object() && j.contains(k) ? str(k) : ""; };
    store::Invalidation inv{str("repository"), str("target"), str("name"), str("reason"),
                            str("created"),    key,           0,           optional("key"),
                            optional("branch")};
    if (!store::marker_in_place(inv)) {
      throw Answer{400, "the marker's repository is not that of its folder"};
    }
    j["signature"] = signer->sign(store::marker_payload(inv));
    return j.dump(2) + "\n";
  }

  // The request's listing prefix, checked, and the token's right to list it.
  std::string listed_prefix(const httplib::Request& req, const Claims& c) {
    auto prefix = req.get_param_value("prefix");
    try {
      store::check_prefix(prefix);
    } catch (const StoreError& e) {
      throw Answer{400, e.what()};
    }
    check(c, Op::list, prefix);
    return prefix;
  }

  void send_listing(const httplib::Request& req, httplib::Response& res, const Claims& c) {
    json out = json::array();
    for (const auto& o : backend->list(listed_prefix(req, c))) {
      out.push_back(json{{"key", o.key}, {"size", o.size}, {"mtime", o.mtime}});
    }
    res.set_content(out.dump(), "application/json");
  }

  // The store's leftovers, for an operator's gc: none where the store keeps none.
  void send_leftovers(const httplib::Request& req, httplib::Response& res, const Claims& c) {
    auto prefix = listed_prefix(req, c);
    if (c.role != Role::operator_) {
      throw Answer{403, "only an operator's token lists leftovers"};
    }
    json out = json::array();
    if (auto* cleaner = backend->leftover_cleaner()) {
      for (const auto& l : cleaner->leftovers(prefix)) {
        out.push_back(
            json{{"key", l.key}, {"upload", l.upload}, {"size", l.size}, {"mtime", l.mtime}});
      }
    }
    res.set_content(out.dump(), "application/json");
  }

  void remove_leftover(const httplib::Request& req, httplib::Response& res, const Claims& c) {
    auto key = key_of(req);
    check(c, Op::remove, key);
    auto* cleaner = backend->leftover_cleaner();
    if (cleaner == nullptr) {
      throw Answer{404, "this store keeps no leftovers"};
    }
    cleaner->remove_leftover(store::Leftover{key, req.get_param_value("upload"), 0, 0});
    res.status = 204;
  }

  // Runs one request: its token, then fn; every refusal and failure is answered and logged.
  template <typename Fn> void serve(const httplib::Request& req, httplib::Response& res, Fn fn) {
    std::optional<Claims> c;
    try {
      c = claims_of(req);
      fn(*c);
      return;
    } catch (const Answer& a) {
      if (!a.refusal) {
        res.status = a.status;
        res.set_content(a.why + "\n", "text/plain");
        util::log::debug("{} {}: {} {}", req.method, util::printable(req.path), a.status, a.why);
        return;
      }
      res.status = a.status;
      res.set_content(a.why + "\n", "text/plain");
      if (a.status == 429) {
        res.set_header("Retry-After", "1");
      }
    } catch (const StoreError& e) {
      res.status = e.kind() == StoreErrorKind::permanent &&
                           std::string(e.what()).find("object key") != std::string::npos
                       ? 400
                       : status_of(e.kind());
      res.set_content(std::string(e.what()) + "\n", "text/plain");
    } catch (const std::exception& e) {
      res.status = 500;
      res.set_content(std::string(e.what()) + "\n", "text/plain");
    }
    std::string who =
        c ? fmt::format("job {} of {} ({}{})", util::printable(c->job_id),
                        util::printable(c->repository),
                        c->role == Role::operator_ ? "operator"
                        : c->trusted               ? "trusted"
                                                   : "untrusted",
                        c->origin.empty() ? "" : ", origin " + util::printable(c->origin))
          : std::string("no valid token");
    log_refusal(req, res, who);
  }

  static void log_refusal(const httplib::Request& req, const httplib::Response& res,
                          const std::string& who) {
    std::string why = res.body.substr(0, std::min<size_t>(res.body.find('\n'), 400));
    util::log::warn("refused {} {}: {} {} [{}]", req.method, util::printable(req.path), res.status,
                    util::printable(why), who);
  }

  // Refuses, before a byte of its body is read, a request whose body its route does not take
  // or takes less of (body.hpp); false when it may be served.
  bool refused_body(const httplib::Request& req, httplib::Response& res) {
    auto refusal = refuse_body(req.method, req.path, framing_of(req), options.max_object);
    if (!refusal) {
      return false;
    }
    res.status = refusal->status;
    res.set_content(refusal->why + "\n", "text/plain");
    log_refusal(req, res, "its body unread");
    return true;
  }

  void routes() {
    // Before any route, and before the library reads a body into memory for one that takes
    // none; a client that asks to be told first (Expect: 100-continue) is, before it sends it.
    http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      return refused_body(req, res) ? httplib::Server::HandlerResponse::Handled
                                    : httplib::Server::HandlerResponse::Unhandled;
    });
    http.set_expect_100_continue_handler(
        [this](const httplib::Request& req, httplib::Response& res) {
          return refused_body(req, res) ? res.status : 100;
        });
    http.Get("/v1/key", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(signing_key.public_pem(), "application/x-pem-file");
    });
    http.Get(R"(/v1/stat/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
      serve(req, res, [&](const Claims& c) { stat(req, res, c); });
    });
    http.Get(R"(/v1/objects/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
      serve(req, res, [&](const Claims& c) { get(req, res, c); });
    });
    http.Put(R"(/v1/objects/(.+))", [this](const httplib::Request& req, httplib::Response& res,
                                           const httplib::ContentReader& reader) {
      serve(req, res, [&](const Claims& c) { put(req, res, reader, c); });
    });
    http.Delete(R"(/v1/objects/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
      serve(req, res, [&](const Claims& c) {
        auto key = key_of(req);
        check(c, Op::remove, key);
        backend->remove(key);
        res.status = 204;
      });
    });
    http.Post(R"(/v1/uploads/(.+))", [this](const httplib::Request& req, httplib::Response& res,
                                            const httplib::ContentReader& reader) {
      serve(req, res, [&](const Claims& c) {
        body_of(req, reader, 0);
        start_upload(req, res, c);
      });
    });
    http.Post(R"(/v1/complete/(.+))", [this](const httplib::Request& req, httplib::Response& res,
                                             const httplib::ContentReader& reader) {
      serve(req, res, [&](const Claims& c) { complete_upload(req, res, reader, c); });
    });
    http.Post(R"(/v1/abort/(.+))", [this](const httplib::Request& req, httplib::Response& res,
                                          const httplib::ContentReader& reader) {
      serve(req, res, [&](const Claims& c) { abort_upload(req, res, reader, c); });
    });
    http.Get("/v1/list", [this](const httplib::Request& req, httplib::Response& res) {
      serve(req, res, [&](const Claims& c) { send_listing(req, res, c); });
    });
    http.Get("/v1/leftovers", [this](const httplib::Request& req, httplib::Response& res) {
      serve(req, res, [&](const Claims& c) { send_leftovers(req, res, c); });
    });
    http.Delete(R"(/v1/leftovers/(.+))",
                [this](const httplib::Request& req, httplib::Response& res) {
                  serve(req, res, [&](const Claims& c) { remove_leftover(req, res, c); });
                });
    // Whatever else comes with a body is answered unread: the library would read it whole
    // into memory for a route with no reader of its own.
    auto nowhere = [](const httplib::Request& req, httplib::Response& res,
                      const httplib::ContentReader&) {
      res.status = 404;
      res.set_content("no such endpoint\n", "text/plain");
      log_refusal(req, res, "any token");
    };
    http.Post(".*", nowhere);
    http.Put(".*", nowhere);
  }
};

Server::Server(std::unique_ptr<store::Backend> backend, util::Ed25519Key signing_key,
               util::Ed25519Key token_key, ServerOptions options)
    : m_impl(std::make_unique<Impl>(std::move(backend), std::move(signing_key),
                                    std::move(token_key), std::move(options))) {
  if (!m_impl->signing_key.has_private()) {
    throw util::Error("the broker's signing key must be a private key");
  }
  m_impl->ticket_secret =
      util::sha256_hex("ephemera-upload-tickets\n" + m_impl->signing_key.private_pem());
  m_impl->signer = store::ed25519_signer(
      util::Ed25519Key::from_pem(m_impl->signing_key.private_pem(), "the broker's signing key"));
  m_impl->routes();
}

Server::~Server() = default;

void Server::run() {
  auto& http = m_impl->http;
  const auto& o = m_impl->options;
  int threads = std::max(1, o.threads);
  http.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  http.set_read_timeout(o.timeout);
  http.set_write_timeout(o.timeout);
  http.set_keep_alive_timeout(5);
  // One request a connection: the body of a request refused before it was read is never
  // taken for the next request on the connection (behind a proxy that reuses connections,
  // a smuggled one). The client opens a connection a request anyway.
  http.set_keep_alive_max_count(1);
  http.set_tcp_nodelay(true);
  http.set_payload_max_length(o.max_object);
  int port = o.port;
  if (port == 0) {
    port = http.bind_to_any_port(o.host);
  } else if (!http.bind_to_port(o.host, port)) {
    port = -1;
  }
  if (port <= 0) {
    throw util::Error(
        fmt::format("unable to listen on {}:{}: {}", o.host, o.port, std::strerror(errno)));
  }
  if (!o.port_file.empty()) {
    util::write_file_atomic(o.port_file, fmt::format("{}\n", port));
  }
  util::log::info("listening on http://{}:{}", o.host, port);
  // SIGTERM and SIGINT stop the server from a thread of its own: stop() is not for a handler.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread stopper([&http, set] {
    int sig = 0;
    sigwait(&set, &sig);
    http.stop();
  });
  http.listen_after_bind();
  ::pthread_kill(stopper.native_handle(), SIGTERM);
  stopper.join();
}

} // namespace ephemera::broker
