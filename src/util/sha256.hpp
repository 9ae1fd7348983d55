#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace ephemera::util {

// Incremental SHA-256 (OpenSSL EVP).
class Sha256 {
public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(const void* data, size_t size);
  void update(std::string_view data) { update(data.data(), data.size()); }
  // Ends the computation; the object must not be updated afterwards.
  std::array<uint8_t, 32> finish();
  std::string finish_hex();

private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

std::string sha256_hex(std::string_view data);
std::string sha256_file_hex(const std::filesystem::path& path);
// Of what is left to read from fd (named `what` in errors); fd stays open, at its end.
std::string sha256_fd_hex(int fd, const std::string& what);
// HMAC-SHA256 of data under key, as lowercase hex.
std::string hmac_sha256_hex(std::string_view key, std::string_view data);
// Raw HMAC-SHA256 (for SigV4 key derivation).
std::string hmac_sha256_raw(std::string_view key, std::string_view data);
std::string to_hex(const void* data, size_t size);

} // namespace ephemera::util
