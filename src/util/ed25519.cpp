#include "util/ed25519.hpp"

#include "util/error.hpp"
#include "util/fs.hpp"

#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace ephemera::util {

namespace {

EVP_PKEY* pk(void* p) {
  return static_cast<EVP_PKEY*>(p);
}

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct CtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using Bio = std::unique_ptr<BIO, BioFree>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, CtxFree>;

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

// A key file is a few hundred bytes; anything much larger is not one.
constexpr size_t k_max_pem = 16 << 10;

} // namespace

Ed25519Key::~Ed25519Key() {
  EVP_PKEY_free(pk(m_pkey));
}

Ed25519Key::Ed25519Key(Ed25519Key&& other) noexcept
    : m_pkey(other.m_pkey), m_private(other.m_private) {
  other.m_pkey = nullptr;
}

Ed25519Key& Ed25519Key::operator=(Ed25519Key&& other) noexcept {
  if (this != &other) {
    EVP_PKEY_free(pk(m_pkey));
    m_pkey = other.m_pkey;
    m_private = other.m_private;
    other.m_pkey = nullptr;
  }
  return *this;
}

Ed25519Key Ed25519Key::generate() {
  EVP_PKEY* key = nullptr;
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr);
  bool ok = ctx != nullptr && EVP_PKEY_keygen_init(ctx) == 1 && EVP_PKEY_keygen(ctx, &key) == 1;
  EVP_PKEY_CTX_free(ctx);
  if (!ok) {
    throw Error("unable to generate an Ed25519 key");
  }
  return Ed25519Key(key, true);
}

Ed25519Key Ed25519Key::load(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw Error(fmt::format("unable to read the key {}: {}", path.string(), std::strerror(errno)));
  }
  Fd closer(fd);
  std::string text(k_max_pem + 1, '\0');
  ssize_t n = read_full(fd, text.data(), text.size());
  if (n < 0) {
    throw Error(fmt::format("unable to read the key {}: {}", path.string(), std::strerror(errno)));
  }
  if (static_cast<size_t>(n) > k_max_pem) {
    throw Error(fmt::format("the key {} is larger than a PEM key file can be", path.string()));
  }
  text.resize(static_cast<size_t>(n));
  return from_pem(text, path.string());
}

Ed25519Key Ed25519Key::from_pem(std::string_view pem, std::string_view what) {
  bool is_private = pem.find("PRIVATE KEY-----") != std::string_view::npos;
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) {
    throw Error("out of memory reading a key");
  }
  EVP_PKEY* key = is_private ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr)
                             : PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr);
  if (key == nullptr) {
    throw Error(fmt::format("{} is not a PEM {} key", what, is_private ? "private" : "public"));
  }
  if (EVP_PKEY_id(key) != EVP_PKEY_ED25519) {
    EVP_PKEY_free(key);
    throw Error(fmt::format("{} is not an Ed25519 key", what));
  }
  return Ed25519Key(key, is_private);
}

std::string Ed25519Key::sign(std::string_view message) const {
  if (!m_private) {
    throw Error("internal: signing with a public key");
  }
  MdCtx ctx(EVP_MD_CTX_new());
  std::array<unsigned char, 64> sig{};
  size_t len = sig.size();
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, pk(m_pkey)) != 1 ||
      EVP_DigestSign(ctx.get(), sig.data(), &len,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1) {
    throw Error("unable to make an Ed25519 signature");
  }
  return std::string(reinterpret_cast<const char*>(sig.data()), len);
}

bool Ed25519Key::verify(std::string_view message, std::string_view signature) const {
  if (signature.size() != 64) {
    return false;
  }
  MdCtx ctx(EVP_MD_CTX_new());
  return ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pk(m_pkey)) == 1 &&
         EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                          signature.size(), reinterpret_cast<const unsigned char*>(message.data()),
                          message.size()) == 1;
}

std::string Ed25519Key::private_pem() const {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!m_private || !bio ||
      PEM_write_bio_PrivateKey(bio.get(), pk(m_pkey), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    throw Error("unable to write the private key");
  }
  return bio_text(bio.get());
}

std::string Ed25519Key::public_pem() const {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), pk(m_pkey)) != 1) {
    throw Error("unable to write the public key");
  }
  return bio_text(bio.get());
}

std::string Ed25519Key::public_raw() const {
  std::array<unsigned char, 32> raw{};
  size_t len = raw.size();
  if (EVP_PKEY_get_raw_public_key(pk(m_pkey), raw.data(), &len) != 1) {
    throw Error("unable to read the public key");
  }
  return std::string(reinterpret_cast<const char*>(raw.data()), len);
}

namespace {

constexpr char k_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int value_of(char c) {
  if (c >= 'A' && c <= 'Z') {
    return c - 'A';
  }
  if (c >= 'a' && c <= 'z') {
    return c - 'a' + 26;
  }
  if (c >= '0' && c <= '9') {
    return c - '0' + 52;
  }
  return c == '-' ? 62 : c == '_' ? 63 : -1;
}

} // namespace

std::string base64url_encode(std::string_view data) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : data) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += k_alphabet[(acc >> bits) & 63];
    }
  }
  if (bits > 0) {
    out += k_alphabet[(acc << (6 - bits)) & 63];
  }
  return out;
}

std::optional<std::string> base64url_decode(std::string_view text) {
  if (text.size() % 4 == 1) {
    return std::nullopt;
  }
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = value_of(c);
    if (v < 0) {
      return std::nullopt;
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  // The bits left over must be zero: otherwise two spellings decode to the same bytes.
  if ((acc & ((1u << bits) - 1)) != 0) {
    return std::nullopt;
  }
  return out;
}

} // namespace ephemera::util
