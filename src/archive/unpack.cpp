#include "archive/archive.hpp"

#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/sha256.hpp"
#include "util/temp_name.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <dirent.h>
#include <fcntl.h>
#include <list>
#include <memory>
#include <mutex>
#include <set>
#include <sys/mman.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace ephemera::archive {

namespace fs = std::filesystem;
using util::ArchiveError;

namespace {

// Pieces of file data this size that are all zeros are left as holes.
constexpr size_t k_hole_piece = 64 * 1024;
// Files up to this size are queued whole for the writer thread while this thread
// decompresses; larger ones are created here and queued in pieces of at most this size.
constexpr uint64_t k_queued_file_max = 1 << 20;
// Bytes of queued files held at once (one ring), and at most this many files.
constexpr uint64_t k_queue_bytes = 16 << 20;
constexpr size_t k_queue_jobs = 512;
// The writer is woken when this many files or bytes wait (or when the reader needs them all).
constexpr size_t k_batch_jobs = 64;
constexpr uint64_t k_batch_bytes = 4 << 20;
// One writer: the ring's bytes are given back in the order they were taken.
constexpr int k_writers = 1;
// Directory descriptors kept open (entries come grouped by directory).
constexpr size_t k_open_dirs = 128;

struct ReadDeleter {
  void operator()(struct archive* a) const { archive_read_free(a); }
};

using util::Fd;
using FdRef = std::shared_ptr<Fd>;

struct Dir;

// A directory entry's mode and times, set once everything is in place.
struct DirMeta {
  const struct Dir* dir;
  uint32_t mode;
  int64_t sec;
  long nsec;
};

bool safe_name(std::string_view name) {
  if (name.empty() || name.front() == '/') {
    return false;
  }
  size_t start = 0;
  while (true) {
    size_t end = name.find('/', start);
    auto part = name.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (part.empty() || part == "." || part == "..") {
      return false;
    }
    if (end == std::string_view::npos) {
      return true;
    }
    start = end + 1;
  }
}

// Removes the entry name in dir_fd and, for a directory, everything below it, never
// following a symlink. Errors are ignored: it is cleanup.
void remove_tree_at(int dir_fd, const std::string& name) {
  if (::unlinkat(dir_fd, name.c_str(), 0) == 0 || (errno != EISDIR && errno != EPERM)) {
    return;
  }
  int fd = ::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    return;
  }
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    ::close(fd);
    return;
  }
  std::vector<std::string> names;
  while (dirent* de = ::readdir(d)) {
    if (std::strcmp(de->d_name, ".") != 0 && std::strcmp(de->d_name, "..") != 0) {
      names.emplace_back(de->d_name);
    }
  }
  for (const auto& n : names) {
    remove_tree_at(::dirfd(d), n);
  }
  ::closedir(d);
  ::unlinkat(dir_fd, name.c_str(), AT_REMOVEDIR);
}

// Opens each component of rel below dir_fd, never through a symlink; -1 with errno.
int open_below(int dir_fd, const std::string& rel) {
  int fd = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
  size_t start = 0;
  while (fd >= 0 && start < rel.size()) {
    size_t slash = rel.find('/', start);
    std::string part = rel.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    start = slash == std::string::npos ? rel.size() : slash + 1;
    int next = ::openat(fd, part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int err = errno;
    ::close(fd);
    errno = err;
    fd = next;
  }
  return fd;
}

// The record of the staging names an unpack makes, in a file of the caller's choosing (the
// state dir): each name is written there before it is made, so a restore killed before its
// commit or rollback leaves a list of exactly what it staged (sweep_staged removes it).
class Journal {
public:
  explicit Journal(fs::path path) : m_path(std::move(path)) {}
  ~Journal() {
    if (m_fd >= 0) {
      ::close(m_fd);
    }
  }
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Records that name is about to be made in base/rel (rel "" is base itself). The first
  // record creates the file (never through a symlink, never over another file) and is
  // fsynced with its directory; later ones are written through to the kernel, which keeps
  // them when the process is killed.
  void add(const std::string& base, const std::string& rel, const std::string& name) {
    if (m_path.empty()) {
      return;
    }
    std::string record = base;
    record += '\0';
    record += rel;
    record += '\0';
    record += name;
    record += '\0';
    bool first = m_fd < 0;
    if (first) {
      ::unlink(m_path.c_str());
      m_fd = ::open(m_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_APPEND | O_CLOEXEC, 0600);
      if (m_fd < 0) {
        throw ArchiveError(fmt::format("unable to create the journal {}: {}", m_path.string(), std::strerror(errno)));
      }
    }
    if (!util::write_all(m_fd, record)) {
      throw ArchiveError(fmt::format("unable to write the journal {}: {}", m_path.string(), std::strerror(errno)));
    }
    if (first) {
      ::fsync(m_fd);
      util::fsync_directory(m_path.parent_path());
    }
  }

  // After the commit or the rollback: nothing staged is left.
  void remove() {
    if (m_fd >= 0) {
      ::close(m_fd);
      m_fd = -1;
      ::unlink(m_path.c_str());
    }
  }

private:
  fs::path m_path;
  int m_fd = -1;
};

// Writes data at offset 0 of fd, leaving 64 KiB runs of zeros as holes; returns whether
// it left any (then the caller sets the size with ftruncate). 0 or errno.
int write_sparse(int fd, const char* p, size_t size, off_t at, bool& holes) {
  while (size > 0) {
    size_t piece = std::min(size, k_hole_piece);
    if (piece == k_hole_piece && p[0] == 0 && std::memcmp(p, p + 1, piece - 1) == 0) {
      holes = true;
    } else if (!util::write_all(fd, std::string_view(p, piece), at)) {
      return errno;
    }
    p += piece;
    at += static_cast<off_t>(piece);
    size -= piece;
  }
  return 0;
}

// A large file the reading thread created, written in pieces by the writer thread.
struct LargeFile {
  explicit LargeFile(int fd, std::string entry_name) : file(fd), entry(std::move(entry_name)) {}
  Fd file;
  std::string entry; // the archive's name, for errors
};

// For the writer thread: a small file read whole from the archive, to create; or a piece
// of a large file, to write at its offset; or a large file's end (no data), to set its
// size, mode and times and close it.
struct Job {
  FdRef dir;
  std::string leaf;    // name to create in dir (O_EXCL)
  std::string entry;   // the archive's name, for errors
  char* data = nullptr; // in the pool's ring (WriterPool::reserve)
  uint64_t span = 0;   // ring bytes it holds: its size, and the ring's end it skipped
  uint64_t size = 0;
  uint32_t mode = 0;
  int64_t sec = 0;
  long nsec = 0;
  std::shared_ptr<LargeFile> large; // set for pieces and ends of large files
  uint64_t offset = 0;
  bool end = false;
};

// The queued files' bytes: one region taken in order by the reader and given back in the
// same order by the writer. Its pages are faulted in once (in 2 MiB pages where the kernel
// allows), not again for every file: on a virtual machine a page fault costs about as
// much as writing a small file.
class Ring {
public:
  Ring() {
    void* p = ::mmap(nullptr, k_queue_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      throw std::bad_alloc();
    }
    ::madvise(p, k_queue_bytes, MADV_HUGEPAGE); // advice: without it, 4 KiB pages
    m_mem = static_cast<char*>(p);
  }
  ~Ring() { ::munmap(m_mem, k_queue_bytes); }
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  // n contiguous bytes, or nullptr if they do not fit now; span is what release takes back.
  char* take(uint64_t n, uint64_t& span) {
    if (m_live == 0) {
      m_tail = 0;
    }
    uint64_t head = (m_tail + m_live) % k_queue_bytes;
    if (m_live == k_queue_bytes) {
      return nullptr;
    }
    uint64_t at = head;
    span = n;
    if (head >= m_tail && n > k_queue_bytes - head) { // no room at the end: skip it
      if (n > m_tail) {
        return nullptr;
      }
      span += k_queue_bytes - head;
      at = 0;
    } else if (head < m_tail && n > m_tail - head) {
      return nullptr;
    }
    m_live += span;
    return m_mem + at;
  }

  void release(uint64_t span) {
    m_tail = (m_tail + span) % k_queue_bytes;
    m_live -= span;
  }

private:
  char* m_mem = nullptr;
  uint64_t m_tail = 0; // the oldest byte held
  uint64_t m_live = 0; // bytes held from m_tail on, wrapping
};

// Creates queued files on k_writers threads. The first failure stops the pool and is
// rethrown by check() or finish() in the reading thread.
class WriterPool {
public:
  explicit WriterPool(mode_t umask_bits) : m_umask(umask_bits) {}
  ~WriterPool() { stop(); }

  // Room in the ring for a file of size bytes (at most k_queued_file_max), waiting for
  // the writer to give some back; the Job that pushes it carries data and span.
  char* reserve(uint64_t size, uint64_t& span) {
    std::unique_lock lock(m_mutex);
    start_locked();
    while (true) {
      rethrow_locked();
      if (m_jobs.size() < k_queue_jobs) {
        if (char* p = m_ring.take(size, span)) {
          return p;
        }
      }
      // Full: the writer takes what is queued now, batch or not.
      m_flush = true;
      m_ready.notify_all();
      m_space.wait(lock);
      m_flush = false;
    }
  }

  void push(Job job) {
    std::unique_lock lock(m_mutex);
    rethrow_locked();
    uint64_t size = job.end ? 0 : job.size;
    m_queued_bytes += size;
    m_jobs.push_back(std::move(job));
    // Woken once per batch, not once per file: a wake-up costs as much as a small file.
    if (m_jobs.size() == k_batch_jobs || (m_queued_bytes >= k_batch_bytes && m_queued_bytes - size < k_batch_bytes)) {
      m_ready.notify_one();
    }
  }

  // Waits until every queued file is written (before a hard link to one, and at the end).
  void drain() {
    std::unique_lock lock(m_mutex);
    m_flush = true;
    m_ready.notify_all();
    m_space.wait(lock, [&] { return m_failure || (m_jobs.empty() && !m_busy); });
    m_flush = false;
    rethrow_locked();
  }

  void check() {
    std::lock_guard lock(m_mutex);
    rethrow_locked();
  }

  void stop() {
    {
      std::lock_guard lock(m_mutex);
      m_stopping = true;
      m_jobs.clear(); // after a failure elsewhere: nothing more is written
      m_ready.notify_all();
    }
    for (auto& t : m_threads) {
      t.join();
    }
    m_threads.clear();
  }

private:
  void start_locked() {
    if (m_threads.empty()) {
      for (int i = 0; i < k_writers; ++i) {
        m_threads.emplace_back([this] { run(); });
      }
    }
  }

  void rethrow_locked() {
    if (m_failure) {
      std::rethrow_exception(m_failure);
    }
  }

  // Takes every queued file at once, writes them, and reports back once.
  void run() {
    std::deque<Job> batch;
    while (true) {
      {
        std::unique_lock lock(m_mutex);
        m_ready.wait(lock, [&] {
          return m_failure || m_stopping ||
                 (!m_jobs.empty() && (m_flush || m_jobs.size() >= k_batch_jobs || m_queued_bytes >= k_batch_bytes));
        });
        if (m_failure || m_jobs.empty()) {
          return;
        }
        batch.swap(m_jobs);
        m_queued_bytes = 0;
        m_busy = true;
      }
      std::exception_ptr failure;
      for (const auto& job : batch) {
        if (!failure) {
          try {
            write(job);
          } catch (...) {
            failure = std::current_exception();
          }
        }
      }
      std::lock_guard lock(m_mutex);
      for (const auto& job : batch) {
        m_ring.release(job.span);
      }
      batch.clear();
      m_busy = false;
      if (failure && !m_failure) {
        m_failure = failure;
        m_ready.notify_all();
      }
      m_space.notify_all();
    }
  }

  void write(const Job& job) const {
    if (job.large) {
      write_piece(job);
      return;
    }
    uint32_t mode = job.mode & 01777;
    int fd = ::openat(job.dir->fd, job.leaf.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                      mode & 0777);
    if (fd < 0) {
      throw ArchiveError(fmt::format("refused entry '{}': unable to create it: {}", job.entry, std::strerror(errno)));
    }
    Fd guard(fd);
    bool holes = false;
    int err = write_sparse(fd, job.data, job.size, 0, holes);
    if (err == 0 && holes && ::ftruncate(fd, static_cast<off_t>(job.size)) != 0) {
      err = errno;
    }
    if (err != 0) {
      throw ArchiveError(fmt::format("unable to write '{}': {}", job.entry, std::strerror(err)));
    }
    if ((mode & 0777 & ~m_umask) != mode) { // the umask took bits, or the sticky bit
      ::fchmod(fd, mode);
    }
    finish(guard, job, job.entry);
  }

  void write_piece(const Job& job) const {
    LargeFile& f = *job.large;
    if (!job.end) {
      bool holes = false;
      if (int err = write_sparse(f.file.fd, job.data, job.size, static_cast<off_t>(job.offset), holes); err != 0) {
        throw ArchiveError(fmt::format("unable to write '{}': {}", f.entry, std::strerror(err)));
      }
      return;
    }
    if (::ftruncate(f.file.fd, static_cast<off_t>(job.size)) != 0) { // holes at its end
      throw ArchiveError(fmt::format("unable to write '{}': {}", f.entry, std::strerror(errno)));
    }
    ::fchmod(f.file.fd, job.mode & 01777);
    finish(f.file, job, f.entry);
  }

  // Sets a written file's times and closes it, seeing the error close may report.
  static void finish(Fd& file, const Job& job, const std::string& entry) {
    struct timespec times[2] = {{job.sec, job.nsec}, {job.sec, job.nsec}};
    ::futimens(file.fd, times);
    if (::close(file.release()) != 0) {
      throw ArchiveError(fmt::format("unable to write '{}': {}", entry, std::strerror(errno)));
    }
  }

  const mode_t m_umask;
  std::mutex m_mutex;
  std::condition_variable m_ready;
  std::condition_variable m_space;
  std::deque<Job> m_jobs;
  std::vector<std::thread> m_threads;
  uint64_t m_queued_bytes = 0; // in m_jobs
  Ring m_ring;                 // the bytes of m_jobs and of the batch being written
  bool m_busy = false;
  bool m_flush = false;
  bool m_stopping = false;
  std::exception_ptr m_failure;
};

// The compressed archive as libarchive reads it: exactly expected bytes from offset 0,
// hashed as they are handed over, so the digest checked before the commit is the digest of
// what was unpacked (the file may be rewritten in place meanwhile by whoever can write it).
class Input {
public:
  Input(int fd, const UnpackOptions& options) : m_fd(fd), m_expected(options.expected_size), m_buf(k_read_block) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      throw ArchiveError(fmt::format("unable to examine the archive: {}", std::strerror(errno)));
    }
    if (!S_ISREG(st.st_mode)) {
      throw ArchiveError("the archive is not a regular file; nothing was read");
    }
    if (static_cast<uint64_t>(st.st_size) != m_expected) {
      throw ArchiveError(fmt::format("the archive is {} bytes, the manifest says {}; nothing was read",
                                     st.st_size, m_expected));
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
      throw ArchiveError(fmt::format("the archive changed while it was read (it is no longer {} bytes); "
                                     "nothing was written",
                                     m_expected));
    }
    std::string digest = m_hash.finish_hex();
    if (digest != expected_sha256) {
      throw ArchiveError(fmt::format("digest mismatch: the archive's SHA-256 is {}, the manifest says {}; "
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

// A directory the unpack has reached. `fresh`: this unpack made it, inside a directory
// staged under a temporary name, so nothing in it existed before and entries are created
// under their own names; otherwise they are written under temporary names and renamed.
//
// Every directory is reached through its parent's descriptor, by name, never through a
// symlink (the job may swap a directory for a link while its own restore runs), and a
// directory opened again must be the one first seen (device and inode).
struct Dir {
  std::string physical; // where it is now, for messages
  bool fresh = false;
  struct timespec mtime {}; // of a directory that existed: put back if a failed restore touched it
  const Dir* parent = nullptr; // nullptr: an anchor's base, opened by its path
  std::string leaf;            // its name in parent now (a staged directory's staging name)
  std::string base;            // the anchor's base it is below, and the path below it
  std::string rel;
  mutable dev_t dev = 0;       // as first opened (0: not yet)
  mutable ino_t ino = 0;
};

// Extraction is all-or-nothing for the paths a job sees. A directory that does not exist
// yet is made under a temporary name beside its destination, filled, and renamed into
// place at the end (one rename for a whole new tree); a file in a directory that existed is
// written under a temporary name and renamed into place at the end. Until then nothing
// appears at a destination path, and on failure everything made is removed.
class Unpacker {
public:
  explicit Unpacker(const UnpackOptions& options)
      : m_options(options), m_writers(current_umask()), m_journal(options.journal) {}

  ~Unpacker() {
    m_writers.stop();
    if (!m_committed) {
      rollback();
    }
    m_journal.remove();
  }

  // Unpacks the archive in fd (Input checked it is a regular file of the expected size),
  // then verifies its size and digest and only then commits.
  void run(int fd, UnpackResult& result) {
    Input input(fd, m_options);
    std::unique_ptr<struct archive, ReadDeleter> a(archive_read_new());
    archive_read_support_filter_zstd(a.get());
    archive_read_support_format_tar(a.get());
    try {
      if (archive_read_open2(a.get(), &input, nullptr, Input::read_cb, nullptr, nullptr) != ARCHIVE_OK) {
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
        entry(a.get(), e, result);
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
    commit();
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

  [[noreturn]] static void refuse(std::string_view name, const std::string& why) {
    throw ArchiveError(fmt::format("refused entry '{}': {}", name, why));
  }

  void entry(struct archive* a, archive_entry* e, UnpackResult& result) {
    std::string name = archive_entry_pathname(e) != nullptr ? archive_entry_pathname(e) : "";
    while (name.size() > 1 && name.back() == '/') {
      name.pop_back();
    }
    if (!safe_name(name)) {
      refuse(name, "an absolute path, an empty component or '..'");
    }
    mode_t type = archive_entry_filetype(e);
    const char* hardlink = archive_entry_hardlink(e);
    EntryType kind;
    if (hardlink != nullptr || type == AE_IFREG) {
      kind = EntryType::file;
    } else if (type == AE_IFDIR) {
      kind = EntryType::directory;
    } else if (type == AE_IFLNK) {
      kind = EntryType::symlink;
    } else {
      refuse(name, "device nodes, fifos and sockets are never restored");
    }
    auto mode = static_cast<uint32_t>(archive_entry_perm(e));
    if ((mode & 06000) != 0) {
      refuse(name, "set-user-id and set-group-id bits are never restored");
    }
    if (!m_symlinks.empty()) {
      for (size_t slash = name.find('/'); slash != std::string::npos; slash = name.find('/', slash + 1)) {
        if (m_symlinks.count(name.substr(0, slash)) != 0) {
          refuse(name, "it would be written through a symlink of the same archive");
        }
      }
    }
    auto dest = m_options.resolve(name, kind);
    if (!dest) {
      refuse(name, "not a path the stanza's rules admit");
    }
    if (!safe_name(dest->rel)) {
      refuse(name, "its destination is not a plain relative path");
    }
    std::string base = dest->base.string();
    while (base.size() > 1 && base.back() == '/') {
      base.pop_back();
    }
    std::string final = base + "/" + dest->rel;
    if (!m_finals.insert(final).second) {
      refuse(name, "the archive holds it twice");
    }
    int64_t sec = archive_entry_mtime(e);
    long nsec = archive_entry_mtime_nsec(e);
    const int64_t mtime_ns = sec * 1000000000 + nsec;
    if (kind == EntryType::directory) {
      m_dir_meta.push_back({&directory(name, base, dest->rel), mode, sec, nsec});
      tell({name, kind, 0, mode & 01777, mtime_ns, {}, {}});
      ++result.directories;
      return;
    }
    m_nondirs.insert(final);
    size_t slash = dest->rel.rfind('/');
    const Dir& parent = slash == std::string::npos ? directory(name, base, "")
                                                   : directory(name, base, dest->rel.substr(0, slash));
    std::string leaf = slash == std::string::npos ? dest->rel : dest->rel.substr(slash + 1);
    FdRef dirfd = open_dir(parent, name);
    std::string target = leaf;
    if (!parent.fresh) {
      struct stat existing {};
      if (::fstatat(dirfd->fd, leaf.c_str(), &existing, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(existing.st_mode)) {
        refuse(name, "a directory exists where the archive has a file or link");
      }
      target = stage(parent);
      m_touched.insert(&parent);
      m_staged_files.push_back({&parent, target, leaf});
    }
    if (hardlink != nullptr) {
      auto it = m_files.find(hardlink);
      if (it == m_files.end()) {
        refuse(name, fmt::format("a hard link to '{}', which is not an earlier file of the archive", hardlink));
      }
      m_writers.drain(); // the file it names is written
      FdRef from = open_dir(*it->second.first, name);
      if (::linkat(from->fd, it->second.second.c_str(), dirfd->fd, target.c_str(), 0) != 0) {
        refuse(name, fmt::format("unable to link: {}", std::strerror(errno)));
      }
      tell({name, kind, 0, 0, 0, {}, hardlink});
      ++result.files;
      return;
    }
    if (kind == EntryType::symlink) {
      const char* to = archive_entry_symlink(e);
      if (to == nullptr || ::symlinkat(to, dirfd->fd, target.c_str()) != 0) {
        refuse(name, fmt::format("unable to create the link: {}", std::strerror(errno)));
      }
      struct timespec times[2] = {{sec, nsec}, {sec, nsec}};
      ::utimensat(dirfd->fd, target.c_str(), times, AT_SYMLINK_NOFOLLOW);
      tell({name, kind, 0, 0777, mtime_ns, to, {}});
      m_symlinks.insert(name);
      ++result.symlinks;
      return;
    }
    file(a, e, name, dirfd, target, mode, sec, nsec);
    tell(
        {name, kind, static_cast<uint64_t>(archive_entry_size(e)), mode & 01777, mtime_ns, {}, {}});
    m_files.emplace(name, std::make_pair(&parent, target));
    ++result.files;
    result.bytes = m_bytes;
    report_progress(result.files);
  }

  void file(struct archive* a, archive_entry* e, const std::string& name, const FdRef& dirfd,
            const std::string& target, uint32_t mode, int64_t sec, long nsec) {
    int64_t declared = archive_entry_size(e);
    if (declared < 0 || m_bytes + static_cast<uint64_t>(declared) > m_options.max_unpacked_bytes) {
      refuse(name, fmt::format("the archive unpacks to more than the {} bytes its manifest declares",
                               m_options.max_unpacked_bytes));
    }
    const auto size = static_cast<uint64_t>(declared);
    auto read_blocks = [&](auto&& sink) {
      const void* buf = nullptr;
      size_t n = 0;
      la_int64_t offset = 0;
      while (true) {
        int r = archive_read_data_block(a, &buf, &n, &offset);
        if (r == ARCHIVE_EOF) {
          return;
        }
        if (r < ARCHIVE_WARN) {
          throw ArchiveError(fmt::format("corrupt archive in '{}': {}", name, archive_error_string(a)));
        }
        if (offset < 0 || static_cast<uint64_t>(offset) + n > size) {
          refuse(name, "more bytes than the manifest declares");
        }
        sink(static_cast<const char*>(buf), n, offset);
      }
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
    int fd = ::openat(dirfd->fd, target.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
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

  void report_progress(uint64_t files, uint64_t bytes) {
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

  // The directory base/rel (rel "" is base itself), made as needed: base and its missing
  // parents directly, anything below base staged or inside a staged directory. No existing
  // component below base is a symlink or other non-directory.
  const Dir& directory(const std::string& name, const std::string& base, const std::string& rel) {
    std::string key = rel.empty() ? base : base + "/" + rel;
    if (auto it = m_dirs.find(key); it != m_dirs.end()) {
      return it->second;
    }
    auto b = m_dirs.find(base);
    if (b == m_dirs.end()) {
      Dir made;
      made.physical = base;
      made.mtime = make_base(name, base);
      made.base = base;
      b = m_dirs.emplace(base, std::move(made)).first;
      open_dir(b->second, name); // held for the whole unpack: every path below goes through it
    }
    const Dir* at = &b->second;
    std::string path = base;
    size_t start = 0;
    while (start < rel.size()) {
      size_t slash = rel.find('/', start);
      std::string part = rel.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
      start = slash == std::string::npos ? rel.size() : slash + 1;
      path += "/" + part;
      if (auto it = m_dirs.find(path); it != m_dirs.end()) {
        at = &it->second;
        continue;
      }
      if (m_nondirs.count(path) != 0) {
        refuse(name, "a file or link of the archive is where it has a directory");
      }
      FdRef parent = open_dir(*at, name);
      Dir made;
      made.parent = at;
      made.leaf = part;
      made.base = base;
      made.rel = rel.substr(0, start == rel.size() ? rel.size() : start - 1);
      if (at->fresh) {
        if (::mkdirat(parent->fd, part.c_str(), 0755) != 0) {
          refuse(name, errno == EEXIST ? "a file or link of the archive is where it has a directory"
                                       : fmt::format("unable to create {}: {}", path, std::strerror(errno)));
        }
        made.physical = at->physical + "/" + part;
        made.fresh = true;
      } else {
        struct stat st {};
        if (::fstatat(parent->fd, part.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
          if (S_ISLNK(st.st_mode)) {
            refuse(name, fmt::format("{} is a symlink: nothing is extracted through one", path));
          }
          if (!S_ISDIR(st.st_mode)) {
            refuse(name, fmt::format("{} is not a directory", path));
          }
          made.physical = path;
          made.mtime = st.st_mtim;
          made.dev = st.st_dev;
          made.ino = st.st_ino;
        } else if (errno == ENOENT) {
          m_touched.insert(at);
          std::string staged = stage(*at);
          if (::mkdirat(parent->fd, staged.c_str(), 0755) != 0) {
            refuse(name, fmt::format("unable to create {}: {}", path, std::strerror(errno)));
          }
          made.physical = at->physical + "/" + staged;
          made.fresh = true;
          made.leaf = staged;
          Dir& placed = m_dirs.emplace(path, std::move(made)).first->second;
          m_staged_dirs.push_back({&placed, part});
          at = &placed;
          continue;
        } else {
          refuse(name, fmt::format("unable to examine {}: {}", path, std::strerror(errno)));
        }
      }
      at = &m_dirs.emplace(path, std::move(made)).first->second;
    }
    return *at;
  }

  // A fresh staging name in the existing directory dir, recorded in the journal first.
  std::string stage(const Dir& dir) {
    std::string n = util::temp_name();
    m_journal.add(dir.base, dir.rel, n);
    return n;
  }

  // An anchor's base is opened by its path (the anchors are the agent's configuration: a
  // $HOME that is a symlink it set up keeps working); nothing below it is followed.
  struct timespec make_base(const std::string& name, const std::string& base) {
    struct stat st {};
    if (::stat(base.c_str(), &st) == 0) {
      if (!S_ISDIR(st.st_mode)) {
        refuse(name, fmt::format("{} is not a directory", base));
      }
      return st.st_mtim;
    }
    std::vector<fs::path> missing;
    for (fs::path p = base; !p.empty() && p != p.root_path() && !fs::exists(p); p = p.parent_path()) {
      missing.push_back(p);
    }
    for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
      if (::mkdir(it->c_str(), 0755) == 0) {
        m_created_dirs.push_back(*it);
      } else if (errno != EEXIST) {
        throw ArchiveError(fmt::format("unable to create {} for '{}': {}", it->string(), name, std::strerror(errno)));
      }
    }
    return {0, UTIME_OMIT};
  }

  // The directory's descriptor: from the cache, or opened by name in its parent's (bases by
  // path, and kept), never through a symlink, and refused if it is not the directory it was.
  FdRef open_dir(const Dir& dir, const std::string& name) {
    if (auto it = m_bases.find(&dir); it != m_bases.end()) {
      return it->second;
    }
    if (auto it = m_fds.find(&dir); it != m_fds.end()) {
      m_lru.splice(m_lru.begin(), m_lru, it->second.second);
      return it->second.first;
    }
    int fd = dir.parent == nullptr
                 ? ::open(dir.physical.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                 : ::openat(open_dir(*dir.parent, name)->fd, dir.leaf.c_str(),
                            O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      throw ArchiveError(fmt::format("unable to open {} for '{}': {}", dir.physical, name,
                                     errno == ELOOP ? "it became a symlink" : std::strerror(errno)));
    }
    auto ref = std::make_shared<Fd>(fd);
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      throw ArchiveError(fmt::format("unable to examine {}: {}", dir.physical, std::strerror(errno)));
    }
    if (dir.ino == 0) {
      dir.dev = st.st_dev;
      dir.ino = st.st_ino;
    } else if (dir.dev != st.st_dev || dir.ino != st.st_ino) {
      throw ArchiveError(fmt::format("refused entry '{}': {} was replaced while it was restored", name,
                                     dir.physical));
    }
    if (dir.parent == nullptr) {
      m_bases.emplace(&dir, ref);
      return ref;
    }
    m_lru.push_front(&dir);
    m_fds.emplace(&dir, std::make_pair(ref, m_lru.begin()));
    if (m_lru.size() > k_open_dirs) {
      m_fds.erase(m_lru.back());
      m_lru.pop_back();
    }
    return ref;
  }

  // Renames everything staged into place through the directories' descriptors, then sets
  // the directory entries' modes and times (on descriptors of the directories themselves).
  void commit() {
    for (const auto& f : m_staged_files) {
      FdRef d = open_dir(*f.dir, f.final);
      if (::renameat(d->fd, f.staged.c_str(), d->fd, f.final.c_str()) != 0) {
        throw ArchiveError(fmt::format("unable to move {}/{} into place: {}", f.dir->physical, f.final,
                                       std::strerror(errno)));
      }
    }
    // Never one inside another: inside a staged directory, directories are made directly.
    for (auto& [dir, final] : m_staged_dirs) {
      FdRef d = open_dir(*dir->parent, final);
      if (::renameat(d->fd, dir->leaf.c_str(), d->fd, final.c_str()) != 0) {
        throw ArchiveError(fmt::format("unable to move {}/{} into place: {}", dir->parent->physical, final,
                                       std::strerror(errno)));
      }
      dir->leaf = final;
    }
    m_committed = true;
    m_journal.remove();
    // Deepest first, so setting a child's time does not disturb its parent's.
    for (auto it = m_dir_meta.rbegin(); it != m_dir_meta.rend(); ++it) {
      try {
        FdRef d = open_dir(*it->dir, it->dir->physical);
        ::fchmod(d->fd, it->mode & 01777);
        struct timespec times[2] = {{it->sec, it->nsec}, {it->sec, it->nsec}};
        ::futimens(d->fd, times);
      } catch (const ArchiveError&) {
        // Replaced by the job since: its mode and times are the job's business now.
      }
    }
    m_fds.clear();
    m_lru.clear();
  }

  void rollback() {
    for (const auto& f : m_staged_files) {
      try {
        ::unlinkat(open_dir(*f.dir, f.final)->fd, f.staged.c_str(), 0);
      } catch (const ArchiveError&) {
      }
    }
    for (const auto& [dir, final] : m_staged_dirs) {
      try {
        remove_tree_at(open_dir(*dir->parent, final)->fd, dir->leaf); // made by this unpack
      } catch (const ArchiveError&) {
      }
    }
    // Making and removing staging names changed the modification times of directories
    // that existed; the job sees them as they were.
    for (const Dir* d : m_touched) {
      try {
        struct timespec times[2] = {{0, UTIME_OMIT}, d->mtime};
        ::futimens(open_dir(*d, d->physical)->fd, times);
      } catch (const ArchiveError&) {
      }
    }
    m_fds.clear();
    m_lru.clear();
    m_bases.clear();
    for (auto it = m_created_dirs.rbegin(); it != m_created_dirs.rend(); ++it) {
      ::rmdir(it->c_str());
    }
  }

  struct StagedFile {
    const Dir* dir;
    std::string staged;
    std::string final;
  };

  const UnpackOptions& m_options;
  WriterPool m_writers;
  Journal m_journal;
  std::unordered_map<std::string, Dir> m_dirs;                    // final path -> where
  std::unordered_map<const Dir*, std::pair<FdRef, std::list<const Dir*>::iterator>> m_fds;
  std::list<const Dir*> m_lru;
  std::unordered_map<const Dir*, FdRef> m_bases;                  // kept open to the end
  std::vector<StagedFile> m_staged_files;
  std::vector<std::pair<Dir*, std::string>> m_staged_dirs;         // staged, its final leaf
  std::vector<fs::path> m_created_dirs;
  std::set<const Dir*> m_touched;                                  // existing directories written in
  std::vector<DirMeta> m_dir_meta;
  std::set<std::string> m_symlinks;
  std::unordered_map<std::string, std::pair<const Dir*, std::string>> m_files; // name -> where made
  std::unordered_set<std::string> m_finals;
  std::unordered_set<std::string> m_nondirs;                       // final paths of files and links
  uint64_t m_bytes = 0;
  uint64_t m_files_done = 0;
  bool m_committed = false;
  std::chrono::steady_clock::time_point m_started = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point m_last_progress = m_started;
};

} // namespace

size_t sweep_staged(const fs::path& journal, const AdmitDir& admit) {
  struct stat st {};
  int fd = util::open_regular(journal, st);
  if (fd < 0) {
    if (errno != ENOENT) {
      ::unlink(journal.c_str()); // not a journal this tool wrote
    }
    return 0;
  }
  std::string text;
  {
    util::Fd guard(fd);
    char buf[65536];
    for (ssize_t n; (n = util::read_full(fd, buf, sizeof buf)) > 0;) {
      text.append(buf, static_cast<size_t>(n));
    }
  }
  size_t removed = 0;
  size_t at = 0;
  auto field = [&](std::string& out) {
    size_t end = text.find('\0', at);
    if (end == std::string::npos) {
      return false;
    }
    out = text.substr(at, end - at);
    at = end + 1;
    return true;
  };
  std::string base;
  std::string rel;
  std::string name;
  while (field(base) && field(rel) && field(name)) {
    // Only names of the staging shape, only where the caller's rules reach, never through
    // a symlink below the base: a job that rewrites the journal can make this remove
    // nothing but what looks like staging inside its own stanza.
    if (!util::is_temp_name(name) || (!rel.empty() && !safe_name(rel)) || !admit(base, rel)) {
      continue;
    }
    int base_fd = ::open(base.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (base_fd < 0) {
      continue;
    }
    util::Fd base_guard(base_fd);
    int dir_fd = open_below(base_fd, rel);
    if (dir_fd < 0) {
      continue;
    }
    util::Fd dir_guard(dir_fd);
    if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
      remove_tree_at(dir_fd, name);
      ++removed;
    }
  }
  ::unlink(journal.c_str());
  return removed;
}

UnpackResult unpack(const fs::path& archive_file, const UnpackOptions& options) {
  struct stat st {};
  int fd = util::open_regular(archive_file, st);
  if (fd < 0) {
    throw ArchiveError(fmt::format("unable to open {}: {}; nothing was read", archive_file.string(),
                                   errno == ELOOP   ? "it is a symlink"
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
