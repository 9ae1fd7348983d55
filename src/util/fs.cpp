#include "util/fs.hpp"

#include "util/error.hpp"
#include "util/temp_name.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ephemera::util {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail(std::string_view what, const fs::path& path) {
  throw Error(fmt::format("unable to {} {}: {}", what, path.string(), std::strerror(errno)));
}

const char* kind_of(mode_t mode) {
  if (S_ISDIR(mode)) {
    return "a directory";
  }
  if (S_ISFIFO(mode)) {
    return "a fifo";
  }
  if (S_ISSOCK(mode)) {
    return "a socket";
  }
  if (S_ISCHR(mode)) {
    return "a character device";
  }
  if (S_ISBLK(mode)) {
    return "a block device";
  }
  if (S_ISLNK(mode)) {
    return "a symbolic link";
  }
  return S_ISREG(mode) ? "a regular file" : "of an unknown type";
}

// open_regular relative to dirfd (AT_FDCWD for a plain path); shown names it in errors.
int open_regular_at(int dirfd, const char* name, bool follow_symlinks, const fs::path& shown) {
  struct stat st {};
  int fd = open_regular_in(dirfd, name, st, follow_symlinks);
  if (fd >= 0 || errno == ENOENT) {
    return fd;
  }
  if (errno == ELOOP || errno == EINVAL) {
    throw Error(fmt::format("{}: {}, not a regular file: refusing to read it", shown.string(),
                            kind_of(st.st_mode)));
  }
  if (errno == ESTALE) {
    throw Error(
        fmt::format("{}: replaced while it was opened: refusing to read it", shown.string()));
  }
  fail("open", shown);
}

// Reads all of fd, at most max_bytes (more is an error naming shown); closes fd.
std::string read_bounded(int fd, uint64_t max_bytes, const fs::path& shown) {
  Fd holder(fd);
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = read_full(fd, buf, sizeof buf);
    if (n < 0) {
      fail("read", shown);
    }
    if (out.size() + static_cast<size_t>(n) > max_bytes) {
      throw Error(
          fmt::format("{}: larger than {} bytes: refusing to read it", shown.string(), max_bytes));
    }
    out.append(buf, static_cast<size_t>(n));
    if (static_cast<size_t>(n) < sizeof buf) {
      return out;
    }
  }
}

} // namespace

int open_regular(const fs::path& path, bool follow_symlinks) {
  return open_regular_at(AT_FDCWD, path.c_str(), follow_symlinks, path);
}

std::optional<std::string> read_regular_file_if_exists(const fs::path& path, uint64_t max_bytes,
                                                       bool follow_symlinks) {
  int fd = open_regular(path, follow_symlinks);
  if (fd < 0) {
    return std::nullopt;
  }
  return read_bounded(fd, max_bytes, path);
}

namespace {

// One path component, as Dir's methods take them.
void check_component(std::string_view name, const fs::path& dir) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string_view::npos) {
    throw Error(fmt::format("{}: '{}' is not a file name", dir.string(), name));
  }
}

int open_directory_at(int dirfd, const char* name, const fs::path& shown) {
  int fd = ::openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0) {
    return fd;
  }
  if (errno == ELOOP || errno == ENOTDIR) {
    struct stat st {};
    const char* what = ::fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 ? kind_of(st.st_mode)
                                                                             : "not a directory";
    throw Error(fmt::format("{}: {}, not a directory: refusing to use it", shown.string(), what));
  }
  if (errno == ENOENT) {
    return -1;
  }
  fail("open directory", shown);
}

} // namespace

Dir Dir::open(const fs::path& dir, bool create) {
  if (create) {
    std::error_code ec;
    if (dir.has_parent_path()) {
      fs::create_directories(dir.parent_path(), ec); // a failure shows in the open below
    }
    if (::mkdir(dir.c_str(), 0777) != 0 && errno != EEXIST) {
      fail("create directory", dir);
    }
  }
  int fd = open_directory_at(AT_FDCWD, dir.c_str(), dir);
  if (fd < 0) {
    errno = ENOENT;
    fail("open directory", dir);
  }
  return Dir(fd, dir);
}

std::optional<Dir> Dir::open_if_exists(const fs::path& dir) {
  int fd = open_directory_at(AT_FDCWD, dir.c_str(), dir);
  if (fd < 0) {
    return std::nullopt;
  }
  return Dir(fd, dir);
}

Dir::Dir(Dir&& other) noexcept : m_fd(other.m_fd), m_path(std::move(other.m_path)) {
  other.m_fd = -1;
}

Dir& Dir::operator=(Dir&& other) noexcept {
  if (this != &other) {
    if (m_fd >= 0) {
      ::close(m_fd);
    }
    m_fd = other.m_fd;
    m_path = std::move(other.m_path);
    other.m_fd = -1;
  }
  return *this;
}

Dir::~Dir() {
  if (m_fd >= 0) {
    ::close(m_fd);
  }
}

Dir Dir::sub(std::string_view name, bool create) const {
  check_component(name, m_path);
  std::string n(name);
  fs::path shown = m_path / n;
  if (create && ::mkdirat(m_fd, n.c_str(), 0777) != 0 && errno != EEXIST) {
    fail("create directory", shown);
  }
  int fd = open_directory_at(m_fd, n.c_str(), shown);
  if (fd < 0) {
    errno = ENOENT;
    fail("open directory", shown);
  }
  return Dir(fd, shown);
}

std::optional<Dir> Dir::sub_if_exists(std::string_view name) const {
  check_component(name, m_path);
  std::string n(name);
  int fd = open_directory_at(m_fd, n.c_str(), m_path / n);
  if (fd < 0) {
    return std::nullopt;
  }
  return Dir(fd, m_path / n);
}

std::optional<std::string> Dir::read(std::string_view name, uint64_t max_bytes) const {
  check_component(name, m_path);
  std::string n(name);
  fs::path shown = m_path / n;
  int fd = open_regular_at(m_fd, n.c_str(), false, shown);
  if (fd < 0) {
    return std::nullopt;
  }
  return read_bounded(fd, max_bytes, shown);
}

void Dir::write(std::string_view name, std::string_view content) const {
  check_component(name, m_path);
  std::string n(name);
  std::string tmp = temp_name_beside(n).string();
  fs::path shown = m_path / tmp;
  int fd = ::openat(m_fd, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) {
    fail("create", shown);
  }
  auto give_up = [&](const char* what) {
    int e = errno;
    ::unlinkat(m_fd, tmp.c_str(), 0);
    errno = e;
    fail(what, shown);
  };
  if (!write_all(fd, content)) {
    int e = errno;
    ::close(fd);
    errno = e;
    give_up("write");
  }
  if (::fsync(fd) != 0) {
    int e = errno;
    ::close(fd);
    errno = e;
    give_up("write");
  }
  if (::close(fd) != 0) {
    give_up("write");
  }
  if (::renameat(m_fd, tmp.c_str(), m_fd, n.c_str()) != 0) {
    int e = errno;
    ::unlinkat(m_fd, tmp.c_str(), 0);
    errno = e;
    fail("rename into place", m_path / n);
  }
  ::fsync(m_fd);
}

std::vector<std::string> Dir::list() const {
  int fd = ::openat(m_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    fail("list", m_path);
  }
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    int e = errno;
    ::close(fd);
    errno = e;
    fail("list", m_path);
  }
  std::vector<std::string> out;
  while (const dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n != "." && n != "..") {
      out.emplace_back(n);
    }
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<std::string> read_file_if_exists(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      return std::nullopt;
    }
    fail("open", path);
  }
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = read_full(fd, buf, sizeof buf);
    if (n < 0) {
      int e = errno;
      ::close(fd);
      errno = e;
      fail("read", path);
    }
    out.append(buf, static_cast<size_t>(n));
    if (static_cast<size_t>(n) < sizeof buf) {
      break;
    }
  }
  ::close(fd);
  return out;
}

std::string read_file(const fs::path& path) {
  auto content = read_file_if_exists(path);
  if (!content) {
    errno = ENOENT;
    fail("read", path);
  }
  return *content;
}

int open_regular(const fs::path& path, struct stat& st) {
  return open_regular_in(AT_FDCWD, path.c_str(), st);
}

int open_regular_in(int dirfd, const char* name, struct stat& st, bool follow_symlinks) {
  // O_PATH opens nothing: a fifo cannot block and a device is not acted on. With
  // O_NOFOLLOW it names the symlink itself, which fstat then shows.
  int path_fd = ::openat(dirfd, name, O_PATH | O_CLOEXEC | (follow_symlinks ? 0 : O_NOFOLLOW));
  if (path_fd < 0) {
    return -1;
  }
  Fd holder(path_fd);
  if (::fstat(path_fd, &st) != 0) {
    return -1;
  }
  if (!S_ISREG(st.st_mode)) {
    errno = S_ISLNK(st.st_mode) ? ELOOP : EINVAL;
    return -1;
  }
  // Reopen the very file checked; without /proc, open the name again and make sure it
  // is still that file (O_NONBLOCK and O_NOCTTY keep a swapped-in fifo or tty harmless).
  int fd = ::open(fmt::format("/proc/self/fd/{}", path_fd).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    fd =
        ::openat(dirfd, name,
                 O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY | (follow_symlinks ? 0 : O_NOFOLLOW));
  }
  if (fd < 0) {
    return -1;
  }
  struct stat again {};
  if (::fstat(fd, &again) != 0 || again.st_dev != st.st_dev || again.st_ino != st.st_ino) {
    ::close(fd);
    errno = ESTALE;
    return -1;
  }
  if (int flags = ::fcntl(fd, F_GETFL);
      flags < 0 || ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
    int e = errno;
    ::close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

bool write_all(int fd, std::string_view data, off_t offset) {
  for (size_t done = 0; !data.empty();) {
    ssize_t n = offset < 0
                    ? ::write(fd, data.data(), data.size())
                    : ::pwrite(fd, data.data(), data.size(), offset + static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
    done += static_cast<size_t>(n);
  }
  return true;
}

ssize_t read_full(int fd, char* buf, size_t size, off_t offset) {
  size_t done = 0;
  while (done < size) {
    ssize_t n = offset < 0
                    ? ::read(fd, buf + done, size - done)
                    : ::pread(fd, buf + done, size - done, offset + static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return -1;
    }
    if (n == 0) {
      break;
    }
    done += static_cast<size_t>(n);
  }
  return static_cast<ssize_t>(done);
}

Fd::~Fd() {
  if (fd >= 0) {
    ::close(fd);
  }
}

void fsync_directory(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    fail("open directory", dir);
  }
  ::fsync(fd);
  ::close(fd);
}

void write_file_atomic(const fs::path& path, std::string_view content) {
  fs::path tmp = temp_name_beside(path);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    fail("create", tmp);
  }
  if (!write_all(fd, content)) {
    int e = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    errno = e;
    fail("write", tmp);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    errno = e;
    fail("write", tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    errno = e;
    fail("rename into place", path);
  }
  fsync_directory(path.has_parent_path() ? path.parent_path() : fs::path("."));
}

TempDir::TempDir(const fs::path& parent, std::string_view prefix) {
  fs::create_directories(parent);
  std::string templ = (parent / (std::string(prefix) + ".XXXXXX")).string();
  if (::mkdtemp(templ.data()) == nullptr) {
    fail("create a temporary directory in", parent);
  }
  m_path = templ;
}

TempDir::~TempDir() {
  if (!m_keep) {
    std::error_code ec;
    fs::remove_all(m_path, ec);
  }
}

fs::path rebase(const fs::path& root, const fs::path& path) {
  if (root.empty() || root == "/") {
    return path;
  }
  return root / path.relative_path();
}

} // namespace ephemera::util
