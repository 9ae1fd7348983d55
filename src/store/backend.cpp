#include "store/backend.hpp"

#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/log.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ephemera::store {

namespace {

// What is wrong with key, or nullptr when it is well formed.
const char* key_problem(std::string_view key) {
  if (key.empty()) {
    return "it is empty";
  }
  if (key.size() > 1024) {
    return "it is longer than 1024 bytes";
  }
  for (char c : key) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      return "it holds a control character";
    }
  }
  size_t start = 0;
  while (true) {
    size_t end = key.find('/', start);
    auto part = key.substr(start, end == std::string_view::npos ? key.npos : end - start);
    if (part.empty()) {
      return "it has an empty path component";
    }
    if (part == "." || part == "..") {
      return "it has a '.' or '..' path component";
    }
    if (end == std::string_view::npos) {
      return nullptr;
    }
    start = end + 1;
  }
}

} // namespace

bool valid_key(std::string_view key) {
  return key_problem(key) == nullptr;
}

void check_key(std::string_view key, std::string_view what) {
  if (const char* why = key_problem(key)) {
    throw util::StoreError(
        util::StoreErrorKind::permanent,
        fmt::format("refusing {} '{}': {}", what, util::printable(key.substr(0, 200)), why));
  }
}

void check_prefix(std::string_view prefix) {
  if (prefix.empty()) {
    return;
  }
  check_key(prefix.back() == '/' ? prefix.substr(0, prefix.size() - 1) : prefix, "listing prefix");
}

std::string Leftover::name() const {
  return upload.empty() ? key : fmt::format("{} (upload {})", key, upload);
}

void StringSink::write(const char* data, size_t size) {
  if (size > m_max - m_data.size()) {
    throw util::StoreError(
        util::StoreErrorKind::permanent,
        fmt::format("it is larger than {} bytes, the most this object may be", m_max));
  }
  m_data.append(data, size);
}

FileSource::FileSource(const std::filesystem::path& path) : m_path(path) {
  m_fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (m_fd < 0) {
    throw util::Error(fmt::format("unable to open {}: {}", path.string(), std::strerror(errno)));
  }
  struct stat st {};
  ::fstat(m_fd, &st);
  m_size = static_cast<uint64_t>(st.st_size);
}

FileSource::~FileSource() {
  if (m_fd >= 0) {
    ::close(m_fd);
  }
}

size_t FileSource::read(char* buf, size_t max) {
  ssize_t n = util::read_full(m_fd, buf, max);
  if (n < 0) {
    throw util::Error(fmt::format("unable to read {}: {}", m_path.string(), std::strerror(errno)));
  }
  return static_cast<size_t>(n);
}

void FileSource::rewind() {
  ::lseek(m_fd, 0, SEEK_SET);
}

size_t StringSource::read(char* buf, size_t max) {
  size_t n = std::min(max, m_data.size() - m_pos);
  std::memcpy(buf, m_data.data() + m_pos, n);
  m_pos += n;
  return n;
}

} // namespace ephemera::store
