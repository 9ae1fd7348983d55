#include "store/open.hpp"

#include "store/broker_client.hpp"
#include "store/url.hpp"
#include "util/ed25519.hpp"

namespace ephemera::store {

std::unique_ptr<Catalog> open_catalog(const std::string& url) {
  auto signer = signer_from_env();
  if (is_broker_url(url) && (signer == nullptr || !signer->ed25519())) {
    // A shared HMAC secret means nothing to a broker's saves: their signatures are its own.
    signer = ed25519_signer(
        util::Ed25519Key::from_pem(broker_public_key(url), "the broker's public key"));
  }
  return std::make_unique<Catalog>(open_backend(url), std::move(signer));
}

} // namespace ephemera::store
