// The catalog: manifests and invalidation markers written, read, verified and chosen over the
// backend's primitives, and the transfer of archives. Long because the manifest format and
// the object keys still live here beside the lookup that uses them.

#include "store/catalog.hpp"

#include "store/selection.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/log.hpp"
#include "util/sha256.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <random>
#include <set>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

namespace ephemera::store {

namespace fs = std::filesystem;
using nlohmann::json;
using util::StoreError;
using util::StoreErrorKind;

std::string sanitise(std::string_view component) {
  if (component.empty()) {
    return "~";
  }
  std::string out;
  for (size_t i = 0; i < component.size(); ++i) {
    auto c = static_cast<unsigned char>(component[i]);
    bool plain = std::isalnum(c) != 0 || c == '_' || c == '-' || (c == '.' && i > 0);
    out += plain ? std::string(1, static_cast<char>(c)) : fmt::format("~{:02X}", c);
  }
  return out;
}

std::string rfc3339_now() {
  struct timeval tv {};
  ::gettimeofday(&tv, nullptr);
  struct tm tm {};
  ::gmtime_r(&tv.tv_sec, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, tv.tv_usec);
}

std::optional<double> parse_rfc3339(const std::string& text) {
  struct tm tm {};
  int usec = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%6dZ", &tm.tm_year, &tm.tm_mon,
                  &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &usec) != 7) {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<double>(::timegm(&tm)) + usec / 1e6;
}

namespace {

std::string scope_prefix(const std::string& repository, const std::string& target,
                         const std::string& name, int64_t epoch) {
  return fmt::format("v1/{}/{}/{}/e{}/", sanitise(repository), sanitise(target), sanitise(name),
                     epoch);
}

std::string stamp(const std::string& created) {
  std::string s;
  for (char c : created) {
    if (c != '-' && c != ':') {
      s += c;
    }
  }
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{}-{:08x}", s, static_cast<uint32_t>(rng()));
}

template <typename T> T field(const json& j, const char* key) {
  if (!j.contains(key)) {
    throw StoreError(StoreErrorKind::permanent, fmt::format("manifest has no '{}'", key));
  }
  try {
    return j.at(key).get<T>();
  } catch (const json::exception&) {
    throw StoreError(StoreErrorKind::permanent,
                     fmt::format("manifest field '{}' has the wrong type", key));
  }
}

// A whole number from 0 to max. nlohmann's get<uint64_t>() wraps -1 to 2^64-1 and truncates
// 1.5 to 1: a store writer must not choose a size or epoch by either.
uint64_t count_field(const json& j, const char* key, uint64_t max = UINT64_MAX) {
  if (!j.contains(key)) {
    throw StoreError(StoreErrorKind::permanent, fmt::format("manifest has no '{}'", key));
  }
  const auto& v = j.at(key);
  bool whole = v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0);
  if (!whole || v.get<uint64_t>() > max) {
    throw StoreError(StoreErrorKind::permanent,
                     fmt::format("manifest field '{}' is {}, not a whole number from 0 to {}", key,
                                 util::printable(v.dump().substr(0, 40)), max));
  }
  return v.get<uint64_t>();
}

bool lower_hex(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// Exactly the shape rfc3339_now() writes, so that times compare as strings.
bool canonical_time(const std::string& text) {
  static const std::string shape = "dddd-dd-ddTdd:dd:dd.ddddddZ";
  if (text.size() != shape.size()) {
    return false;
  }
  for (size_t i = 0; i < shape.size(); ++i) {
    bool digit = text[i] >= '0' && text[i] <= '9';
    if (shape[i] == 'd' ? !digit : text[i] != shape[i]) {
      return false;
    }
  }
  return parse_rfc3339(text).has_value();
}

bool ends_with(std::string_view text, std::string_view tail) {
  return text.size() >= tail.size() && text.substr(text.size() - tail.size()) == tail;
}

// Throws unless m lies where publish() puts it: object is <scope>/<key>/<stamp>.json with
// the scope and key of its own fields, and its archive is <scope>/<key>/<stamp>.tar.zst. So a
// manifest copied into another scope is refused, and no manifest can name a file outside the
// store or another save's archive (which gc would then remove with it).
void check_placement(const Manifest& m, const std::string& object) {
  check_key(object, "manifest object");
  std::string dir = scope_prefix(m.repository, m.target, m.name, m.epoch) + sanitise(m.key) + "/";
  if (object.rfind(dir, 0) != 0 || !ends_with(object, ".json") || object.size() <= dir.size() + 5 ||
      object.find('/', dir.size()) != std::string::npos) {
    throw StoreError(
        StoreErrorKind::permanent,
        fmt::format("its scope and key say it belongs in '{}', not here", util::printable(dir)));
  }
  std::string own = object.substr(0, object.size() - 5) + ".tar.zst";
  if (m.archive != own) {
    throw StoreError(StoreErrorKind::permanent,
                     fmt::format("its archive '{}' is not its own object '{}'",
                                 util::printable(m.archive.substr(0, 200)), util::printable(own)));
  }
}

class HashingFileSink : public Sink {
public:
  explicit HashingFileSink(const fs::path& path) : m_path(path) {
    m_fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (m_fd < 0) {
      throw util::Error(
          fmt::format("unable to create {}: {}", path.string(), std::strerror(errno)));
    }
  }
  ~HashingFileSink() override {
    if (m_fd >= 0) {
      ::close(m_fd);
    }
  }
  void write(const char* data, size_t size) override {
    m_hash.update(data, size);
    m_bytes += size;
    if (m_limit && m_bytes > *m_limit) {
      throw StoreError(
          StoreErrorKind::permanent,
          fmt::format("the store sent more than the {} bytes the manifest declares", *m_limit));
    }
    if (!util::write_all(m_fd, std::string_view(data, size))) {
      throw util::Error(
          fmt::format("unable to write {}: {}", m_path.string(), std::strerror(errno)));
    }
    if (m_progress) {
      m_progress(m_bytes);
    }
  }
  void limit(uint64_t bytes) { m_limit = bytes; }
  void on_progress(const TransferProgress& progress) { m_progress = progress; }
  std::string finish() {
    ::close(m_fd);
    m_fd = -1;
    return m_hash.finish_hex();
  }
  uint64_t bytes() const { return m_bytes; }

private:
  fs::path m_path;
  int m_fd = -1;
  util::Sha256 m_hash;
  uint64_t m_bytes = 0;
  TransferProgress m_progress;
  std::optional<uint64_t> m_limit; // every value is a limit, 0 included
};

} // namespace

json Manifest::to_json(bool with_signature) const {
  json j{{"format", format},
         {"repository", repository},
         {"target", target},
         {"name", name},
         {"epoch", epoch},
         {"key", key},
         {"archive", archive},
         {"compressed_size", compressed_size},
         {"sha256", sha256},
         {"unpacked_bytes", unpacked_bytes},
         {"files", files},
         {"created", created},
         {"job_id", job_id},
         {"commit", commit},
         {"branch", branch},
         {"event", event},
         {"trusted", trusted},
         {"rules", rules},
         {"tool_version", tool_version}};
  if (!origin.empty()) {
    j["origin"] = origin;
  }
  if (with_signature && !signature.empty()) {
    j["signature"] = signature;
  }
  return j;
}

Manifest Manifest::from_json(const json& j, const std::string& object) {
  if (!j.is_object()) {
    throw StoreError(StoreErrorKind::permanent, "a manifest must be a JSON object");
  }
  Manifest m;
  m.format = field<std::string>(j, "format");
  if (m.format != k_manifest_format) {
    throw StoreError(
        StoreErrorKind::permanent,
        fmt::format("unknown manifest format '{}'", util::printable(m.format.substr(0, 80))));
  }
  m.repository = field<std::string>(j, "repository");
  m.target = field<std::string>(j, "target");
  m.name = field<std::string>(j, "name");
  m.epoch = static_cast<int64_t>(count_field(j, "epoch", INT64_MAX));
  m.key = field<std::string>(j, "key");
  m.archive = field<std::string>(j, "archive");
  m.compressed_size = count_field(j, "compressed_size");
  m.sha256 = field<std::string>(j, "sha256");
  m.unpacked_bytes = count_field(j, "unpacked_bytes");
  m.files = count_field(j, "files");
  m.created = field<std::string>(j, "created");
  m.job_id = field<std::string>(j, "job_id");
  m.commit = field<std::string>(j, "commit");
  m.branch = field<std::string>(j, "branch");
  m.event = field<std::string>(j, "event");
  m.trusted = field<bool>(j, "trusted");
  m.rules = field<std::vector<std::string>>(j, "rules");
  m.tool_version = field<std::string>(j, "tool_version");
  if (j.contains("signature")) {
    m.signature = field<std::string>(j, "signature"); // optional, but a string when present
  }
  if (j.contains("origin")) {
    m.origin = field<std::string>(j, "origin"); // likewise
  }
  if (m.sha256.size() != 64 || !lower_hex(m.sha256) || !canonical_time(m.created)) {
    throw StoreError(StoreErrorKind::permanent, "manifest has a malformed sha256 or created time");
  }
  // Every archive holds at least the tar's end blocks: a size of 0 is a forgery, and would
  // leave nothing for a download to be held to.
  if (m.compressed_size == 0) {
    throw StoreError(StoreErrorKind::permanent, "manifest field 'compressed_size' is 0");
  }
  check_placement(m, object);
  m.object = object;
  return m;
}

bool Invalidation::covers(const Manifest& m) const {
  return m.repository == repository && (target.empty() || m.target == target) &&
         (name.empty() || m.name == name) &&
         (stored != 0 && m.stored != 0 && stored != m.stored ? m.stored < stored
                                                             : m.created < created);
}

Catalog::Catalog(std::unique_ptr<Backend> backend, std::optional<std::string> signing_key)
    : m_backend(std::move(backend)),
      m_signer(signing_key ? hmac_signer(std::move(*signing_key)) : nullptr) {}

Catalog::Catalog(std::unique_ptr<Backend> backend, std::shared_ptr<const Signer> signer)
    : m_backend(std::move(backend)), m_signer(std::move(signer)) {}

std::string manifest_payload(const Manifest& m) {
  return m.to_json(false).dump();
}

Catalog::~Catalog() = default;

bool Catalog::signature_ok(const Manifest& m) const {
  if (!m_signer) {
    return true;
  }
  return m_signer->verify(manifest_payload(m), m.signature);
}

namespace {

// A source that tells progress of the bytes read from it so far (since its last rewind).
class CountingSource : public Source {
public:
  CountingSource(Source& inner, const TransferProgress& progress)
      : m_inner(inner), m_progress(progress) {}
  uint64_t size() const override { return m_inner.size(); }
  size_t read(char* buf, size_t max) override {
    size_t n = m_inner.read(buf, max);
    m_read += n;
    if (m_progress) {
      m_progress(m_read);
    }
    return n;
  }
  void rewind() override {
    m_inner.rewind();
    m_read = 0;
  }

private:
  Source& m_inner;
  const TransferProgress& m_progress;
  uint64_t m_read = 0;
};

} // namespace

Manifest Catalog::publish(const Manifest& partial, const fs::path& archive_file,
                          const TransferProgress& progress) {
  Manifest m = partial;
  m.created = rfc3339_now();
  std::string base = scope_prefix(m.repository, m.target, m.name, m.epoch) + sanitise(m.key) + "/" +
                     stamp(m.created);
  m.archive = base + ".tar.zst";
  FileSource source(archive_file);
  if (source.size() != m.compressed_size) {
    throw util::Error(fmt::format("internal: archive is {} bytes, expected {}", source.size(),
                                  m.compressed_size));
  }
  CountingSource counted(source, progress);
  m_backend->put(m.archive, counted);
  if (m_signer) {
    m.signature = m_signer->sign(manifest_payload(m));
  }
  StringSource manifest(m.to_json().dump(2) + "\n");
  m.object = base + ".json";
  m_backend->put(m.object, manifest);
  return m;
}

std::vector<Manifest> Catalog::manifests_under(const std::string& prefix) {
  std::vector<Manifest> out;
  for (const auto& o : m_backend->list(prefix)) {
    if (o.key.size() < 5 || o.key.compare(o.key.size() - 5, 5, ".json") != 0 ||
        o.key.rfind("v1/_invalidations/", 0) == 0) {
      continue;
    }
    try {
      StringSink sink(k_max_small_object); // a manifest is a few KiB: a larger one is refused
      m_backend->get(o.key, sink);
      auto j = json::parse(sink.data(), nullptr, false);
      if (j.is_discarded()) {
        throw StoreError(StoreErrorKind::permanent, "not JSON");
      }
      auto m = Manifest::from_json(j, o.key);
      m.stored = o.mtime;
      out.push_back(std::move(m));
    } catch (const StoreError& e) {
      if (e.kind() != StoreErrorKind::permanent && e.kind() != StoreErrorKind::not_found) {
        throw;
      }
      if (e.kind() == StoreErrorKind::permanent) {
        util::log::warn("ignoring manifest {}: {}", util::printable(m_backend->url(o.key)),
                        e.what());
      }
    }
  }
  return out;
}

std::string marker_payload(const Invalidation& inv) {
  return json{{"format", k_invalidation_format},
              {"repository", inv.repository},
              {"target", inv.target},
              {"name", inv.name},
              {"reason", inv.reason},
              {"created", inv.created}}
      .dump();
}

namespace {

// A string field of a marker, "" when absent; nullopt when it is there but not a string.
std::optional<std::string> marker_field(const json& j, const char* key) {
  if (!j.contains(key)) {
    return std::string();
  }
  if (!j.at(key).is_string()) {
    return std::nullopt;
  }
  return j.at(key).get<std::string>();
}

} // namespace

std::vector<Invalidation> Catalog::invalidations(const std::string& repository) {
  std::vector<Invalidation> out;
  std::string prefix =
      repository.empty() ? "v1/_invalidations/" : "v1/_invalidations/" + sanitise(repository) + "/";
  for (const auto& o : m_backend->list(prefix)) {
    StringSink sink(k_max_small_object);
    try {
      m_backend->get(o.key, sink);
    } catch (const StoreError& e) {
      if (e.kind() == StoreErrorKind::not_found) {
        continue;
      }
      throw;
    }
    auto refuse = [&](std::string_view why) {
      util::log::warn("ignoring invalidation {}: {}", util::printable(m_backend->url(o.key)), why);
    };
    auto j = json::parse(sink.data(), nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      refuse("not JSON");
      continue;
    }
    auto repo = marker_field(j, "repository"), target = marker_field(j, "target"),
         name = marker_field(j, "name"), reason = marker_field(j, "reason"),
         created = marker_field(j, "created"), signature = marker_field(j, "signature");
    if (!repo || !target || !name || !reason || !created || !signature) {
      refuse("a field is not a string");
      continue;
    }
    Invalidation inv{*repo, *target, *name, *reason, *created, o.key, o.mtime};
    if (!marker_in_place(inv)) {
      refuse("its repository is not that of the folder it lies in, or its time is malformed");
      continue;
    }
    if (m_signer && !m_signer->verify(marker_payload(inv), *signature)) {
      refuse(signature->empty() ? "unsigned, and signing is on" : "bad signature");
      continue;
    }
    out.push_back(std::move(inv));
  }
  return out;
}

Invalidation Catalog::invalidate(const std::string& repository, const std::string& target,
                                 const std::string& name, const std::string& reason) {
  if (repository.empty()) {
    throw util::Error("an invalidation needs a repository");
  }
  Invalidation inv{repository, target, name, reason, rfc3339_now(), "", 0};
  inv.object = "v1/_invalidations/" + sanitise(repository) + "/" + stamp(inv.created) + ".json";
  json j{{"format", k_invalidation_format},
         {"repository", repository},
         {"target", target},
         {"name", name},
         {"reason", reason},
         {"created", inv.created}};
  if (m_signer) {
    if (auto sig = m_signer->sign(marker_payload(inv)); !sig.empty()) {
      j["signature"] = sig;
    }
  }
  StringSource source(j.dump(2) + "\n");
  m_backend->put(inv.object, source);
  return inv;
}

std::vector<LookupResult> Catalog::lookup(const LookupRequest& r) {
  std::vector<LookupResult> out;
  auto all = manifests_under(scope_prefix(r.repository, r.target, r.name, r.epoch));
  if (all.empty()) {
    return out;
  }
  auto invs = invalidations(r.repository);
  bool warned = false;
  auto eligible = [&](const Manifest& m) {
    if (!signature_ok(m)) {
      if (!warned) {
        util::log::warn("refusing manifest {}: {} signature",
                        util::printable(m_backend->url(m.object)),
                        m.signature.empty() ? "no" : "a bad");
        warned = true;
      }
      return false;
    }
    // The manifest's own (signed) scope, not only where it was found.
    if (m.repository != r.repository || m.target != r.target || m.name != r.name ||
        m.epoch != r.epoch) {
      return false;
    }
    // An untrusted save never reaches a trusted job, and reaches an untrusted one only of
    // its own origin: a fork chooses its branch name, but not its origin.
    if (!m.trusted && (r.trusted || m.origin.empty() || m.origin != r.origin)) {
      return false;
    }
    if (r.own_branch_only && m.branch != r.branch) {
      return false;
    }
    return std::none_of(invs.begin(), invs.end(), [&](const auto& inv) { return inv.covers(m); });
  };
  // Own branch first, then any branch; newest first within each.
  std::vector<const Manifest*> usable;
  for (const auto& m : all) {
    if (eligible(m)) {
      usable.push_back(&m);
    }
  }
  std::stable_sort(usable.begin(), usable.end(), [&](const Manifest* a, const Manifest* b) {
    bool a_own = a->branch == r.branch;
    bool b_own = b->branch == r.branch;
    return a_own != b_own ? a_own : a->later_than(*b);
  });
  std::set<std::string> taken;
  auto take = [&](const std::string& step, auto matches) {
    for (const Manifest* m : usable) {
      if (out.size() < r.max_candidates && matches(*m) && taken.insert(m->object).second) {
        out.push_back(LookupResult{*m, step, m->branch == r.branch});
      }
    }
  };
  take("exact", [&](const Manifest& m) { return m.key == r.key; });
  for (const auto& p : r.restore_keys) {
    take("prefix:" + p, [&](const Manifest& m) { return m.key.rfind(p, 0) == 0; });
  }
  return out;
}

void Catalog::download(const Manifest& m, const fs::path& dest, const TransferProgress& progress) {
  try {
    HashingFileSink sink(dest);
    sink.limit(m.compressed_size);
    sink.on_progress(progress);
    m_backend->get_sized(m.archive, m.compressed_size, sink);
    std::string digest = sink.finish();
    check_archive(m, sink.bytes(), digest);
  } catch (...) {
    std::error_code ec;
    fs::remove(dest, ec);
    throw;
  }
}

void Catalog::check_archive(const Manifest& m, uint64_t bytes, const std::string& digest) const {
  if (bytes != m.compressed_size) {
    throw StoreError(StoreErrorKind::permanent,
                     fmt::format("the archive {} is {} bytes, the manifest says {}",
                                 m_backend->url(m.archive), bytes, m.compressed_size));
  }
  if (digest != m.sha256) {
    throw StoreError(StoreErrorKind::permanent,
                     fmt::format("digest mismatch for {}: got {}, the manifest says {}",
                                 m_backend->url(m.archive), digest, m.sha256));
  }
}

int Catalog::open_verified(const Manifest& m) {
  int fd = m_backend->open_local(m.archive);
  if (fd < 0) {
    return -1;
  }
  util::Fd guard(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    throw StoreError(
        StoreErrorKind::permanent,
        fmt::format("unable to stat {}: {}", m_backend->url(m.archive), std::strerror(errno)));
  }
  // The size now, before a byte is read; the digest as the unpacker reads (it hashes
  // exactly the bytes it unpacks and commits nothing on a mismatch).
  check_archive(m, static_cast<uint64_t>(st.st_size), m.sha256);
  return guard.release();
}

std::string Catalog::link(const Manifest& m) const {
  return m_backend->url(m.archive);
}

std::optional<std::string> Catalog::presigned_link(const Manifest& m) const {
  return m_backend->presign(m.archive, std::chrono::hours(24));
}

std::vector<Manifest> Catalog::list(const std::string& repository, const std::string& target,
                                    const std::string& name) {
  std::string prefix = "v1/";
  if (!repository.empty()) {
    prefix += sanitise(repository) + "/";
    if (!target.empty()) {
      prefix += sanitise(target) + "/";
      if (!name.empty()) {
        prefix += sanitise(name) + "/";
      }
    }
  }
  auto all = manifests_under(prefix);
  std::vector<Manifest> out;
  for (auto& m : all) {
    if ((target.empty() || m.target == target) && (name.empty() || m.name == name) &&
        m.object.rfind("v1/_invalidations/", 0) != 0) {
      out.push_back(std::move(m));
    }
  }
  std::sort(out.begin(), out.end(), [](const Manifest& a, const Manifest& b) {
    auto scope = [](const Manifest& m) {
      return std::tie(m.repository, m.target, m.name, m.epoch, m.key);
    };
    return scope(a) != scope(b) ? scope(a) < scope(b) : b.later_than(a);
  });
  return out;
}

std::vector<Manifest> Catalog::valid_saves(const std::vector<Manifest>& all) const {
  std::vector<Manifest> out;
  for (const auto& m : all) {
    if (signature_ok(m)) {
      out.push_back(m);
    }
  }
  return out;
}

std::string Catalog::why_refused(const Manifest& m) const {
  if (signature_ok(m)) {
    return "";
  }
  return m.signature.empty() ? "unsigned, and signing is on" : "bad signature";
}

Visibility Catalog::visibility(const Manifest& m, const Selection& selection) const {
  if (auto why = why_refused(m); !why.empty()) {
    return {false, why};
  }
  auto verdict = selection.judge(m);
  if (verdict.standing != Standing::live) {
    return {false, verdict.why};
  }
  if (!m.trusted) {
    return {true, m.origin.empty()
                      ? std::string("untrusted, with no origin: never restored")
                      : fmt::format("untrusted: restored only into untrusted jobs of origin '{}'",
                                    util::printable(m.origin))};
  }
  return {true, ""};
}

Visibility Catalog::visibility(const Manifest& m, const std::vector<Manifest>& all,
                               const std::vector<Invalidation>& invs) const {
  auto valid = valid_saves(all);
  return visibility(m, Selection(valid, invs));
}

void Catalog::remove(const Manifest& m) {
  m_backend->remove(m.object);
  if (m.archive == own_archive(m.object)) {
    m_backend->remove(m.archive);
  }
}

std::vector<ObjectInfo> Catalog::orphans(const std::vector<Manifest>& all) {
  auto out = orphan_archives(m_backend->list("v1/"), all);
  auto left = m_backend->leftovers("v1/");
  out.insert(out.end(), left.begin(), left.end());
  return out;
}

double Catalog::store_now() {
  double local =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string key = fmt::format("v1/_clock/{:016x}", rng());
  try {
    StringSource probe("the store's clock\n");
    m_backend->put(key, probe);
    auto st = m_backend->stat(key);
    m_backend->remove(key);
    if (st && st->mtime > 0) {
      double skew = local - static_cast<double>(st->mtime);
      if (std::abs(skew) > 60) {
        util::log::warn("this machine's clock is {:.0f} s {} the store's; ages are the store's",
                        std::abs(skew), skew > 0 ? "ahead of" : "behind");
      }
      return static_cast<double>(st->mtime);
    }
  } catch (const StoreError& e) {
    util::log::warn("unable to read the store's clock ({}); ages are this machine's", e.what());
  }
  return local;
}

} // namespace ephemera::store
