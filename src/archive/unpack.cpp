#include "archive/archive.hpp"

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
#include <map>
#include <memory>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

namespace ephemera::archive {

namespace fs = std::filesystem;
using util::ArchiveError;

namespace {

// Pieces of file data this size that are all zeros are left as holes.
constexpr size_t k_hole_piece = 64 * 1024;

struct ReadDeleter {
  void operator()(struct archive* a) const { archive_read_free(a); }
};

struct Staged {
  fs::path tmp;
  fs::path final;
};

struct DirMeta {
  fs::path path;
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

class Unpacker {
public:
  explicit Unpacker(const UnpackOptions& options) : m_options(options) {}

  ~Unpacker() {
    if (!m_committed) {
      rollback();
    }
  }

  void run(const fs::path& file, UnpackResult& result) {
    std::unique_ptr<struct archive, ReadDeleter> a(archive_read_new());
    archive_read_support_filter_zstd(a.get());
    archive_read_support_format_tar(a.get());
    if (archive_read_open_filename(a.get(), file.c_str(), 1 << 20) != ARCHIVE_OK) {
      throw ArchiveError(fmt::format("not a tar.zst archive: {}", archive_error_string(a.get())));
    }
    archive_entry* e = nullptr;
    while (true) {
      int r = archive_read_next_header(a.get(), &e);
      if (r == ARCHIVE_EOF) {
        break;
      }
      if (r < ARCHIVE_WARN) {
        throw ArchiveError(fmt::format("corrupt archive after {} entries: {}", result.files + result.directories + result.symlinks,
                                       archive_error_string(a.get())));
      }
      entry(a.get(), e, result);
    }
    commit();
  }

private:
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
    ItemType kind;
    if (hardlink != nullptr) {
      kind = ItemType::file;
    } else if (type == AE_IFREG) {
      kind = ItemType::file;
    } else if (type == AE_IFDIR) {
      kind = ItemType::directory;
    } else if (type == AE_IFLNK) {
      kind = ItemType::symlink;
    } else {
      refuse(name, "device nodes, fifos and sockets are never restored");
    }
    auto mode = static_cast<uint32_t>(archive_entry_perm(e));
    if ((mode & 06000) != 0) {
      refuse(name, "set-user-id and set-group-id bits are never restored");
    }
    for (size_t slash = name.find('/'); slash != std::string::npos; slash = name.find('/', slash + 1)) {
      if (m_symlinks.count(name.substr(0, slash)) != 0) {
        refuse(name, "it would be written through a symlink of the same archive");
      }
    }
    auto dest = m_options.resolve(name, kind);
    if (!dest) {
      refuse(name, "not a path the stanza's rules admit");
    }
    fs::path final = prepare_parents(name, *dest);
    if (!m_finals.insert(final).second) {
      refuse(name, "the archive holds it twice");
    }
    struct stat existing {};
    bool exists = ::lstat(final.c_str(), &existing) == 0;
    int64_t sec = archive_entry_mtime(e);
    long nsec = archive_entry_mtime_nsec(e);
    if (kind == ItemType::directory) {
      if (exists && !S_ISDIR(existing.st_mode)) {
        refuse(name, "a file or link exists where the archive has a directory");
      }
      if (!exists) {
        make_dir(final, name);
      }
      m_dirs.push_back({final, mode, sec, nsec});
      ++result.directories;
      return;
    }
    if (exists && S_ISDIR(existing.st_mode)) {
      refuse(name, "a directory exists where the archive has a file or link");
    }
    fs::path tmp = util::temp_name_beside(final);
    if (hardlink != nullptr) {
      auto it = m_files.find(hardlink);
      if (it == m_files.end()) {
        refuse(name, fmt::format("a hard link to '{}', which is not an earlier file of the archive", hardlink));
      }
      if (::link(it->second.c_str(), tmp.c_str()) != 0) {
        refuse(name, fmt::format("unable to link: {}", std::strerror(errno)));
      }
      m_staged.push_back({tmp, final});
      ++result.files;
      return;
    }
    if (kind == ItemType::symlink) {
      const char* target = archive_entry_symlink(e);
      if (target == nullptr || ::symlink(target, tmp.c_str()) != 0) {
        refuse(name, fmt::format("unable to create the link: {}", std::strerror(errno)));
      }
      m_staged.push_back({tmp, final});
      struct timespec times[2] = {{sec, nsec}, {sec, nsec}};
      ::utimensat(AT_FDCWD, tmp.c_str(), times, AT_SYMLINK_NOFOLLOW);
      m_symlinks.insert(name);
      ++result.symlinks;
      return;
    }
    write_file(a, e, name, tmp, mode, sec, nsec, result);
    m_staged.push_back({tmp, final});
    m_files.emplace(name, tmp);
    ++result.files;
  }

  void write_file(struct archive* a, archive_entry* e, const std::string& name, const fs::path& tmp,
                  uint32_t mode, int64_t sec, long nsec, UnpackResult& result) {
    int64_t declared = archive_entry_size(e);
    if (declared < 0 || m_bytes + static_cast<uint64_t>(declared) > m_options.max_unpacked_bytes) {
      refuse(name, fmt::format("the archive unpacks to more than the {} bytes its manifest declares",
                               m_options.max_unpacked_bytes));
    }
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
      refuse(name, fmt::format("unable to create it: {}", std::strerror(errno)));
    }
    m_staged.push_back({tmp, {}}); // removed on failure even before it is complete
    const void* buf = nullptr;
    size_t size = 0;
    la_int64_t offset = 0;
    uint64_t written = 0;
    while (true) {
      int r = archive_read_data_block(a, &buf, &size, &offset);
      if (r == ARCHIVE_EOF) {
        break;
      }
      if (r < ARCHIVE_WARN) {
        ::close(fd);
        throw ArchiveError(fmt::format("corrupt archive in '{}': {}", name, archive_error_string(a)));
      }
      written += size;
      if (m_bytes + written > m_options.max_unpacked_bytes || offset + static_cast<la_int64_t>(size) > declared) {
        ::close(fd);
        refuse(name, "more bytes than the manifest declares");
      }
      const char* p = static_cast<const char*>(buf);
      size_t left = size;
      off_t at = offset;
      while (left > 0) {
        // Runs of zeros become holes: the file is new and ftruncate below sets its size,
        // so a sparse 2 GiB image costs no disk and no write time.
        size_t piece = std::min(left, k_hole_piece);
        if (piece == k_hole_piece && p[0] == 0 && std::memcmp(p, p + 1, piece - 1) == 0) {
          p += piece;
          at += static_cast<off_t>(piece);
          left -= piece;
          continue;
        }
        ssize_t n = ::pwrite(fd, p, piece, at);
        if (n < 0 && errno == EINTR) {
          continue;
        }
        if (n < 0) {
          int err = errno;
          ::close(fd);
          throw ArchiveError(fmt::format("unable to write '{}': {}", name, std::strerror(err)));
        }
        p += n;
        at += n;
        left -= static_cast<size_t>(n);
      }
    }
    if (::ftruncate(fd, declared) != 0) {
      int err = errno;
      ::close(fd);
      throw ArchiveError(fmt::format("unable to write '{}': {}", name, std::strerror(err)));
    }
    ::fchmod(fd, mode & 01777);
    struct timespec times[2] = {{sec, nsec}, {sec, nsec}};
    ::futimens(fd, times);
    if (::close(fd) != 0) {
      throw ArchiveError(fmt::format("unable to write '{}': {}", name, std::strerror(errno)));
    }
    m_staged.pop_back();
    m_bytes += static_cast<uint64_t>(declared);
    result.bytes += static_cast<uint64_t>(declared);
    report_progress(result.files + 1);
  }

  void report_progress(uint64_t files) {
    if (!m_options.progress) {
      return;
    }
    auto now = std::chrono::steady_clock::now();
    if (now - m_last_progress < std::chrono::milliseconds(250)) {
      return;
    }
    m_last_progress = now;
    m_options.progress({files, m_bytes, std::chrono::duration<double>(now - m_started).count()});
  }

  // Creates base and the parents of rel as needed, refusing to pass through a symlink.
  fs::path prepare_parents(const std::string& name, const Destination& dest) {
    if (!safe_name(dest.rel)) {
      refuse(name, "its destination is not a plain relative path");
    }
    if (!fs::exists(dest.base)) {
      fs::path p = dest.base;
      std::vector<fs::path> missing;
      while (!p.empty() && p != p.root_path() && !fs::exists(p)) {
        missing.push_back(p);
        p = p.parent_path();
      }
      for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
        make_dir(*it, name);
      }
    }
    fs::path at = dest.base;
    size_t start = 0;
    while (true) {
      size_t slash = dest.rel.find('/', start);
      if (slash == std::string::npos) {
        return at / dest.rel.substr(start);
      }
      at /= dest.rel.substr(start, slash - start);
      struct stat st {};
      if (::lstat(at.c_str(), &st) == 0) {
        if (S_ISLNK(st.st_mode)) {
          refuse(name, fmt::format("{} is a symlink: nothing is extracted through one", at.string()));
        }
        if (!S_ISDIR(st.st_mode)) {
          refuse(name, fmt::format("{} is not a directory", at.string()));
        }
      } else {
        make_dir(at, name);
      }
      start = slash + 1;
    }
  }

  void make_dir(const fs::path& p, const std::string& name) {
    if (::mkdir(p.c_str(), 0755) == 0) {
      m_created_dirs.push_back(p);
    } else if (errno != EEXIST) {
      throw ArchiveError(fmt::format("unable to create {} for '{}': {}", p.string(), name, std::strerror(errno)));
    }
  }

  void commit() {
    for (const auto& s : m_staged) {
      if (::rename(s.tmp.c_str(), s.final.c_str()) != 0) {
        throw ArchiveError(fmt::format("unable to move {} into place: {}", s.final.string(), std::strerror(errno)));
      }
    }
    m_committed = true;
    // Deepest first, so setting a child's time does not disturb its parent's.
    for (auto it = m_dirs.rbegin(); it != m_dirs.rend(); ++it) {
      ::chmod(it->path.c_str(), it->mode & 01777);
      struct timespec times[2] = {{it->sec, it->nsec}, {it->sec, it->nsec}};
      ::utimensat(AT_FDCWD, it->path.c_str(), times, AT_SYMLINK_NOFOLLOW);
    }
  }

  void rollback() {
    for (const auto& s : m_staged) {
      ::unlink(s.tmp.c_str());
    }
    for (auto it = m_created_dirs.rbegin(); it != m_created_dirs.rend(); ++it) {
      ::rmdir(it->c_str());
    }
  }

  const UnpackOptions& m_options;
  std::vector<Staged> m_staged;
  std::vector<fs::path> m_created_dirs;
  std::vector<DirMeta> m_dirs;
  std::set<std::string> m_symlinks;
  std::map<std::string, fs::path> m_files;
  std::set<fs::path> m_finals;
  uint64_t m_bytes = 0;
  bool m_committed = false;
  std::chrono::steady_clock::time_point m_started = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point m_last_progress = m_started;
};

} // namespace

UnpackResult unpack(const fs::path& archive_file, const UnpackOptions& options) {
  auto start = std::chrono::steady_clock::now();
  std::string digest = util::sha256_file_hex(archive_file);
  if (digest != options.expected_sha256) {
    throw ArchiveError(fmt::format("digest mismatch: the archive's SHA-256 is {}, the manifest "
                                   "says {}; nothing was written",
                                   digest, options.expected_sha256));
  }
  UnpackResult result;
  Unpacker unpacker(options);
  unpacker.run(archive_file, result);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

} // namespace ephemera::archive
