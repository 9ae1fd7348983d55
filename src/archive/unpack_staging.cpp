#include "archive/unpack_staging.hpp"

#include "archive/unpack_checks.hpp"
#include "util/error.hpp"
#include "util/temp_name.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

namespace ephemera::archive {

namespace fs = std::filesystem;
using util::ArchiveError;

namespace detail {

namespace {

// Directory descriptors kept open (entries come grouped by directory).
constexpr size_t k_open_dirs = 128;

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
    std::string part =
        rel.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    start = slash == std::string::npos ? rel.size() : slash + 1;
    int next = ::openat(fd, part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int err = errno;
    ::close(fd);
    errno = err;
    fd = next;
  }
  return fd;
}

} // namespace

Journal::~Journal() {
  if (m_fd >= 0) {
    ::close(m_fd);
  }
}

void Journal::add(const std::string& base, const std::string& rel, const std::string& name) {
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
    m_fd = ::open(m_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_APPEND | O_CLOEXEC,
                  0600);
    if (m_fd < 0) {
      throw ArchiveError(fmt::format("unable to create the journal {}: {}", m_path.string(),
                                     std::strerror(errno)));
    }
  }
  if (!util::write_all(m_fd, record)) {
    throw ArchiveError(
        fmt::format("unable to write the journal {}: {}", m_path.string(), std::strerror(errno)));
  }
  if (first) {
    ::fsync(m_fd);
    util::fsync_directory(m_path.parent_path());
  }
}

void Journal::remove() {
  if (m_fd >= 0) {
    ::close(m_fd);
    m_fd = -1;
    ::unlink(m_path.c_str());
  }
}

Staging::~Staging() {
  if (!m_committed) {
    rollback();
  }
  m_journal.remove();
}

void Staging::directory_entry(const std::string& name, const std::string& base,
                              const std::string& rel, uint32_t mode, int64_t sec, long nsec) {
  m_dir_meta.push_back({&directory(name, base, rel), mode, sec, nsec});
}

std::string Staging::place(const std::string& name, const std::string& final, const Dir& parent,
                           const FdRef& dirfd, const std::string& leaf) {
  m_nondirs.insert(final);
  if (parent.fresh) {
    return leaf;
  }
  struct stat existing {};
  if (::fstatat(dirfd->fd, leaf.c_str(), &existing, AT_SYMLINK_NOFOLLOW) == 0 &&
      S_ISDIR(existing.st_mode)) {
    refuse(name, "a directory exists where the archive has a file or link");
  }
  std::string target = stage(parent);
  m_touched.insert(&parent);
  m_staged_files.push_back({&parent, target, leaf});
  return target;
}

const Dir& Staging::directory(const std::string& name, const std::string& base,
                              const std::string& rel) {
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
    std::string part =
        rel.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
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
        refuse(name, errno == EEXIST
                         ? "a file or link of the archive is where it has a directory"
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
std::string Staging::stage(const Dir& dir) {
  std::string n = util::temp_name();
  m_journal.add(dir.base, dir.rel, n);
  return n;
}

// An anchor's base is opened by its path (the anchors are the agent's configuration: a
// $HOME that is a symlink it set up keeps working); nothing below it is followed.
struct timespec Staging::make_base(const std::string& name, const std::string& base) {
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
      throw ArchiveError(fmt::format("unable to create {} for '{}': {}", it->string(), name,
                                     std::strerror(errno)));
    }
  }
  return {0, UTIME_OMIT};
}

FdRef Staging::open_dir(const Dir& dir, const std::string& name) {
  if (auto it = m_bases.find(&dir); it != m_bases.end()) {
    return it->second;
  }
  if (auto it = m_fds.find(&dir); it != m_fds.end()) {
    m_lru.splice(m_lru.begin(), m_lru, it->second.second);
    return it->second.first;
  }
  int fd = dir.parent == nullptr ? ::open(dir.physical.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                                 : ::openat(open_dir(*dir.parent, name)->fd, dir.leaf.c_str(),
                                            O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    throw ArchiveError(fmt::format("unable to open {} for '{}': {}", dir.physical, name,
                                   errno == ELOOP ? "it became a symlink" : std::strerror(errno)));
  }
  auto ref = std::make_shared<util::Fd>(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    throw ArchiveError(fmt::format("unable to examine {}: {}", dir.physical, std::strerror(errno)));
  }
  if (dir.ino == 0) {
    dir.dev = st.st_dev;
    dir.ino = st.st_ino;
  } else if (dir.dev != st.st_dev || dir.ino != st.st_ino) {
    throw ArchiveError(fmt::format("refused entry '{}': {} was replaced while it was restored",
                                   name, dir.physical));
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

void Staging::commit() {
  for (const auto& f : m_staged_files) {
    FdRef d = open_dir(*f.dir, f.final);
    if (::renameat(d->fd, f.staged.c_str(), d->fd, f.final.c_str()) != 0) {
      throw ArchiveError(fmt::format("unable to move {}/{} into place: {}", f.dir->physical,
                                     f.final, std::strerror(errno)));
    }
  }
  // Never one inside another: inside a staged directory, directories are made directly.
  for (auto& [dir, final] : m_staged_dirs) {
    FdRef d = open_dir(*dir->parent, final);
    if (::renameat(d->fd, dir->leaf.c_str(), d->fd, final.c_str()) != 0) {
      throw ArchiveError(fmt::format("unable to move {}/{} into place: {}", dir->parent->physical,
                                     final, std::strerror(errno)));
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

void Staging::rollback() {
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

} // namespace detail

using detail::open_below;
using detail::remove_tree_at;
using detail::safe_name;

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

} // namespace ephemera::archive
