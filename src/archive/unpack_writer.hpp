#pragma once

#include "util/fs.hpp"

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <sys/types.h>
#include <thread>
#include <vector>

// The unpacker's writer: files the reading thread decompressed, created and written by a
// second thread from one ring of memory, so writing overlaps decompressing. Internal to
// src/archive (unpack.cpp is its only user).
namespace ephemera::archive::detail {

// Files up to this size are queued whole for the writer thread while the reading thread
// decompresses; larger ones are created there and queued in pieces of at most this size.
constexpr uint64_t k_queued_file_max = 1 << 20;

using FdRef = std::shared_ptr<util::Fd>;

// A large file the reading thread created, written in pieces by the writer thread.
struct LargeFile {
  explicit LargeFile(int fd, std::string entry_name) : file(fd), entry(std::move(entry_name)) {}
  util::Fd file;
  std::string entry; // the archive's name, for errors
};

// For the writer thread: a small file read whole from the archive, to create; or a piece
// of a large file, to write at its offset; or a large file's end (no data), to set its
// size, mode and times and close it.
struct Job {
  FdRef dir;
  std::string leaf;     // name to create in dir (O_EXCL)
  std::string entry;    // the archive's name, for errors
  char* data = nullptr; // in the pool's ring (WriterPool::reserve)
  uint64_t span = 0;    // ring bytes it holds: its size, and the ring's end it skipped
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
  Ring();
  ~Ring();
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  // n contiguous bytes, or nullptr if they do not fit now; span is what release takes back.
  char* take(uint64_t n, uint64_t& span);
  // Gives back the oldest span bytes taken.
  void release(uint64_t span);

private:
  char* m_mem = nullptr;
  uint64_t m_tail = 0; // the oldest byte held
  uint64_t m_live = 0; // bytes held from m_tail on, wrapping
};

// Creates queued files on its writer thread. The first failure stops the pool and is
// rethrown by reserve(), push(), drain() or check() in the reading thread.
class WriterPool {
public:
  // umask_bits: the process's umask, which O_CREAT applies (a mode it cut is set again).
  explicit WriterPool(mode_t umask_bits) : m_umask(umask_bits) {}
  ~WriterPool() { stop(); }
  WriterPool(const WriterPool&) = delete;
  WriterPool& operator=(const WriterPool&) = delete;

  // Room in the ring for a file of size bytes (at most k_queued_file_max), waiting for
  // the writer to give some back; the Job that pushes it carries data and span.
  char* reserve(uint64_t size, uint64_t& span);
  // Queues a job whose data (if any) reserve gave.
  void push(Job job);
  // Waits until every queued file is written (before a hard link to one, and at the end).
  void drain();
  // Rethrows the writer's failure, if any.
  void check();
  // Drops what is queued and joins the writer: after it nothing more is written.
  void stop();

private:
  void start_locked();
  void rethrow_locked();
  void run();
  void write(const Job& job) const;
  void write_piece(const Job& job) const;
  static void finish(util::Fd& file, const Job& job, const std::string& entry);

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

} // namespace ephemera::archive::detail
