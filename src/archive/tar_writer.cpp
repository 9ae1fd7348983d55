// The archive pack() writes, made from entries that come one at a time with their content in
// pieces (an export of a content-addressed save) instead of from files on the host.
#include "archive/archive.hpp"
#include "archive/unpack_checks.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/log.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <thread>
#include <unordered_set>

namespace ephemera::archive {

using util::ArchiveError;

namespace {

struct Output {
  int fd = -1;
  uint64_t bytes = 0;
  int error = 0;
};

// As pack.cpp's: a failed write is recorded, not returned (libarchive 3.6 leaks its block
// buffer when an archive that saw a failed write is freed); later bytes are dropped.
la_ssize_t write_cb(struct archive* /*a*/, void* data, const void* buf, size_t size) {
  auto* out = static_cast<Output*>(data);
  if (out->error == 0) {
    if (util::write_all(out->fd, std::string_view(static_cast<const char*>(buf), size))) {
      out->bytes += size;
    } else {
      out->error = errno;
    }
  }
  return static_cast<la_ssize_t>(size);
}

struct ArchiveDeleter {
  void operator()(struct archive* a) const { archive_write_free(a); }
};
struct EntryDeleter {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

// Every name is admitted as itself: an export has no stanza to confine it to, only the
// shape an archive's entries must have.
std::optional<Destination> as_named(std::string_view name, EntryType /*type*/) {
  return Destination{"/", std::string(name)};
}

} // namespace

struct TarWriter::Impl {
  Impl(int fd, int level) : checks(resolve) {
    out.fd = fd;
    a.reset(archive_write_new());
    archive_write_set_format_pax(a.get());
    archive_write_add_filter_zstd(a.get());
    archive_write_set_bytes_per_block(a.get(), 64 * 1024);
    archive_write_set_bytes_in_last_block(a.get(), 1);
    check(archive_write_set_filter_option(a.get(), "zstd", "compression-level",
                                          std::to_string(level).c_str()));
    int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    archive_write_set_filter_option(a.get(), "zstd", "threads", std::to_string(threads).c_str());
    check(archive_write_open(a.get(), &out, nullptr, write_cb, nullptr));
  }

  void check(int r) {
    if (out.error != 0) {
      throw ArchiveError(fmt::format("unable to write the archive: {}", std::strerror(out.error)));
    }
    if (r < ARCHIVE_WARN) {
      throw ArchiveError(
          fmt::format("unable to write the archive: {}", archive_error_string(a.get())));
    }
  }

  void add(const StreamEntry& s, const NextPiece& next) {
    detail::Header h;
    h.name = s.name;
    h.type = s.type;
    h.perm = s.mode & 07777;
    // Floor division: a time before 1970 is whole seconds before it plus a positive part.
    h.sec = s.mtime_ns / 1000000000 - (s.mtime_ns % 1000000000 < 0 ? 1 : 0);
    h.nsec = static_cast<long>(s.mtime_ns - h.sec * 1000000000);
    std::string linked(s.hardlink); // NUL-terminated, as a tar header's
    if (!linked.empty()) {
      h.hardlink = linked.c_str();
    }
    detail::Accepted ok = checks.check(h);
    if (!linked.empty() && (s.type != EntryType::file || s.size != 0 || files.count(linked) == 0)) {
      detail::refuse(ok.name, fmt::format("a hard link to '{}', which is not an earlier file",
                                          util::printable(linked)));
    }
    const uint64_t size = s.type == EntryType::file ? s.size : 0;
    if (size > static_cast<uint64_t>(INT64_MAX)) {
      detail::refuse(ok.name, "its size is out of range");
    }
    std::unique_ptr<archive_entry, EntryDeleter> e(archive_entry_new());
    archive_entry_copy_pathname(e.get(), ok.name.c_str());
    archive_entry_set_perm(e.get(), s.type == EntryType::symlink ? 0777 : ok.mode & 01777);
    archive_entry_set_mtime(e.get(), ok.sec, ok.nsec);
    archive_entry_set_uid(e.get(), 0);
    archive_entry_set_gid(e.get(), 0);
    archive_entry_set_filetype(e.get(), s.type == EntryType::file        ? AE_IFREG
                                        : s.type == EntryType::directory ? AE_IFDIR
                                                                         : AE_IFLNK);
    if (s.type == EntryType::symlink) {
      archive_entry_copy_symlink(e.get(), std::string(s.link_target).c_str());
    }
    if (!linked.empty()) {
      archive_entry_copy_hardlink(e.get(), linked.c_str());
    }
    archive_entry_set_size(e.get(), static_cast<la_int64_t>(size));
    check(archive_write_header(a.get(), e.get()));
    uint64_t at = 0;
    while (at < size) {
      std::string_view p = next();
      if (p.empty()) {
        detail::refuse(ok.name, fmt::format("its content ends after {} of the {} bytes its "
                                            "entry declares",
                                            at, size));
      }
      if (p.size() > size - at) {
        detail::refuse(ok.name, "more bytes than its entry declares");
      }
      if (archive_write_data(a.get(), p.data(), p.size()) != static_cast<la_ssize_t>(p.size())) {
        check(ARCHIVE_FATAL);
      }
      check(ARCHIVE_OK);
      at += p.size();
    }
    if (s.type == EntryType::file && !next().empty()) {
      detail::refuse(ok.name, "more bytes than its entry declares");
    }
    if (s.type == EntryType::file && linked.empty()) {
      files.insert(ok.name);
    }
  }

  Resolve resolve = as_named;
  detail::EntryChecks checks;
  std::unordered_set<std::string> files; // names of the files written so far
  Output out;
  // Last: freed first, while the output its callback writes to is still there.
  std::unique_ptr<struct archive, ArchiveDeleter> a;
  bool done = false;
};

TarWriter::TarWriter(int fd, int level) : m_impl(std::make_unique<Impl>(fd, level)) {}

TarWriter::~TarWriter() = default;

void TarWriter::add(const StreamEntry& e, const NextPiece& next) {
  if (m_impl->done) {
    throw ArchiveError("an entry after the end of the archive");
  }
  m_impl->add(e, next);
}

uint64_t TarWriter::finish() {
  if (m_impl->done) {
    throw ArchiveError("the archive was ended twice");
  }
  m_impl->done = true;
  m_impl->check(archive_write_close(m_impl->a.get()));
  return m_impl->out.bytes;
}

} // namespace ephemera::archive
