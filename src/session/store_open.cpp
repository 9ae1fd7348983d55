#include "session/store_open.hpp"

#include "store/catalog.hpp"
#include "store/open.hpp"
#include "store/url.hpp"

namespace ephemera::session {

std::string StoreOptions::resolved_url() const {
  return url.empty() ? store::default_store_url() : url;
}

std::unique_ptr<store::Catalog> open_catalog(const StoreOptions& options) {
  return store::open_catalog(options.resolved_url());
}

} // namespace ephemera::session
