#include "store/signer.hpp"

#include "util/sha256.hpp"

#include <cstdlib>

namespace ephemera::store {

namespace {

class HmacSigner : public Signer {
public:
  explicit HmacSigner(std::string key) : m_key(std::move(key)) {}
  std::string sign(std::string_view payload) const override {
    return util::hmac_sha256_hex(m_key, payload);
  }
  bool verify(std::string_view payload, std::string_view signature) const override {
    return !signature.empty() && util::hmac_sha256_hex(m_key, payload) == signature;
  }
  std::string describe() const override { return "EPHEMERA_SIGNING_KEY"; }
  bool ed25519() const override { return false; }

private:
  std::string m_key;
};

std::optional<std::string> from_hex(std::string_view hex) {
  auto nibble = [](char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
  };
  if (hex.size() % 2 != 0) {
    return std::nullopt;
  }
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) {
      return std::nullopt;
    }
    out += static_cast<char>(hi * 16 + lo);
  }
  return out;
}

class Ed25519Signer : public Signer {
public:
  explicit Ed25519Signer(util::Ed25519Key key) : m_key(std::move(key)) {}
  std::string sign(std::string_view payload) const override {
    if (!m_key.has_private()) {
      return "";
    }
    auto sig = m_key.sign(payload);
    return k_ed25519_prefix + util::to_hex(sig.data(), sig.size());
  }
  bool verify(std::string_view payload, std::string_view signature) const override {
    std::string_view prefix = k_ed25519_prefix;
    if (signature.substr(0, prefix.size()) != prefix) {
      return false;
    }
    auto raw = from_hex(signature.substr(prefix.size()));
    return raw && m_key.verify(payload, *raw);
  }
  std::string describe() const override { return "the broker's Ed25519 key"; }
  bool ed25519() const override { return true; }

private:
  util::Ed25519Key m_key;
};

} // namespace

std::shared_ptr<const Signer> hmac_signer(std::string key) {
  return std::make_shared<HmacSigner>(std::move(key));
}

std::shared_ptr<const Signer> ed25519_signer(util::Ed25519Key key) {
  return std::make_shared<Ed25519Signer>(std::move(key));
}

std::shared_ptr<const Signer> signer_from_env() {
  if (const char* p = std::getenv("EPHEMERA_PUBLIC_KEY"); p != nullptr && *p != '\0') {
    return ed25519_signer(util::Ed25519Key::load(p));
  }
  if (const char* k = std::getenv("EPHEMERA_SIGNING_KEY"); k != nullptr && *k != '\0') {
    return hmac_signer(k);
  }
  return nullptr;
}

} // namespace ephemera::store
