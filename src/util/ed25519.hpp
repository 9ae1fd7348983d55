#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

// Ed25519 keys, signatures and base64url, through OpenSSL's EVP interface. Knows nothing of
// what is signed.
namespace ephemera::util {

class Ed25519Key {
public:
  ~Ed25519Key();
  Ed25519Key(Ed25519Key&&) noexcept;
  Ed25519Key& operator=(Ed25519Key&&) noexcept;
  Ed25519Key(const Ed25519Key&) = delete;
  Ed25519Key& operator=(const Ed25519Key&) = delete;

  // A new private key from the system's random source.
  static Ed25519Key generate();
  // A PEM file holding a private key (PKCS#8, as `openssl genpkey -algorithm ed25519`
  // writes) or a public one (SubjectPublicKeyInfo, `openssl pkey -pubout`). Throws
  // util::Error naming the file and why: unreadable, not PEM, not an Ed25519 key.
  static Ed25519Key load(const std::filesystem::path& path);
  // The same from the PEM text; `what` names it in errors.
  static Ed25519Key from_pem(std::string_view pem, std::string_view what);

  bool has_private() const { return m_private; }
  // 64 bytes. Throws util::Error when this is a public key only.
  std::string sign(std::string_view message) const;
  // Whether signature is this key's over message (false for any malformed signature).
  bool verify(std::string_view message, std::string_view signature) const;
  std::string private_pem() const;
  std::string public_pem() const;
  // The 32 raw bytes of the public key: equal for a private key and its public half.
  std::string public_raw() const;

private:
  Ed25519Key(void* pkey, bool is_private) : m_pkey(pkey), m_private(is_private) {}
  void* m_pkey = nullptr; // EVP_PKEY
  bool m_private = false;
};

// RFC 4648 base64url without padding.
std::string base64url_encode(std::string_view data);
// nullopt for anything but canonical unpadded base64url (no padding, no whitespace, no
// other alphabet, no non-zero bits left over), so that one token has one spelling.
std::optional<std::string> base64url_decode(std::string_view text);

} // namespace ephemera::util
