// The local store: every key is resolved from a descriptor of the root without following a
// symlink. Over 500 lines, and one file on purpose: the confinement helpers (the descriptor
// walk, the temporary names) and everything that touches the directory (the primitives, the
// listing walk, the leftovers) stay together, so that no code outside it can reach the file
// system around the root; a listing or a leftover cleaner of its own elsewhere would need
// those helpers in a header, and so a second way in.

#include "store/local.hpp"

#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/log.hpp"
#include "util/temp_name.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <dirent.h>
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

constexpr size_t k_buffer = 1 << 20;

[[noreturn]] void fail(const char* what, const fs::path& p, int err) {
  StoreErrorKind kind = err == ENOENT                   ? StoreErrorKind::not_found
                        : err == EACCES || err == EPERM ? StoreErrorKind::unauthorized
                                                        : StoreErrorKind::permanent;
  throw StoreError(kind, fmt::format("unable to {} {}: {}", what, p.string(), std::strerror(err)));
}

[[noreturn]] void refuse_symlink(const char* what, const fs::path& object, const fs::path& link) {
  throw StoreError(StoreErrorKind::permanent,
                   fmt::format("unable to {} {}: {} is a symlink, which the store never makes and "
                               "never follows",
                               what, object.string(), link.string()));
}

// Opens the directory `name` in dir without following a symlink. -1 with errno ELOOP when
// name is a symlink (openat says ENOTDIR for one with O_DIRECTORY), ENOTDIR when it is
// something else that is not a directory, ENOENT when it does not exist.
int open_dir(int dir, const std::string& name) {
  int fd = ::openat(dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 && (errno == ENOTDIR || errno == ELOOP)) {
    int err = errno;
    struct stat st {};
    bool link = ::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
    errno = link ? ELOOP : err;
  }
  return fd;
}

std::vector<std::string> components(const std::string& path) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t slash = path.find('/', start);
    out.push_back(
        path.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    if (slash == std::string::npos) {
      return out;
    }
    start = slash + 1;
  }
}

// A temporary file in an open directory, removed on destruction unless kept.
struct TempEntry {
  int dir;
  std::string name;
  bool keep = false;
  ~TempEntry() {
    if (!keep) {
      ::unlinkat(dir, name.c_str(), 0);
    }
  }
};

} // namespace

// The directories above an object, each opened from the one before it (the first from the
// root) without following a symlink, and held open so the object is reached relative to
// its own directory whatever is renamed meanwhile.
class LocalBackend::Parents {
public:
  Parents() = default;
  Parents(Parents&& other) noexcept
      : root(other.root), found(other.found), names(std::move(other.names)),
        fds(std::move(other.fds)) {
    other.fds.clear();
  }
  Parents(const Parents&) = delete;
  Parents& operator=(const Parents&) = delete;
  ~Parents() {
    for (int fd : fds) {
      ::close(fd);
    }
  }
  // The object's directory (only when found).
  int fd() const { return fds.empty() ? root : fds.back(); }
  const std::string& leaf() const { return names.back(); }

  int root = -1;
  bool found = true;              // false: a directory on the way does not exist
  std::vector<std::string> names; // the key's components
  std::vector<int> fds;           // of names[0] .. names[n-2], as far as they were opened
};

LocalBackend::LocalBackend(fs::path root) : m_root(std::move(root)) {}

LocalBackend::~LocalBackend() {
  if (m_root_fd >= 0) {
    ::close(m_root_fd);
  }
}

int LocalBackend::root_fd(bool create) {
  std::lock_guard lock(m_mutex);
  if (m_root_fd >= 0) {
    return m_root_fd;
  }
  if (create) {
    std::error_code ec;
    fs::create_directories(m_root, ec);
    if (ec) {
      fail("create the directory", m_root, ec.value());
    }
  }
  // The only path resolved as a whole, symlinks and all: the operator's.
  int fd = ::open(m_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT && !create) {
      return -1; // a store nothing was saved to yet
    }
    fail("open the store", m_root, errno);
  }
  m_root_fd = fd;
  return fd;
}

LocalBackend::Parents LocalBackend::parents(const std::string& key, const char* what, bool create) {
  check_key(key); // before anything is opened: no key may name a file outside the root
  Parents p;
  p.names = components(key);
  p.root = root_fd(create);
  if (p.root < 0) {
    p.found = false;
    return p;
  }
  std::string at;
  for (size_t i = 0; i + 1 < p.names.size(); ++i) {
    const std::string& name = p.names[i];
    at += (i == 0 ? "" : "/") + name;
    int dir = p.fd();
    int fd = open_dir(dir, name);
    if (fd < 0 && errno == ENOENT && create) {
      if (::mkdirat(dir, name.c_str(), 0777) != 0 && errno != EEXIST) {
        fail("create the directory", m_root / at, errno);
      }
      fd = open_dir(dir, name);
    }
    if (fd < 0 && errno == ELOOP) {
      refuse_symlink(what, path_of(key), m_root / at);
    }
    if (fd < 0 && !create && (errno == ENOENT || errno == ENOTDIR)) {
      p.found = false;
      return p;
    }
    if (fd < 0) {
      fail(create ? "create the directory" : what, m_root / at, errno);
    }
    p.fds.push_back(fd);
  }
  return p;
}

fs::path LocalBackend::path_of(const std::string& key) const {
  check_key(key); // before the join: no key may name a file outside the root
  return m_root / key;
}

std::optional<ObjectInfo> LocalBackend::stat(const std::string& key) {
  auto p = parents(key, "stat", false);
  if (!p.found) {
    return std::nullopt;
  }
  struct stat st {};
  if (::fstatat(p.fd(), p.leaf().c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) {
      return std::nullopt;
    }
    fail("stat", path_of(key), errno);
  }
  if (S_ISDIR(st.st_mode)) {
    return std::nullopt; // the directory of other keys, as a prefix is on S3: no object
  }
  if (!S_ISREG(st.st_mode)) {
    throw StoreError(
        StoreErrorKind::permanent,
        fmt::format("unable to stat {}: {}", path_of(key).string(),
                    S_ISLNK(st.st_mode) ? "it is a symlink" : "it is not a regular file"));
  }
  return ObjectInfo{key, static_cast<uint64_t>(st.st_size), st.st_mtim.tv_sec};
}

// The object, opened once: its size checked against what the caller expects and what the
// sink takes before a byte is read.
void LocalBackend::get(const std::string& key, Sink& sink) {
  auto p = path_of(key);
  util::Fd fd(open_local(key));
  struct stat st {};
  if (::fstat(fd.fd, &st) != 0) {
    fail("stat", p, errno);
  }
  auto size = sink.expected_size();
  if (size && static_cast<uint64_t>(st.st_size) != *size) {
    throw StoreError(StoreErrorKind::permanent,
                     fmt::format("{} is {} bytes, expected {}", p.string(), st.st_size, *size));
  }
  if (static_cast<uint64_t>(st.st_size) > sink.max_bytes()) {
    throw StoreError(StoreErrorKind::permanent,
                     fmt::format("unable to read {}: it is {} bytes, more than the {} it may be",
                                 p.string(), st.st_size, sink.max_bytes()));
  }
  std::vector<char> buf(k_buffer);
  while (true) {
    ssize_t n = util::read_full(fd.fd, buf.data(), buf.size());
    if (n < 0) {
      fail("read", p, errno);
    }
    if (n > 0) {
      sink.write(buf.data(), static_cast<size_t>(n));
    }
    if (static_cast<size_t>(n) < buf.size()) {
      break;
    }
  }
}

int LocalBackend::open_local(const std::string& key) {
  auto p = path_of(key);
  auto dirs = parents(key, "read", false);
  if (!dirs.found) {
    fail("read", p, ENOENT);
  }
  // Objects are regular files the store wrote: a symlink, fifo or device planted under an
  // object's name is refused before it is read (it could name any file, or never end).
  struct stat st {};
  int fd = util::open_regular_in(dirs.fd(), dirs.leaf().c_str(), st);
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

void LocalBackend::get_range(const std::string& key, uint64_t offset, uint64_t length, Sink& sink) {
  auto p = path_of(key);
  util::Fd fd(open_local(key));
  struct stat st {};
  if (::fstat(fd.fd, &st) != 0) {
    fail("stat", p, errno);
  }
  auto size = static_cast<uint64_t>(st.st_size);
  if (offset > size || length > size - offset) {
    throw StoreError(StoreErrorKind::permanent,
                     fmt::format("unable to read bytes {}-{} of {}: it is {} bytes", offset,
                                 offset + length, p.string(), size));
  }
  std::vector<char> buf(std::min<uint64_t>(length, k_buffer));
  while (length > 0) {
    size_t want = std::min<uint64_t>(buf.size(), length);
    ssize_t n = util::read_full(fd.fd, buf.data(), want, static_cast<off_t>(offset));
    if (n < 0) {
      fail("read", p, errno);
    }
    if (n > 0) {
      sink.write(buf.data(), static_cast<size_t>(n));
    }
    if (static_cast<size_t>(n) < want) {
      throw StoreError(StoreErrorKind::permanent,
                       fmt::format("{} shrank while it was read", p.string()));
    }
    offset += static_cast<uint64_t>(n);
    length -= static_cast<uint64_t>(n);
  }
}

void LocalBackend::put(const std::string& key, Source& source) {
  auto p = path_of(key);
  auto dirs = parents(key, "write", true);
  // The temporary name beside the object, in the directory already opened: O_EXCL creates
  // it afresh (never through a symlink), renameat replaces whatever has the object's name.
  TempEntry tmp{dirs.fd(), util::temp_name_beside(dirs.leaf()).string()};
  auto tmp_path = p.parent_path() / tmp.name;
  util::Fd fd(::openat(dirs.fd(), tmp.name.c_str(),
                       O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (fd.fd < 0) {
    tmp.keep = true; // not ours to remove
    fail("create", tmp_path, errno);
  }
  source.rewind();
  std::vector<char> buf(k_buffer);
  while (size_t n = source.read(buf.data(), buf.size())) {
    if (!util::write_all(fd.fd, std::string_view(buf.data(), n))) {
      fail("write", tmp_path, errno);
    }
  }
  if (::fsync(fd.fd) != 0 || ::close(fd.release()) != 0) {
    fail("write", tmp_path, errno);
  }
  if (::renameat(dirs.fd(), tmp.name.c_str(), dirs.fd(), dirs.leaf().c_str()) != 0) {
    fail("rename into place", p, errno);
  }
  tmp.keep = true;
  ::fsync(dirs.fd()); // so the rename survives a crash
}

std::vector<ObjectInfo> LocalBackend::list(const std::string& prefix) {
  return scan(prefix, false);
}

std::vector<Leftover> LocalBackend::leftovers(const std::string& prefix) {
  std::vector<Leftover> out;
  for (auto& o : scan(prefix, true)) {
    out.push_back(Leftover{std::move(o.key), "", o.size, o.mtime});
  }
  return out;
}

void LocalBackend::remove_leftover(const Leftover& leftover) {
  auto slash = leftover.key.rfind('/');
  if (!leftover.upload.empty() ||
      !util::is_temp_name(leftover.key.substr(slash == std::string::npos ? 0 : slash + 1))) {
    throw StoreError(StoreErrorKind::permanent,
                     fmt::format("refusing to remove {} as a leftover: not a temporary file's name",
                                 util::printable(url(leftover.key))));
  }
  remove(leftover.key);
}

namespace {

// What a listing skipped: counted, and the first named in one warning.
struct Skipped {
  uint64_t count = 0;
  std::string first;
  void add(const std::string& key) {
    if (count++ == 0) {
      first = key.substr(0, 200);
    }
  }
};

// One walk of the directories below a prefix, from descriptors, following no symlink.
struct Walk {
  const fs::path& root;
  bool temps;
  std::vector<ObjectInfo> out;
  Skipped bad_names; // file names no key can have (a control byte): never handed on
  Skipped symlinks;

  // The entries of the directory fd (owned; `rel` is its path below the root with a
  // trailing '/', or "") whose names start with tail, and everything below those.
  void dir(int fd, const std::string& rel, std::string_view tail) {
    DIR* d = ::fdopendir(fd);
    if (d == nullptr) {
      int err = errno;
      ::close(fd);
      fail("list", root / rel, err);
    }
    std::unique_ptr<DIR, int (*)(DIR*)> guard(d, ::closedir);
    std::vector<std::string> subdirs;
    struct dirent* e = nullptr;
    for (errno = 0; (e = ::readdir(d)) != nullptr; errno = 0) {
      std::string name = e->d_name;
      if (name == "." || name == ".." || name.compare(0, tail.size(), tail) != 0) {
        continue;
      }
      std::string key = rel + name;
      struct stat st {};
      if (::fstatat(::dirfd(d), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) {
          continue; // removed meanwhile
        }
        fail("list", root / key, errno);
      }
      if (S_ISLNK(st.st_mode)) {
        symlinks.add(key);
      } else if (S_ISDIR(st.st_mode)) {
        subdirs.push_back(std::move(name));
      } else if (S_ISREG(st.st_mode) && util::is_temp_name(name) == temps) {
        if (valid_key(key)) {
          out.push_back({key, static_cast<uint64_t>(st.st_size), st.st_mtim.tv_sec});
        } else {
          bad_names.add(key);
        }
      }
    }
    if (errno != 0) {
      fail("list", root / rel, errno);
    }
    for (const auto& name : subdirs) {
      std::string key = rel + name;
      if (key.size() >= 1024) {
        continue; // keys are at most 1024 bytes: none lies below
      }
      int sub = open_dir(::dirfd(d), name);
      if (sub < 0 && errno == ELOOP) {
        symlinks.add(key); // made a symlink since it was read
        continue;
      }
      if (sub < 0 && (errno == ENOENT || errno == ENOTDIR)) {
        continue;
      }
      if (sub < 0) {
        fail("list", root / key, errno);
      }
      dir(sub, key + "/", "");
    }
  }
};

} // namespace

// Objects below prefix, or (temps) only the temporary files of interrupted puts.
std::vector<ObjectInfo> LocalBackend::scan(const std::string& prefix, bool temps) {
  check_prefix(prefix);
  Walk walk{m_root, temps, {}, {}, {}};
  int root = root_fd(false);
  if (root < 0) {
    return {};
  }
  // The directories the prefix names, then the walk from the last of them.
  auto slash = prefix.rfind('/');
  std::vector<std::string> names =
      slash == std::string::npos ? std::vector<std::string>{} : components(prefix.substr(0, slash));
  std::string rel;
  int fd = ::dup(root); // the walk owns its descriptor
  if (fd < 0) {
    fail("list", m_root, errno);
  }
  for (const auto& name : names) {
    int next = open_dir(fd, name);
    int err = errno;
    ::close(fd);
    fd = next;
    rel += name;
    if (fd < 0 && err == ELOOP) {
      walk.symlinks.add(rel);
      break;
    }
    if (fd < 0 && (err == ENOENT || err == ENOTDIR)) {
      break;
    }
    if (fd < 0) {
      fail("list", m_root / rel, err);
    }
    rel += '/';
  }
  if (fd >= 0) {
    walk.dir(fd, rel,
             slash == std::string::npos ? std::string_view(prefix)
                                        : std::string_view(prefix).substr(slash + 1));
  }
  if (walk.bad_names.count != 0) {
    util::log::warn("skipping {} file(s) in {} whose names are not object keys, such as '{}'",
                    walk.bad_names.count, m_root.string(), util::printable(walk.bad_names.first));
  }
  if (walk.symlinks.count != 0) {
    warn_once(fmt::format("skipping {} symlink(s) in {}, such as '{}': the store never makes one "
                          "and follows none",
                          walk.symlinks.count, m_root.string(),
                          util::printable(walk.symlinks.first)));
  }
  auto out = std::move(walk.out);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.key < b.key; });
  return out;
}

void LocalBackend::warn_once(const std::string& message) {
  std::lock_guard lock(m_mutex);
  if (m_warned.insert(message).second) {
    util::log::warn("{}", message);
  }
}

void LocalBackend::remove(const std::string& key) {
  auto p = parents(key, "remove", false);
  if (!p.found) {
    return;
  }
  // unlinkat removes the name itself: an object that is a symlink loses the link only.
  if (::unlinkat(p.fd(), p.leaf().c_str(), 0) != 0 && errno != ENOENT) {
    fail("remove", path_of(key), errno);
  }
  // Drop directories left empty, up to the root, each by its name in its open parent.
  for (size_t i = p.fds.size(); i-- > 0;) {
    int parent = i == 0 ? p.root : p.fds[i - 1];
    if (::unlinkat(parent, p.names[i].c_str(), AT_REMOVEDIR) != 0) {
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
