#include "archive/archive.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/sha256.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fmt/format.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <memory>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace ephemera::archive {

namespace fs = std::filesystem;
using util::ArchiveError;

namespace {

constexpr size_t k_buffer = 1 << 20;

// Receives the compressed stream: hashes, counts and writes it to the output file.
struct Output {
  int fd = -1;
  util::Sha256 hash;
  uint64_t bytes = 0;
  int error = 0;
};

// A failed write is recorded, not returned: libarchive 3.6 leaks its block buffer when
// an archive that saw a failed write is freed. The Packer checks the error after every
// call and throws; later bytes are dropped.
la_ssize_t write_cb(struct archive* /*a*/, void* data, const void* buf, size_t size) {
  auto* out = static_cast<Output*>(data);
  if (out->error != 0) {
    return static_cast<la_ssize_t>(size);
  }
  if (!util::write_all(out->fd, std::string_view(static_cast<const char*>(buf), size))) {
    out->error = errno;
    return static_cast<la_ssize_t>(size);
  }
  out->hash.update(buf, size);
  out->bytes += size;
  return static_cast<la_ssize_t>(size);
}

struct ArchiveDeleter {
  void operator()(struct archive* a) const { archive_write_free(a); }
};
struct EntryDeleter {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

class Packer {
public:
  Packer(const fs::path& out_file, const PackOptions& options) : m_options(options) {
    m_out.fd = ::open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (m_out.fd < 0) {
      throw ArchiveError(
          fmt::format("unable to create {}: {}", out_file.string(), std::strerror(errno)));
    }
    m_a.reset(archive_write_new());
    archive_write_set_format_pax(m_a.get()); // full pax: nanosecond mtimes, any name
    archive_write_add_filter_zstd(m_a.get());
    archive_write_set_bytes_per_block(m_a.get(), 64 * 1024);
    archive_write_set_bytes_in_last_block(m_a.get(), 1);
    check(archive_write_set_filter_option(m_a.get(), "zstd", "compression-level",
                                          std::to_string(options.level).c_str()),
          "set the zstd level");
    int threads = options.threads > 0
                      ? options.threads
                      : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    // Older libarchive builds lack the option: single-threaded is still correct.
    archive_write_set_filter_option(m_a.get(), "zstd", "threads", std::to_string(threads).c_str());
    check(archive_write_open(m_a.get(), &m_out, nullptr, write_cb, nullptr), "start the archive");
    m_buffer.resize(k_buffer);
  }

  ~Packer() {
    if (m_out.fd >= 0) {
      ::close(m_out.fd);
    }
  }

  void add(const PackItem& item, PackResult& result) {
    std::unique_ptr<archive_entry, EntryDeleter> e(archive_entry_new());
    archive_entry_copy_pathname(e.get(), item.name.c_str());
    archive_entry_set_perm(e.get(), item.mode & 01777); // never set-id bits
    archive_entry_set_mtime(e.get(), item.mtime_ns / 1000000000, item.mtime_ns % 1000000000);
    archive_entry_set_uid(e.get(), 0);
    archive_entry_set_gid(e.get(), 0);
    switch (item.type) {
    case EntryType::directory:
      archive_entry_set_filetype(e.get(), AE_IFDIR);
      header(e.get(), item);
      ++result.directories;
      return;
    case EntryType::symlink:
      archive_entry_set_filetype(e.get(), AE_IFLNK);
      archive_entry_copy_symlink(e.get(), item.link_target.c_str());
      header(e.get(), item);
      ++result.symlinks;
      return;
    case EntryType::file:
      add_file(e.get(), item, result);
      return;
    }
  }

  void finish(PackResult& result) {
    check(archive_write_close(m_a.get()), "finish the archive");
    if (::fsync(m_out.fd) != 0 || ::close(m_out.fd) != 0) {
      m_out.fd = -1;
      throw ArchiveError(fmt::format("unable to write the archive: {}", std::strerror(errno)));
    }
    m_out.fd = -1;
    result.sha256 = m_out.hash.finish_hex();
    result.compressed_bytes = m_out.bytes;
  }

private:
  void check(int r, const char* what) {
    if (m_out.error != 0) {
      throw ArchiveError(fmt::format("unable to {}: {}", what, std::strerror(m_out.error)));
    }
    if (r < ARCHIVE_WARN) {
      throw ArchiveError(fmt::format("unable to {}: {}", what, archive_error_string(m_a.get())));
    }
  }

  void header(archive_entry* e, const PackItem& item) {
    int r = archive_write_header(m_a.get(), e);
    if (r < ARCHIVE_WARN || m_out.error != 0) {
      check(ARCHIVE_FATAL, fmt::format("add {}", item.name).c_str());
    }
  }

  static int64_t mtime_of(const struct stat& st) {
    return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  }

  [[noreturn]] static void changed(const PackItem& item, const char* how) {
    throw ArchiveError(fmt::format("{} {} while it was being saved; nothing torn is stored (mark "
                                   "its rule with '%' if it may change during a save)",
                                   item.source, how));
  }

  void add_file(archive_entry* e, const PackItem& item, PackResult& result) {
    if (item.nlink > 1) {
      auto key = std::make_pair(item.dev, item.ino);
      if (auto it = m_links.find(key); it != m_links.end()) {
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_copy_hardlink(e, it->second.c_str());
        archive_entry_set_size(e, 0);
        header(e, item);
        ++result.files;
        return;
      }
      m_links.emplace(key, item.name);
    }
    // Opened only if it is still a regular file: the job's tree may have a fifo (which
    // would block the save forever) or a device in its place by now.
    struct stat st {};
    int fd = util::open_regular(item.source, st);
    if (fd < 0) {
      bool replaced = errno == ELOOP || errno == EINVAL || errno == ESTALE;
      if ((errno == ENOENT || replaced) && item.may_change) {
        return; // '%': gone since the walk (as a regular file), skipped
      }
      if (errno == ENOENT) {
        changed(item, "disappeared");
      }
      if (replaced) {
        changed(item, "was replaced by something that is not a regular file");
      }
      throw ArchiveError(fmt::format("unable to read {}: {}", item.source, std::strerror(errno)));
    }
    if (!item.may_change &&
        (static_cast<uint64_t>(st.st_size) != item.size || mtime_of(st) != item.mtime_ns)) {
      ::close(fd);
      changed(item, "changed");
    }
    uint64_t size = static_cast<uint64_t>(st.st_size);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_size(e, static_cast<la_int64_t>(size));
    archive_entry_set_mtime(e, st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    header(e, item);
    uint64_t done = 0;
    while (done < size) {
      ssize_t n =
          util::read_full(fd, m_buffer.data(), std::min<uint64_t>(m_buffer.size(), size - done));
      if (n < 0) {
        int err = errno;
        ::close(fd);
        throw ArchiveError(fmt::format("unable to read {}: {}", item.source, std::strerror(err)));
      }
      if (n == 0) {
        break; // shrank: detected below
      }
      if (archive_write_data(m_a.get(), m_buffer.data(), static_cast<size_t>(n)) < 0 ||
          m_out.error != 0) {
        ::close(fd);
        check(ARCHIVE_FATAL, "write the archive");
      }
      done += static_cast<uint64_t>(n);
      progress(static_cast<uint64_t>(n), result);
    }
    struct stat after {};
    ::fstat(fd, &after);
    ::close(fd);
    if (!item.may_change && (done != size || static_cast<uint64_t>(after.st_size) != size ||
                             mtime_of(after) != mtime_of(st))) {
      changed(item, "changed");
    }
    // A '%' file that shrank is padded by libarchive to its header size: archived as read.
    result.unpacked_bytes += size;
    ++result.files;
  }

  void progress(uint64_t bytes, const PackResult& result) {
    m_bytes += bytes;
    if (!m_options.progress) {
      return;
    }
    auto now = std::chrono::steady_clock::now();
    if (now - m_last < std::chrono::milliseconds(250)) {
      return;
    }
    m_last = now;
    m_options.progress(
        {result.files, m_bytes, std::chrono::duration<double>(now - m_start).count()});
  }

  const PackOptions& m_options;
  Output m_out;
  std::unique_ptr<struct archive, ArchiveDeleter> m_a;
  std::vector<char> m_buffer;
  std::map<std::pair<uint64_t, uint64_t>, std::string> m_links;
  uint64_t m_bytes = 0;
  std::chrono::steady_clock::time_point m_start = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point m_last = m_start;
};

void check_name(const std::string& name) {
  if (name.empty() || name.front() == '/' || name.find("/../") != std::string::npos ||
      name.rfind("../", 0) == 0 || name == ".." ||
      (name.size() >= 3 && name.compare(name.size() - 3, 3, "/..") == 0)) {
    throw ArchiveError(
        fmt::format("refusing to archive '{}': entries are relative and never climb", name));
  }
}

} // namespace

PackResult pack(const std::vector<PackItem>& items, const fs::path& out_file,
                const PackOptions& options) {
  auto start = std::chrono::steady_clock::now();
  PackResult result;
  try {
    Packer packer(out_file, options);
    for (const auto& item : items) {
      check_name(item.name);
      packer.add(item, result);
    }
    packer.finish(result);
  } catch (...) {
    std::error_code ec;
    fs::remove(out_file, ec);
    throw;
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

} // namespace ephemera::archive
