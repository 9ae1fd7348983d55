#include "util/sha256.hpp"

#include "util/error.hpp"
#include "util/fs.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>
#include <vector>

namespace ephemera::util {

struct Sha256::Impl {
  EVP_MD_CTX* ctx = nullptr;
};

Sha256::Sha256() : m_impl(std::make_unique<Impl>()) {
  m_impl->ctx = EVP_MD_CTX_new();
  if (m_impl->ctx == nullptr || EVP_DigestInit_ex(m_impl->ctx, EVP_sha256(), nullptr) != 1) {
    throw Error("unable to initialise SHA-256");
  }
}

Sha256::~Sha256() {
  EVP_MD_CTX_free(m_impl->ctx);
}

void Sha256::update(const void* data, size_t size) {
  EVP_DigestUpdate(m_impl->ctx, data, size);
}

std::array<uint8_t, 32> Sha256::finish() {
  std::array<uint8_t, 32> out{};
  unsigned int len = 0;
  EVP_DigestFinal_ex(m_impl->ctx, out.data(), &len);
  return out;
}

std::string Sha256::finish_hex() {
  auto digest = finish();
  return to_hex(digest.data(), digest.size());
}

std::string to_hex(const void* data, size_t size) {
  static const char digits[] = "0123456789abcdef";
  const auto* bytes = static_cast<const uint8_t*>(data);
  std::string out;
  out.reserve(size * 2);
  for (size_t i = 0; i < size; ++i) {
    out += digits[bytes[i] >> 4];
    out += digits[bytes[i] & 0xf];
  }
  return out;
}

std::string sha256_hex(std::string_view data) {
  Sha256 h;
  h.update(data);
  return h.finish_hex();
}

std::string sha256_fd_hex(int fd, const std::string& what) {
  Sha256 h;
  std::vector<char> buf(1 << 20);
  for (;;) {
    ssize_t n = read_full(fd, buf.data(), buf.size());
    if (n < 0) {
      throw Error("unable to read " + what + ": " + std::strerror(errno));
    }
    h.update(buf.data(), static_cast<size_t>(n));
    if (static_cast<size_t>(n) < buf.size()) {
      break;
    }
  }
  return h.finish_hex();
}

std::string sha256_file_hex(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw Error("unable to open " + path.string() + ": " + std::strerror(errno));
  }
  Fd guard(fd);
  return sha256_fd_hex(fd, path.string());
}

std::string hmac_sha256_raw(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string hmac_sha256_hex(std::string_view key, std::string_view data) {
  auto raw = hmac_sha256_raw(key, data);
  return to_hex(raw.data(), raw.size());
}

} // namespace ephemera::util
