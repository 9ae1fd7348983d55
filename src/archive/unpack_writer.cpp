#include "archive/unpack_writer.hpp"

#include "util/error.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <new>
#include <string_view>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ephemera::archive::detail {

using util::ArchiveError;

namespace {

// Pieces of file data this size that are all zeros are left as holes.
constexpr size_t k_hole_piece = 64 * 1024;
// Bytes of queued files held at once (one ring), and at most this many files.
constexpr uint64_t k_queue_bytes = 16 << 20;
constexpr size_t k_queue_jobs = 512;
// The writer is woken when this many files or bytes wait (or when the reader needs them all).
constexpr size_t k_batch_jobs = 64;
constexpr uint64_t k_batch_bytes = 4 << 20;
// One writer: the ring's bytes are given back in the order they were taken.
constexpr int k_writers = 1;

// Writes data at offset `at` of fd, leaving 64 KiB runs of zeros as holes; returns whether
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

} // namespace

Ring::Ring() {
  void* p =
      ::mmap(nullptr, k_queue_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    throw std::bad_alloc();
  }
  ::madvise(p, k_queue_bytes, MADV_HUGEPAGE); // advice: without it, 4 KiB pages
  m_mem = static_cast<char*>(p);
}

Ring::~Ring() {
  ::munmap(m_mem, k_queue_bytes);
}

char* Ring::take(uint64_t n, uint64_t& span) {
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

void Ring::release(uint64_t span) {
  m_tail = (m_tail + span) % k_queue_bytes;
  m_live -= span;
}

char* WriterPool::reserve(uint64_t size, uint64_t& span) {
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

void WriterPool::push(Job job) {
  std::unique_lock lock(m_mutex);
  rethrow_locked();
  uint64_t size = job.end ? 0 : job.size;
  m_queued_bytes += size;
  m_jobs.push_back(std::move(job));
  // Woken once per batch, not once per file: a wake-up costs as much as a small file.
  if (m_jobs.size() == k_batch_jobs ||
      (m_queued_bytes >= k_batch_bytes && m_queued_bytes - size < k_batch_bytes)) {
    m_ready.notify_one();
  }
}

void WriterPool::drain() {
  std::unique_lock lock(m_mutex);
  m_flush = true;
  m_ready.notify_all();
  m_space.wait(lock, [&] { return m_failure || (m_jobs.empty() && !m_busy); });
  m_flush = false;
  rethrow_locked();
}

void WriterPool::check() {
  std::lock_guard lock(m_mutex);
  rethrow_locked();
}

void WriterPool::stop() {
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

void WriterPool::start_locked() {
  if (m_threads.empty()) {
    for (int i = 0; i < k_writers; ++i) {
      m_threads.emplace_back([this] { run(); });
    }
  }
}

void WriterPool::rethrow_locked() {
  if (m_failure) {
    std::rethrow_exception(m_failure);
  }
}

// Takes every queued file at once, writes them, and reports back once.
void WriterPool::run() {
  std::deque<Job> batch;
  while (true) {
    {
      std::unique_lock lock(m_mutex);
      m_ready.wait(lock, [&] {
        return m_failure || m_stopping ||
               (!m_jobs.empty() &&
                (m_flush || m_jobs.size() >= k_batch_jobs || m_queued_bytes >= k_batch_bytes));
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

void WriterPool::write(const Job& job) const {
  if (job.large) {
    write_piece(job);
    return;
  }
  uint32_t mode = job.mode & 01777;
  int fd = ::openat(job.dir->fd, job.leaf.c_str(),
                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode & 0777);
  if (fd < 0) {
    throw ArchiveError(fmt::format("refused entry '{}': unable to create it: {}", job.entry,
                                   std::strerror(errno)));
  }
  util::Fd guard(fd);
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

void WriterPool::write_piece(const Job& job) const {
  LargeFile& f = *job.large;
  if (!job.end) {
    bool holes = false;
    if (int err =
            write_sparse(f.file.fd, job.data, job.size, static_cast<off_t>(job.offset), holes);
        err != 0) {
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
void WriterPool::finish(util::Fd& file, const Job& job, const std::string& entry) {
  struct timespec times[2] = {{job.sec, job.nsec}, {job.sec, job.nsec}};
  ::futimens(file.fd, times);
  if (::close(file.release()) != 0) {
    throw ArchiveError(fmt::format("unable to write '{}': {}", entry, std::strerror(errno)));
  }
}

} // namespace ephemera::archive::detail
