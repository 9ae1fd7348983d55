#include "session/export.hpp"

#include "archive/archive.hpp"
#include "cas/cas.hpp"
#include "session/cas_transfer.hpp"
#include "session/progress.hpp"
#include "store/catalog.hpp"
#include "store/short_id.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/log.hpp"
#include "util/sha256.hpp"
#include "util/temp_name.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <optional>
#include <unistd.h>

namespace ephemera::session {

namespace fs = std::filesystem;

namespace {

// Where the export goes: stdout, or a temporary name beside the file asked for, renamed over
// it by commit() and removed by the destructor before that, so the file asked for is the
// whole verified export or what it was before.
class Output {
public:
  explicit Output(const std::string& out) {
    if (out == "-") {
      m_fd = STDOUT_FILENO;
      return;
    }
    m_target = out;
    m_temp = util::temp_name_beside(m_target);
    m_fd = ::open(m_temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0666);
    if (m_fd < 0) {
      throw util::Error(
          fmt::format("unable to create {}: {}", m_temp.string(), std::strerror(errno)));
    }
  }
  ~Output() {
    if (!m_target.empty() && !m_committed) {
      if (m_fd >= 0) {
        ::close(m_fd);
      }
      ::unlink(m_temp.c_str());
    }
  }
  Output(const Output&) = delete;
  Output& operator=(const Output&) = delete;

  int fd() const { return m_fd; }
  bool is_stdout() const { return m_target.empty(); }

  void commit() {
    if (is_stdout()) {
      return;
    }
    int fd = m_fd;
    m_fd = -1;
    if (::fsync(fd) != 0 || ::close(fd) != 0) {
      throw util::Error(
          fmt::format("unable to write {}: {}", m_temp.string(), std::strerror(errno)));
    }
    if (::rename(m_temp.c_str(), m_target.c_str()) != 0) {
      throw util::Error(fmt::format("unable to move the export to {}: {}", m_target.string(),
                                    std::strerror(errno)));
    }
    m_committed = true;
    fs::path dir = m_target.parent_path();
    util::fsync_directory(dir.empty() ? fs::path(".") : dir);
  }

private:
  fs::path m_target; // empty: stdout
  fs::path m_temp;
  int m_fd = -1;
  bool m_committed = false;
};

// Receives a single archive's bytes: hashed, counted, bounded by the manifest's size, written
// to fd.
class HashingSink : public store::Sink {
public:
  HashingSink(int fd, uint64_t size, std::function<void(uint64_t)> progress)
      : m_fd(fd), m_size(size), m_progress(std::move(progress)) {}
  void write(const char* data, size_t size) override {
    if (size > m_size - m_bytes) {
      throw util::StoreError(
          util::StoreErrorKind::permanent,
          fmt::format("the store sent more than the {} bytes the manifest declares", m_size));
    }
    m_hash.update(data, size);
    m_bytes += size;
    if (!util::write_all(m_fd, std::string_view(data, size))) {
      throw util::Error(fmt::format("unable to write the export: {}", std::strerror(errno)));
    }
    m_progress(m_bytes);
  }
  uint64_t max_bytes() const override { return m_size; }
  std::optional<uint64_t> expected_size() const override { return m_size; }
  uint64_t bytes() const { return m_bytes; }
  std::string digest() { return m_hash.finish_hex(); }

private:
  int m_fd;
  uint64_t m_size;
  std::function<void(uint64_t)> m_progress;
  util::Sha256 m_hash;
  uint64_t m_bytes = 0;
};

// The single archive's bytes into fd, every one of them hashed on the way: read where they lie
// on a local store, downloaded otherwise. Throws StoreError(permanent) unless they are the
// manifest's size and SHA-256.
void copy_archive(store::Catalog& catalog, const store::Manifest& m, int fd,
                  const std::string& what) {
  ProgressLine progress(what, m.compressed_size);
  HashingSink sink(fd, m.compressed_size, progress.bytes_fn());
  int local = catalog.open_verified(m);
  if (local >= 0) {
    util::Fd guard(local);
    std::string buf(1 << 20, '\0');
    while (true) {
      ssize_t n = util::read_full(local, buf.data(), buf.size());
      if (n < 0) {
        throw util::Error(
            fmt::format("unable to read {}: {}", catalog.link(m), std::strerror(errno)));
      }
      if (n == 0) {
        break;
      }
      sink.write(buf.data(), static_cast<size_t>(n));
    }
  } else {
    catalog.backend().get(m.archive, sink);
  }
  progress.finish();
  std::string digest = sink.digest();
  if (sink.bytes() != m.compressed_size) {
    throw util::StoreError(util::StoreErrorKind::permanent,
                           fmt::format("the archive is {} bytes, the manifest says {}",
                                       sink.bytes(), m.compressed_size));
  }
  if (digest != m.sha256) {
    throw util::StoreError(
        util::StoreErrorKind::permanent,
        fmt::format("digest mismatch: got {}, the manifest says {}", digest, m.sha256));
  }
}

// A single archive on stdout: verified whole in a temporary directory first, then copied.
void archive_to_stdout(store::Catalog& catalog, const store::Manifest& m, const std::string& what) {
  util::TempDir tmp(fs::temp_directory_path(), "export");
  fs::path file = tmp.path() / "archive.tar.zst";
  {
    Output staged(file.string());
    copy_archive(catalog, m, staged.fd(), what);
    staged.commit();
  }
  util::Fd in(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (in.fd < 0) {
    throw util::Error(fmt::format("unable to read {}: {}", file.string(), std::strerror(errno)));
  }
  std::string buf(1 << 20, '\0');
  ssize_t n = 0;
  while ((n = util::read_full(in.fd, buf.data(), buf.size())) > 0) {
    if (!util::write_all(STDOUT_FILENO, std::string_view(buf.data(), static_cast<size_t>(n)))) {
      throw util::Error(fmt::format("unable to write to stdout: {}", std::strerror(errno)));
    }
  }
  if (n < 0) {
    throw util::Error(fmt::format("unable to read {}: {}", file.string(), std::strerror(errno)));
  }
}

ExportResult export_cas(store::Catalog& catalog, const store::Manifest& m, Output& out,
                        const std::string& what) {
  cas::Scope scope = save_scope(m);
  cas::Index index =
      cas::load_index(catalog.backend(), scope, m.archive, m.sha256, m.compressed_size);
  ProgressLine progress(what, m.unpacked_bytes);
  archive::TarWriter tar(out.fd(), 3);
  auto r = cas::export_tar(catalog.backend(), scope, index, m.unpacked_bytes, tar, progress.fn());
  ExportResult e;
  e.written = tar.finish();
  progress.finish();
  e.content_addressed = true;
  e.files = r.files;
  e.bytes = r.bytes;
  e.fetched = r.fetched_bytes + m.compressed_size;
  return e;
}

} // namespace

ExportResult export_save(store::Catalog& catalog, const store::Manifest& m,
                         const std::string& out) {
  auto start = std::chrono::steady_clock::now();
  std::string id = store::short_id(m);
  bool streamed = out == "-" && m.content == store::k_content_cas;
  try {
    if (auto why = catalog.why_refused(m); !why.empty()) {
      throw util::Error(fmt::format("its manifest is refused: {}", why));
    }
    std::string what = fmt::format("exporting save {}", id);
    ExportResult r;
    if (m.content == store::k_content_cas) {
      Output o(out);
      r = export_cas(catalog, m, o, what);
      o.commit();
    } else if (out == "-") {
      archive_to_stdout(catalog, m, what);
      r.written = m.compressed_size;
    } else {
      Output o(out);
      copy_archive(catalog, m, o.fd(), what);
      o.commit();
      r.written = m.compressed_size;
    }
    if (!r.content_addressed) {
      r.files = m.files;
      r.bytes = m.unpacked_bytes;
      r.fetched = m.compressed_size;
    }
    r.seconds = seconds_since(start);
    return r;
  } catch (const std::exception& e) {
    throw util::Error(fmt::format(
        "unable to export save {} ({}){}: {}", id, util::printable(catalog.link(m)),
        streamed ? "; what stdout received, if anything, is incomplete" : "", e.what()));
  }
}

} // namespace ephemera::session
