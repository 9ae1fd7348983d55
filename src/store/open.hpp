#pragma once

#include "store/catalog.hpp"

#include <memory>
#include <string>

namespace ephemera::store {

// The catalog of the store at url (url.hpp), signed and checked as the agent's environment
// says (signer_from_env). A broker's store (http://, https://) is always checked with the
// broker's Ed25519 public key: EPHEMERA_PUBLIC_KEY when set (pin it in production), else the
// one the broker gives; what is written through it is left for the broker to sign.
std::unique_ptr<Catalog> open_catalog(const std::string& url);

} // namespace ephemera::store
