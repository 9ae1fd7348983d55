#pragma once

#include <memory>
#include <string>

namespace ephemera::store {
class Catalog;
}

namespace ephemera::session {

// Which store. How its manifests are signed and checked is the agent's environment's
// (store::signer_from_env: EPHEMERA_PUBLIC_KEY, EPHEMERA_SIGNING_KEY), or a broker's key.
struct StoreOptions {
  std::string url; // "": the default local store

  // The URL with the default applied.
  std::string resolved_url() const;
};

// The one way every command opens the store (through store::open_catalog). Throws util::InputError
// for a malformed URL and StoreError when the store cannot be reached.
std::unique_ptr<store::Catalog> open_catalog(const StoreOptions& options);

} // namespace ephemera::session
