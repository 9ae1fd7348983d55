// The catalog: manifests and invalidation markers written, read, verified and chosen over the
// backend's primitives, and the transfer of archives. The object keys are keys.cpp's, the
// manifest's and marker's JSON manifest.cpp's, the choice among saves selection.cpp's.

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

namespace {

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
  // The size the object must be: the backend is told (expected_size), and more is refused.
  void limit(uint64_t bytes) { m_limit = bytes; }
  std::optional<uint64_t> expected_size() const override { return m_limit; }
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

Catalog::Catalog(std::unique_ptr<Backend> backend, std::optional<std::string> signing_key)
    : m_backend(std::move(backend)),
      m_signer(signing_key ? hmac_signer(std::move(*signing_key)) : nullptr) {}

Catalog::Catalog(std::unique_ptr<Backend> backend, std::shared_ptr<const Signer> signer)
    : m_backend(std::move(backend)), m_signer(std::move(signer)) {}

Catalog::~Catalog() = default;

bool Catalog::signature_ok(const Manifest& m) const {
  if (!m_signer) {
    return true;
  }
  return m_signer->verify(manifest_payload(m), m.signature);
}

namespace {

// What a survey lists: the repository's folder, or, for a token that may list only its own
// target's (a broker's job token), that folder, so that a miss through a broker still says
// what the scope holds and which epochs lie beside it; other targets then go unsaid.
std::vector<ObjectInfo> survey_listing(Backend& backend, const LookupRequest& r) {
  try {
    return backend.list(saves_prefix(r.repository));
  } catch (const util::StoreError& e) {
    if (e.kind() != util::StoreErrorKind::unauthorized) {
      throw;
    }
    return backend.list(layout_root() + sanitise(r.repository) + "/" + sanitise(r.target) + "/");
  }
}

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
  const Scope scope{m.repository, m.target, m.name, m.epoch};
  const std::string stamp = new_stamp(m.created);
  m.archive = archive_key(scope, m.key, stamp);
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
  m.object = manifest_key(scope, m.key, stamp);
  m_backend->put(m.object, manifest);
  return m;
}

Manifest Catalog::publish_index(const Manifest& partial) {
  Manifest m = partial;
  std::string scope_id = cas_scope_id(m.repository, m.target, m.name, m.trusted, m.origin);
  if (m.content != k_content_cas || m.archive != cas_index_key(scope_id, m.sha256)) {
    throw util::Error("internal: a content-addressed manifest must name its scope's index");
  }
  m.created = rfc3339_now();
  const Scope scope{m.repository, m.target, m.name, m.epoch};
  if (m_signer) {
    m.signature = m_signer->sign(manifest_payload(m));
  }
  StringSource manifest(m.to_json().dump(2) + "\n");
  m.object = manifest_key(scope, m.key, new_stamp(m.created));
  m_backend->put(m.object, manifest);
  return m;
}

std::vector<Manifest> Catalog::read_manifests(const std::vector<ObjectInfo>& listing) {
  std::vector<Manifest> out;
  for (const auto& o : listing) {
    if (parse_key(o.key).kind != KeyKind::manifest) {
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

std::vector<Invalidation> Catalog::invalidations(const std::string& repository) {
  std::vector<Invalidation> out;
  for (const auto& o : m_backend->list(markers_prefix(repository))) {
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
    std::string why;
    auto read =
        Invalidation::from_json(json::parse(sink.data(), nullptr, false), o.key, o.mtime, why);
    if (!read) {
      refuse(why);
      continue;
    }
    auto& [inv, signature] = *read;
    if (m_signer && !m_signer->verify(marker_payload(inv), signature)) {
      refuse(signature.empty() ? "unsigned, and signing is on" : "bad signature");
      continue;
    }
    out.push_back(std::move(inv));
  }
  return out;
}

Invalidation Catalog::invalidate(const std::string& repository, const std::string& target,
                                 const std::string& name, const std::string& reason,
                                 const std::string& key, const std::string& branch) {
  if (repository.empty()) {
    throw util::Error("an invalidation needs a repository");
  }
  Invalidation inv{repository, target, name, reason, rfc3339_now(), "", 0, key, branch};
  inv.object = marker_key(repository, new_stamp(inv.created));
  // A signer with only a public key signs nothing (""): the broker signs what passes it.
  std::string signature = m_signer ? m_signer->sign(marker_payload(inv)) : std::string();
  StringSource source(inv.to_json(signature).dump(2) + "\n");
  m_backend->put(inv.object, source);
  return inv;
}

LookupResult Catalog::lookup(const LookupRequest& r) {
  const Scope scope{r.repository, r.target, r.name, r.epoch};
  const std::string folder = scope_prefix(scope);
  // One listing either way: with a survey, the repository's folder, which holds the scope's.
  auto listing = r.survey ? survey_listing(*m_backend, r) : m_backend->list(folder);
  std::vector<ObjectInfo> in_scope;
  for (const auto& o : listing) {
    if (o.key.rfind(folder, 0) == 0) {
      in_scope.push_back(o);
    }
  }
  auto all = read_manifests(in_scope);
  std::vector<Manifest> valid;
  std::vector<PassedOverSave> refused;
  for (auto& m : all) {
    if (signature_ok(m)) {
      valid.push_back(std::move(m));
      continue;
    }
    if (refused.empty()) {
      util::log::warn("refusing manifest {}: {} signature",
                      util::printable(m_backend->url(m.object)),
                      m.signature.empty() ? "no" : "a bad");
    }
    refused.push_back(
        PassedOverSave{PassedOver::refused, m.object, scope, m.key, m, why_refused(m)});
  }
  LookupResult out;
  if (!valid.empty()) {
    out = choose(r, valid, invalidations(r.repository));
  }
  out.scope = folder;
  for (const auto& o : in_scope) {
    if (parse_key(o.key).kind == KeyKind::use_marker) {
      out.use_markers.push_back(o.key);
    }
  }
  out.passed_over.insert(out.passed_over.end(), refused.begin(), refused.end());
  if (r.survey) {
    auto elsewhere = survey(r, listing);
    out.passed_over.insert(out.passed_over.end(), elsewhere.begin(), elsewhere.end());
  }
  std::stable_sort(out.passed_over.begin(), out.passed_over.end(),
                   [](const auto& a, const auto& b) { return a.object < b.object; });
  return out;
}

void Catalog::mark_used(const Manifest& m, bool trusted, const std::vector<std::string>& listed) {
  double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::string key = use_marker_key(m.object, utc_day(now), trusted);
  if (key.empty() || std::find(listed.begin(), listed.end(), key) != listed.end()) {
    return;
  }
  try {
    StringSource empty("");
    m_backend->put(key, empty);
  } catch (const std::exception& e) {
    util::log::warn("unable to record the use of {} (gc then ages it by its last recorded "
                    "use): {}",
                    util::printable(m_backend->url(m.object)), util::printable(e.what()));
  }
}

void Catalog::download(const Manifest& m, const fs::path& dest, const TransferProgress& progress) {
  try {
    HashingFileSink sink(dest);
    sink.limit(m.compressed_size);
    sink.on_progress(progress);
    m_backend->get(m.archive, sink);
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
  const Presigner* p = m_backend->presigner();
  if (p == nullptr || m.content == k_content_cas) {
    return std::nullopt;
  }
  return p->presign(m.archive, std::chrono::hours(24));
}

std::vector<Manifest> Catalog::stanza_saves(const std::string& repository,
                                            const std::string& target, const std::string& name) {
  return read_manifests(m_backend->list(stanza_prefix(repository, target, name)));
}

std::vector<Manifest> Catalog::list(const std::string& repository, const std::string& target,
                                    const std::string& name) {
  auto all = read_manifests(m_backend->list(saves_prefix(repository, target, name)));
  std::vector<Manifest> out;
  for (auto& m : all) {
    if ((target.empty() || m.target == target) && (name.empty() || m.name == name)) {
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

double Catalog::store_now() {
  double local =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string key = clock_probe_key(rng());
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
