#include "store/local.hpp"

#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/log.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace ephemera::store {

namespace fs = std::filesystem;
using util::StoreError;
using util::StoreErrorKind;

namespace {

[[noreturn]] void fail(const char* what, const fs::path& p, int err) {
  StoreErrorKind kind = err == ENOENT                  ? StoreErrorKind::not_found
                        : err == EACCES || err == EPERM ? StoreErrorKind::unauthorized
                                                        : StoreErrorKind::permanent;
  throw StoreError(kind, fmt::format("unable to {} {}: {}", what, p.string(), std::strerror(err)));
}

bool is_temp(const std::string& name) { return name.find(".tmp.") != std::string::npos; }

} // namespace

LocalBackend::LocalBackend(fs::path root) : m_root(std::move(root)) {}

fs::path LocalBackend::path_of(const std::string& key) const {
  check_key(key); // before the join: no key may name a file outside the root
  return m_root / key;
}

std::optional<ObjectInfo> LocalBackend::stat(const std::string& key) {
  struct stat st {};
  if (::stat(path_of(key).c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) {
      return std::nullopt;
    }
    fail("stat", path_of(key), errno);
  }
  return ObjectInfo{key, static_cast<uint64_t>(st.st_size), st.st_mtim.tv_sec};
}

void LocalBackend::get(const std::string& key, Sink& sink) {
  auto p = path_of(key);
  int fd = open_local(key);
  util::Fd closer(fd);
  struct stat st {};
  if (::fstat(fd, &st) == 0 && static_cast<uint64_t>(st.st_size) > sink.max_bytes()) {
    throw StoreError(StoreErrorKind::permanent,
                     fmt::format("unable to read {}: it is {} bytes, more than the {} it may be",
                                 p.string(), st.st_size, sink.max_bytes()));
  }
  std::vector<char> buf(1 << 20);
  while (true) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      fail("read", p, errno);
    }
    if (n == 0) {
      break;
    }
    sink.write(buf.data(), static_cast<size_t>(n));
  }
}

int LocalBackend::open_local(const std::string& key) {
  auto p = path_of(key);
  // Objects are regular files the store wrote: a symlink, fifo or device planted under an
  // object's name is refused before it is read (it could name any file, or never end).
  struct stat st {};
  int fd = util::open_regular(p, st);
  if (fd < 0 && (errno == ELOOP || errno == EINVAL)) {
    throw StoreError(StoreErrorKind::permanent,
                     fmt::format("unable to read {}: {}", p.string(),
                                 errno == ELOOP ? "it is a symlink" : "it is not a regular file"));
  }
  if (fd < 0) {
    fail("read", p, errno == ENOTDIR ? ENOENT : errno);
  }
  return fd;
}

void LocalBackend::get_sized(const std::string& key, uint64_t size, Sink& sink) {
  if (auto st = stat(key); st && st->size != size) {
    throw StoreError(StoreErrorKind::permanent,
                     fmt::format("{} is {} bytes, expected {}", path_of(key).string(), st->size, size));
  }
  get(key, sink);
}

void LocalBackend::get_range(const std::string& key, uint64_t offset, uint64_t length, Sink& sink) {
  auto p = path_of(key);
  int fd = open_local(key);
  util::Fd closer(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    fail("stat", p, errno);
  }
  auto size = static_cast<uint64_t>(st.st_size);
  if (offset > size || length > size - offset) {
    throw StoreError(StoreErrorKind::permanent,
                     fmt::format("unable to read bytes {}-{} of {}: it is {} bytes", offset,
                                 offset + length, p.string(), size));
  }
  std::vector<char> buf(std::min<uint64_t>(length, 1 << 20));
  while (length > 0) {
    ssize_t n = ::pread(fd, buf.data(), std::min<uint64_t>(buf.size(), length), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      fail("read", p, errno);
    }
    if (n == 0) {
      throw StoreError(StoreErrorKind::permanent, fmt::format("{} shrank while it was read", p.string()));
    }
    sink.write(buf.data(), static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
    length -= static_cast<uint64_t>(n);
  }
}

void LocalBackend::put(const std::string& key, Source& source) {
  auto p = path_of(key);
  std::error_code ec;
  fs::create_directories(p.parent_path(), ec);
  if (ec) {
    fail("create the directory", p.parent_path(), ec.value());
  }
  auto tmp = util::temp_name_beside(p);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    fail("create", tmp, errno);
  }
  source.rewind();
  std::vector<char> buf(1 << 20);
  auto abandon = [&](int err) {
    ::close(fd);
    ::unlink(tmp.c_str());
    fail("write", tmp, err);
  };
  while (size_t n = source.read(buf.data(), buf.size())) {
    size_t done = 0;
    while (done < n) {
      ssize_t w = ::write(fd, buf.data() + done, n - done);
      if (w < 0 && errno == EINTR) {
        continue;
      }
      if (w < 0) {
        abandon(errno);
      }
      done += static_cast<size_t>(w);
    }
  }
  if (::fsync(fd) != 0) {
    abandon(errno);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), p.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    fail("rename into place", p, err);
  }
  util::fsync_directory(p.parent_path());
}

std::vector<ObjectInfo> LocalBackend::list(const std::string& prefix) { return scan(prefix, false); }

std::vector<ObjectInfo> LocalBackend::leftovers(const std::string& prefix) { return scan(prefix, true); }

// Objects below prefix, or (temps) only the temporary files of interrupted puts.
std::vector<ObjectInfo> LocalBackend::scan(const std::string& prefix, bool temps) {
  check_prefix(prefix);
  std::vector<ObjectInfo> out;
  size_t skipped = 0;
  std::string first_skipped;
  auto slash = prefix.rfind('/');
  fs::path dir = slash == std::string::npos ? m_root : m_root / prefix.substr(0, slash);
  std::error_code ec;
  struct stat st {};
  if (::stat(m_root.c_str(), &st) != 0) {
    if (errno == ENOENT) {
      return out; // a store nothing was saved to yet
    }
    fail("list", m_root, errno);
  }
  if (!S_ISDIR(st.st_mode)) {
    fail("list", m_root, ENOTDIR);
  }
  if (!fs::is_directory(dir, ec)) {
    return out;
  }
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!it->is_regular_file(ec)) {
      continue;
    }
    std::string key = fs::relative(it->path(), m_root, ec).string();
    if (key.rfind(prefix, 0) != 0 || is_temp(it->path().filename().string()) != temps) {
      continue;
    }
    if (!valid_key(key)) { // a file name no key can have (a control byte): never handed on
      first_skipped = skipped++ == 0 ? key : first_skipped;
      continue;
    }
    struct stat st {};
    if (::stat(it->path().c_str(), &st) == 0) {
      out.push_back({key, static_cast<uint64_t>(st.st_size), st.st_mtim.tv_sec});
    }
  }
  if (ec) {
    fail("list", dir, ec.value());
  }
  if (skipped != 0) {
    util::log::warn("skipping {} file(s) in {} whose names are not object keys, such as '{}'",
                    skipped, m_root.string(), util::printable(first_skipped.substr(0, 200)));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.key < b.key; });
  return out;
}

// Walks down the key's folders one at a time without following a symlink, then unlinks the
// last component in the folder reached: a folder swapped for a symlink after gc listed it can
// never make gc (which runs as root) unlink a file outside the store.
void LocalBackend::remove(const std::string& key) {
  auto p = path_of(key);
  std::vector<std::string> parts;
  for (size_t start = 0; start <= key.size();) {
    size_t end = std::min(key.find('/', start), key.size());
    parts.push_back(key.substr(start, end - start));
    start = end + 1;
  }
  std::vector<std::unique_ptr<util::Fd>> dirs;
  dirs.push_back(
      std::make_unique<util::Fd>(::open(m_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)));
  if (dirs.back()->fd < 0) {
    if (errno == ENOENT) {
      return;
    }
    fail("remove", p, errno);
  }
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    int fd = ::openat(dirs.back()->fd, parts[i].c_str(),
                      O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) {
        return; // already gone
      }
      fail("remove", p, errno == ELOOP ? ENOTDIR : errno); // a symlink on the way
    }
    dirs.push_back(std::make_unique<util::Fd>(fd));
  }
  if (::unlinkat(dirs.back()->fd, parts.back().c_str(), 0) != 0 && errno != ENOENT) {
    fail("remove", p, errno);
  }
  // Drop folders left empty, up to the root.
  for (size_t i = parts.size() - 1; i > 0; --i) {
    if (::unlinkat(dirs[i - 1]->fd, parts[i - 1].c_str(), AT_REMOVEDIR) != 0) {
      break;
    }
  }
}

std::string LocalBackend::url(const std::string& key) const {
  if (!valid_key(key)) { // named in a message about it, never joined to the root
    return "file://" + fs::absolute(m_root).lexically_normal().string() + "/" +
           util::printable(key.substr(0, 200));
  }
  return "file://" + fs::absolute(path_of(key)).lexically_normal().string();
}

} // namespace ephemera::store
