#pragma once

#include <filesystem>
#include <optional>
#include <sys/stat.h>
#include <string>
#include <string_view>

namespace ephemera::util {

// Whole file as bytes; throws Error naming the path.
std::string read_file(const std::filesystem::path& path);
// Like read_file, but nullopt when the file does not exist.
std::optional<std::string> read_file_if_exists(const std::filesystem::path& path);

// Write to a temporary file in the same directory, fsync, rename over path, fsync the
// directory: a reader sees the old content or the new, never a torn file.
void write_file_atomic(const std::filesystem::path& path, std::string_view content);

// fsync a directory so a rename inside it survives a crash.
void fsync_directory(const std::filesystem::path& dir);

// A unique name beside target ("target.tmp.<pid>.<random>") for write-then-rename of the
// tool's own files (the state dir, the local store). Nothing ever removes a file because
// its name looks like one: a job's files may. The unpacker stages under names of its own
// (fixed length, recorded in a journal before they are made).
std::filesystem::path temp_name_beside(const std::filesystem::path& target);

// Opens path read-only as a file that must be a regular one, before a byte of it is read:
// never through a symlink at its last component and never blocking (a fifo or a device
// would hang or never end). Returns the descriptor, blocking again, with st filled; or -1
// with errno set (ELOOP for a symlink, EINVAL for anything else that is not a regular file).
int open_regular(const std::filesystem::path& path, struct stat& st);

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
