#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <sys/types.h>
#include <vector>

namespace ephemera::util {

// Whole file as bytes; throws Error naming the path.
std::string read_file(const std::filesystem::path& path);
// Like read_file, but nullopt when the file does not exist.
std::optional<std::string> read_file_if_exists(const std::filesystem::path& path);

// Opens path for reading if, and only if, it is a regular file. A fifo, socket or device
// is never opened (an open could block forever or act on a device): the path is opened
// O_PATH, checked with fstat and only then reopened for reading (open_regular_in). With
// follow_symlinks false a symlink as the last component is refused. Returns -1 (errno ENOENT) when
// the path does not exist; throws Error naming the path and what it is otherwise.
int open_regular(const std::filesystem::path& path, bool follow_symlinks);

// The whole of a regular file (open_regular) of at most max_bytes, or nullopt when it
// does not exist; throws Error naming the path when it is anything else or larger.
std::optional<std::string> read_regular_file_if_exists(const std::filesystem::path& path,
                                                       uint64_t max_bytes, bool follow_symlinks);

// Write to a temporary file in the same directory, fsync, rename over path, fsync the
// directory: a reader sees the old content or the new, never a torn file.
void write_file_atomic(const std::filesystem::path& path, std::string_view content);

// fsync a directory so a rename inside it survives a crash.
void fsync_directory(const std::filesystem::path& dir);

// Opens path read-only as a file that must be a regular one, before a byte of it is read,
// with the check open_regular(path, bool) makes, errors as errno: never through a symlink
// at its last component and never opening anything else (a fifo or a device would hang,
// never end, or act). Returns the descriptor with st filled; or -1 with errno set (ELOOP
// for a symlink and EINVAL for anything else that is not a regular file, st then filled
// with what it is; ESTALE when the file was replaced while it was opened).
int open_regular(const std::filesystem::path& path, struct stat& st);

// The same, for name in the directory dirfd (AT_FDCWD: the working directory); with
// follow_symlinks a symlink as the last component is followed. The one mechanism every
// open_regular uses.
int open_regular_in(int dirfd, const char* name, struct stat& st, bool follow_symlinks = false);

// Writes every byte of data to fd, through short writes and EINTR; at offset (pwrite, the
// file position untouched) unless it is -1. Returns false with errno set when a write fails.
bool write_all(int fd, std::string_view data, off_t offset = -1);

// Reads into buf until it is full or the file ends, through short reads and EINTR; from
// offset (pread, the file position untouched) unless it is -1. Returns the bytes read,
// fewer than size only at the end, or -1 with errno set.
ssize_t read_full(int fd, char* buf, size_t size, off_t offset = -1);

// Owns a file descriptor: closes it on destruction unless it is -1 or was released.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd();
  // Gives the descriptor up (to close it oneself and see the error).
  int release() {
    int f = fd;
    fd = -1;
    return f;
  }
};

// A directory that another party can write (a job's state dir): opened without following
// a symlink at its last component, and everything inside it reached through its
// descriptor (openat with O_NOFOLLOW), so a symlink planted inside never redirects a read
// or a write elsewhere. Every method throws Error naming the path on failure.
class Dir {
public:
  // Opens dir; with create, makes it (and its parents) first when it is missing.
  // Refuses a symlink or anything but a directory.
  static Dir open(const std::filesystem::path& dir, bool create);
  // Like open, but nullopt when dir does not exist (and create is false).
  static std::optional<Dir> open_if_exists(const std::filesystem::path& dir);

  Dir(Dir&& other) noexcept;
  Dir& operator=(Dir&& other) noexcept;
  Dir(const Dir&) = delete;
  Dir& operator=(const Dir&) = delete;
  ~Dir();

  const std::filesystem::path& path() const { return m_path; }
  int fd() const { return m_fd; }

  // The subdirectory name (one component), made when missing with create.
  Dir sub(std::string_view name, bool create) const;
  std::optional<Dir> sub_if_exists(std::string_view name) const;
  // A regular file's content (at most max_bytes); nullopt when it does not exist.
  std::optional<std::string> read(std::string_view name, uint64_t max_bytes) const;
  // Replaces name atomically (temporary file, fsync, rename, fsync of the directory);
  // a symlink planted at name is replaced, never written through.
  void write(std::string_view name, std::string_view content) const;
  // The names in the directory (not "." and ".."), sorted.
  std::vector<std::string> list() const;

private:
  Dir(int fd, std::filesystem::path path) : m_fd(fd), m_path(std::move(path)) {}
  int m_fd = -1;
  std::filesystem::path m_path;
};

// A fresh directory, removed with everything below it on destruction unless kept.
class TempDir {
public:
  explicit TempDir(const std::filesystem::path& parent = std::filesystem::temp_directory_path(),
                   std::string_view prefix = "ephemera");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return m_path; }
  void keep() { m_keep = true; }

private:
  std::filesystem::path m_path;
  bool m_keep = false;
};

// Join a job-visible absolute path under the --root directory: ("/scratch", "/home/x") ->
// "/scratch/home/x". With root "/" the path is returned unchanged.
std::filesystem::path rebase(const std::filesystem::path& root, const std::filesystem::path& path);

} // namespace ephemera::util
