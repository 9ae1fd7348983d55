#pragma once

#include "util/ed25519.hpp"

#include <memory>
#include <optional>
#include <string>
#include <string_view>

// How manifests and invalidation markers are signed and checked: with a secret shared by
// every writer (HMAC-SHA256, EPHEMERA_SIGNING_KEY), or with Ed25519, where only the broker
// holds the private key and build machines check with the public one (EPHEMERA_PUBLIC_KEY).
namespace ephemera::store {

// An Ed25519 signature as it stands in a manifest: this prefix, then 128 lowercase hex.
inline constexpr const char* k_ed25519_prefix = "ed25519:";

class Signer {
public:
  virtual ~Signer() = default;
  // The signature of payload; "" when this side does not sign (a public key only: the
  // broker signs what is written through it).
  virtual std::string sign(std::string_view payload) const = 0;
  // Whether signature is a good one over payload ("" never is).
  virtual bool verify(std::string_view payload, std::string_view signature) const = 0;
  // For messages: "EPHEMERA_SIGNING_KEY" or "the broker's Ed25519 key".
  virtual std::string describe() const = 0;
  // Whether signatures are Ed25519 ones (the broker's), rather than a shared secret's.
  virtual bool ed25519() const = 0;
};

std::shared_ptr<const Signer> hmac_signer(std::string key);
// Signs when key is private, verifies either way.
std::shared_ptr<const Signer> ed25519_signer(util::Ed25519Key key);

// From the environment of the agent: EPHEMERA_PUBLIC_KEY (a PEM file: the broker's public
// key, or its private key for an operator who signs markers himself) wins over
// EPHEMERA_SIGNING_KEY (HMAC); nullptr when neither is set. Throws util::Error for a key
// file that cannot be read.
std::shared_ptr<const Signer> signer_from_env();

} // namespace ephemera::store
