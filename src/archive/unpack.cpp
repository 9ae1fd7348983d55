#include "archive/archive.hpp"
#include "archive/unpack_checks.hpp"
#include "archive/unpack_staging.hpp"
#include "archive/unpack_writer.hpp"
#include "util/budget.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/sha256.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <sys/stat.h>
#include <unistd.h>
#include <unordered_map>
#include <vector>

// The unpacker's reading side: the archive read once and hashed as it is decompressed,
// each entry checked (unpack_checks), made out of sight (unpack_staging) and its data
// written by a second thread (unpack_writer); the commit only once the bytes were the
// manifest's.
namespace ephemera::archive {

namespace fs = std::filesystem;
using util::ArchiveError;
using namespace detail;

namespace {

struct ReadDeleter {
  void operator()(struct archive* a) const { archive_read_free(a); }
};

// The compressed archive as libarchive reads it: exactly expected bytes from offset 0,
// hashed as they are handed over, so the digest checked before the commit is the digest of
// what was unpacked (the file may be rewritten in place meanwhile by whoever can write it).
class Input {
public:
  Input(int fd, const UnpackOptions& options)
      : m_fd(fd), m_expected(options.expected_size), m_buf(k_read_block) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      throw ArchiveError(fmt::format("unable to examine the archive: {}", std::strerror(errno)));
    }
    if (!S_ISREG(st.st_mode)) {
      throw ArchiveError("the archive is not a regular file; nothing was read");
    }
    if (static_cast<uint64_t>(st.st_size) != m_expected) {
      throw ArchiveError(
          fmt::format("the archive is {} bytes, the manifest says {}; nothing was read", st.st_size,
                      m_expected));
    }
  }

  static la_ssize_t read_cb(struct archive* a, void* data, const void** out) {
    auto* in = static_cast<Input*>(data);
    ssize_t n = in->next();
    if (n < 0) {
      archive_set_error(a, errno, "unable to read the archive: %s", std::strerror(errno));
      return -1;
    }
    *out = in->m_buf.data();
    return n;
  }

  // Hashes what libarchive left unread (the end of the last zstd frame, anything after the
  // tar's end), then checks the size and digest. Throws ArchiveError on a mismatch.
  void verify(const std::string& expected_sha256) {
    while (true) {
      ssize_t n = next();
      if (n < 0) {
        throw ArchiveError(fmt::format("unable to read the archive: {}", std::strerror(errno)));
      }
      if (n == 0) {
        break;
      }
    }
    char extra = 0;
    ssize_t more = ::pread(m_fd, &extra, 1, static_cast<off_t>(m_offset));
    if (m_offset != m_expected || more != 0) {
      throw ArchiveError(
          fmt::format("the archive changed while it was read (it is no longer {} bytes); "
                      "nothing was written",
                      m_expected));
    }
    std::string digest = m_hash.finish_hex();
    if (digest != expected_sha256) {
      throw ArchiveError(
          fmt::format("digest mismatch: the archive's SHA-256 is {}, the manifest says {}; "
                      "nothing was written",
                      digest, expected_sha256));
    }
  }

private:
  static constexpr size_t k_read_block = 1 << 20;

  // The next block into m_buf, hashed: its size, 0 at the expected end (or at a shorter
  // file's end), -1 with errno.
  ssize_t next() {
    uint64_t left = m_expected - m_offset;
    if (left == 0) {
      return 0;
    }
    ssize_t n = util::read_full(m_fd, m_buf.data(), std::min<uint64_t>(left, m_buf.size()),
                                static_cast<off_t>(m_offset));
    if (n > 0) {
      m_hash.update(m_buf.data(), static_cast<size_t>(n));
      m_offset += static_cast<uint64_t>(n);
    }
    return n; // 0 before the expected end: the file shrank, and verify() says so
  }

  int m_fd;
  uint64_t m_expected;
  uint64_t m_offset = 0;
  std::vector<char> m_buf;
  util::Sha256 m_hash;
};

// The current entry's data blocks as libarchive gives them: sink(data, size, offset).
auto tar_blocks(struct archive* a) {
  return [a](const std::string& name, auto&& sink) {
    const void* buf = nullptr;
    size_t n = 0;
    la_int64_t offset = 0;
    while (true) {
      int r = archive_read_data_block(a, &buf, &n, &offset);
      if (r == ARCHIVE_EOF) {
        return;
      }
      if (r < ARCHIVE_WARN) {
        throw ArchiveError(
            fmt::format("corrupt archive in '{}': {}", name, archive_error_string(a)));
      }
      sink(static_cast<const char*>(buf), n, offset);
    }
  };
}

// Unpacks one archive: reads and checks each entry, stages it, and commits at the end of a
// stream whose size and digest are the manifest's (Staging says how it is all-or-nothing).
class Unpacker {
public:
  explicit Unpacker(const UnpackOptions& options)
      : m_options(options), m_checks(options.resolve), m_writers(current_umask()),
        m_staging(options.journal) {}

  // The writer stops first: then the staging (destroyed before it) rolls back what it made.
  ~Unpacker() { m_writers.stop(); }

  // Unpacks the archive in fd (Input checked it is a regular file of the expected size),
  // then verifies its size and digest and only then commits.
  void run(int fd, UnpackResult& result) {
    Input input(fd, m_options);
    std::unique_ptr<struct archive, ReadDeleter> a(archive_read_new());
    archive_read_support_filter_zstd(a.get());
    archive_read_support_format_tar(a.get());
    try {
      if (archive_read_open2(a.get(), &input, nullptr, Input::read_cb, nullptr, nullptr) !=
          ARCHIVE_OK) {
        throw ArchiveError(fmt::format("not a tar.zst archive: {}", archive_error_string(a.get())));
      }
      archive_entry* e = nullptr;
      while (true) {
        int r = archive_read_next_header(a.get(), &e);
        if (r == ARCHIVE_EOF) {
          break;
        }
        if (r < ARCHIVE_WARN) {
          throw ArchiveError(fmt::format("corrupt archive after {} entries: {}",
                                         result.files + result.directories + result.symlinks,
                                         archive_error_string(a.get())));
        }
        entry(header_of(e), archive_entry_size(e), archive_entry_symlink(e), tar_blocks(a.get()),
              result);
      }
      m_writers.drain();
    } catch (const ArchiveError&) {
      // Bytes other than the manifest's are the cause worth naming, whatever they broke.
      m_writers.stop();
      input.verify(m_options.expected_sha256);
      throw;
    }
    m_writers.stop();
    input.verify(m_options.expected_sha256);
    m_staging.commit();
  }

  // A verified entry from a producer (EntryUnpack): admitted by the same checks, staged the
  // same way; its content pulled from next until it gave its size.
  void add(const StreamEntry& s, const NextPiece& next, UnpackResult& result) {
    Header h;
    h.name = s.name;
    h.type = s.type;
    h.perm = s.mode & 07777;
    // Floor division: a time before 1970 is whole seconds before it plus a positive part.
    h.sec = s.mtime_ns / 1000000000 - (s.mtime_ns % 1000000000 < 0 ? 1 : 0);
    h.nsec = static_cast<long>(s.mtime_ns - h.sec * 1000000000);
    std::string to(s.link_target);
    std::string linked(s.hardlink); // NUL-terminated, as a tar header's
    if (!linked.empty()) {
      if (s.type != EntryType::file || s.size != 0) {
        refuse(s.name, "a hard link with content of its own");
      }
      h.hardlink = linked.c_str();
    }
    const uint64_t size = s.type == EntryType::file ? s.size : 0;
    auto pieces = [&next, &s, size](const std::string&, auto&& sink) {
      uint64_t at = 0;
      while (at < size) {
        std::string_view p = next();
        if (p.empty()) {
          refuse(s.name, fmt::format("its content ends after {} of the {} bytes its entry "
                                     "declares",
                                     at, size));
        }
        if (p.size() > size - at) {
          refuse(s.name, "more bytes than its entry declares");
        }
        sink(p.data(), p.size(), static_cast<la_int64_t>(at));
        at += p.size();
      }
      if (!next().empty()) {
        refuse(s.name, "more bytes than its entry declares");
      }
    };
    if (size > static_cast<uint64_t>(INT64_MAX)) {
      refuse(s.name, "its size is out of range");
    }
    entry(h, static_cast<int64_t>(size), s.type == EntryType::symlink ? to.c_str() : nullptr,
          pieces, result);
  }

  // After the last add: everything written, then moved into place.
  void commit_streamed() {
    m_writers.drain();
    m_writers.stop();
    m_staging.commit();
  }

private:
  static mode_t current_umask() {
    mode_t m = ::umask(022);
    ::umask(m);
    return m;
  }

  void tell(const Written& w) const {
    if (m_options.written) {
      m_options.written(w);
    }
  }

  // One entry, whoever produced it: checked, staged, its data (blocks(name, sink)) written.
  template <typename Blocks>
  void entry(const Header& h, int64_t declared, const char* link_to, Blocks&& blocks,
             UnpackResult& result) {
    Accepted in = m_checks.check(h);
    const std::string& name = in.name;
    const int64_t mtime_ns = in.sec * 1000000000 + in.nsec;
    if (in.type == EntryType::directory) {
      m_staging.directory_entry(name, in.base, in.rel, in.mode, in.sec, in.nsec);
      tell({name, in.type, 0, in.mode & 01777, mtime_ns, {}, {}});
      ++result.directories;
      return;
    }
    size_t slash = in.rel.rfind('/');
    const Dir& parent = m_staging.directory(
        name, in.base, slash == std::string::npos ? "" : in.rel.substr(0, slash));
    std::string leaf = slash == std::string::npos ? in.rel : in.rel.substr(slash + 1);
    FdRef dirfd = m_staging.open_dir(parent, name);
    std::string target = m_staging.place(name, in.final, parent, dirfd, leaf);
    if (in.hardlink != nullptr) {
      auto it = m_files.find(in.hardlink);
      if (it == m_files.end()) {
        refuse(name, fmt::format("a hard link to '{}', which is not an earlier file of the archive",
                                 in.hardlink));
      }
      m_writers.drain(); // the file it names is written
      FdRef from = m_staging.open_dir(*it->second.first, name);
      if (::linkat(from->fd, it->second.second.c_str(), dirfd->fd, target.c_str(), 0) != 0) {
        refuse(name, fmt::format("unable to link: {}", std::strerror(errno)));
      }
      tell({name, in.type, 0, 0, 0, {}, in.hardlink});
      ++result.files;
      return;
    }
    if (in.type == EntryType::symlink) {
      const char* to = link_to;
      if (to == nullptr || ::symlinkat(to, dirfd->fd, target.c_str()) != 0) {
        refuse(name, fmt::format("unable to create the link: {}", std::strerror(errno)));
      }
      struct timespec times[2] = {{in.sec, in.nsec}, {in.sec, in.nsec}};
      ::utimensat(dirfd->fd, target.c_str(), times, AT_SYMLINK_NOFOLLOW);
      tell({name, in.type, 0, 0777, mtime_ns, to, {}});
      ++result.symlinks;
      return;
    }
    file(blocks, declared, name, dirfd, target, in.mode, in.sec, in.nsec);
    tell({name, in.type, static_cast<uint64_t>(declared), in.mode & 01777, mtime_ns, {}, {}});
    m_files.emplace(name, std::make_pair(&parent, target));
    ++result.files;
    result.bytes = m_bytes;
    report_progress(result.files);
  }

  template <typename Blocks>
  void file(Blocks& blocks, int64_t declared, const std::string& name, const FdRef& dirfd,
            const std::string& target, uint32_t mode, int64_t sec, long nsec) {
    if (declared < 0 || m_bytes + static_cast<uint64_t>(declared) > m_options.max_unpacked_bytes) {
      refuse(name,
             fmt::format("the archive unpacks to more than the {} bytes its manifest declares",
                         m_options.max_unpacked_bytes));
    }
    const auto size = static_cast<uint64_t>(declared);
    auto read_blocks = [&](auto&& sink) {
      blocks(name, [&](const char* p, size_t n, la_int64_t offset) {
        if (offset < 0 || static_cast<uint64_t>(offset) + n > size) {
          refuse(name, "more bytes than the manifest declares");
        }
        sink(p, n, offset);
      });
    };
    if (size <= k_queued_file_max) {
      // Blocks come in order; only the gaps of a sparse entry need zeros.
      Job job;
      job.dir = dirfd;
      job.leaf = target;
      job.entry = name;
      job.data = m_writers.reserve(size, job.span);
      job.size = size;
      job.mode = mode;
      job.sec = sec;
      job.nsec = nsec;
      uint64_t filled = 0;
      read_blocks([&](const char* p, size_t n, la_int64_t offset) {
        auto at = static_cast<uint64_t>(offset);
        if (at < filled) {
          refuse(name, "its data blocks overlap");
        }
        std::memset(job.data + filled, 0, at - filled);
        std::memcpy(job.data + at, p, n);
        filled = at + n;
      });
      std::memset(job.data + filled, 0, size - filled);
      m_bytes += size;
      m_writers.push(std::move(job));
      return;
    }
    // A large file: created here (so a refusal is this thread's), its blocks copied to the
    // ring and written by the writer thread while this one decompresses the next.
    m_writers.check();
    int fd = ::openat(dirfd->fd, target.c_str(),
                      O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
      refuse(name, fmt::format("unable to create it: {}", std::strerror(errno)));
    }
    auto large = std::make_shared<LargeFile>(fd, name);
    read_blocks([&](const char* p, size_t n, la_int64_t offset) {
      for (size_t done = 0; done < n;) {
        Job piece;
        piece.large = large;
        piece.size = std::min<uint64_t>(n - done, k_queued_file_max);
        piece.data = m_writers.reserve(piece.size, piece.span);
        piece.offset = static_cast<uint64_t>(offset) + done;
        std::memcpy(piece.data, p + done, piece.size);
        done += piece.size;
        m_writers.push(std::move(piece));
      }
      report_progress(m_files_done, m_bytes + static_cast<uint64_t>(offset) + n);
    });
    Job end;
    end.large = std::move(large);
    end.end = true;
    end.size = static_cast<uint64_t>(declared);
    end.mode = mode;
    end.sec = sec;
    end.nsec = nsec;
    m_writers.push(std::move(end));
    m_bytes += size;
  }

  void report_progress(uint64_t files) {
    m_files_done = files;
    report_progress(files, m_bytes);
  }

  // Also where the phase's time budget is checked: after every entry and every block of a
  // large file, so that an unpack past it stops (and rolls back) within a block.
  void report_progress(uint64_t files, uint64_t bytes) {
    util::budget::check("unpacking");
    if (!m_options.progress) {
      return;
    }
    auto now = std::chrono::steady_clock::now();
    if (now - m_last_progress < std::chrono::milliseconds(250)) {
      return;
    }
    m_last_progress = now;
    m_options.progress({files, bytes, std::chrono::duration<double>(now - m_started).count()});
  }

  const UnpackOptions& m_options;
  EntryChecks m_checks;
  WriterPool m_writers;
  Staging m_staging;
  std::unordered_map<std::string, std::pair<const Dir*, std::string>> m_files; // name -> where made
  uint64_t m_bytes = 0;
  uint64_t m_files_done = 0;
  std::chrono::steady_clock::time_point m_started = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point m_last_progress = m_started;
};

} // namespace

struct EntryUnpack::Impl {
  explicit Impl(const UnpackOptions& options) : unpacker(options) {}
  Unpacker unpacker;
  UnpackResult result;
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  bool done = false;
};

EntryUnpack::EntryUnpack(const UnpackOptions& options) : m_impl(std::make_unique<Impl>(options)) {}

EntryUnpack::~EntryUnpack() = default;

void EntryUnpack::add(const StreamEntry& e, const NextPiece& next) {
  if (m_impl->done) {
    throw ArchiveError("an entry after the commit");
  }
  m_impl->unpacker.add(e, next, m_impl->result);
}

UnpackResult EntryUnpack::commit() {
  if (m_impl->done) {
    throw ArchiveError("committed twice");
  }
  m_impl->done = true;
  m_impl->unpacker.commit_streamed();
  m_impl->result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - m_impl->start).count();
  return m_impl->result;
}

UnpackResult unpack(const fs::path& archive_file, const UnpackOptions& options) {
  struct stat st {};
  int fd = util::open_regular(archive_file, st);
  if (fd < 0) {
    throw ArchiveError(fmt::format("unable to open {}: {}; nothing was read", archive_file.string(),
                                   errno == ELOOP    ? "it is a symlink"
                                   : errno == EINVAL ? "it is not a regular file"
                                                     : std::strerror(errno)));
  }
  util::Fd guard(fd);
  return unpack_fd(fd, options);
}

UnpackResult unpack_fd(int fd, const UnpackOptions& options) {
  auto start = std::chrono::steady_clock::now();
  UnpackResult result;
  Unpacker unpacker(options);
  unpacker.run(fd, result);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

} // namespace ephemera::archive
