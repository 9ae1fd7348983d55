#include "store/backend.hpp"

#include "util/error.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ephemera::store {

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
  while (true) {
    ssize_t n = ::read(m_fd, buf, max);
    if (n >= 0) {
      return static_cast<size_t>(n);
    }
    if (errno != EINTR) {
      throw util::Error(fmt::format("unable to read {}: {}", m_path.string(), std::strerror(errno)));
    }
  }
}

void FileSource::rewind() { ::lseek(m_fd, 0, SEEK_SET); }

size_t StringSource::read(char* buf, size_t max) {
  size_t n = std::min(max, m_data.size() - m_pos);
  std::memcpy(buf, m_data.data() + m_pos, n);
  m_pos += n;
  return n;
}

} // namespace ephemera::store
