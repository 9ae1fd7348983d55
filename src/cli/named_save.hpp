#pragma once

#include "store/catalog.hpp"

#include <cstddef>
#include <string>
#include <vector>

// The one save an operator's command names (show, export), however it is named.
namespace ephemera::cli {

struct NamedSave {
  // The saves it was found among, in the store's order (the file's own manifest in place of
  // the store's copy, or added last when the store lacks it).
  std::vector<store::Manifest> all;
  size_t at = 0;          // all[at] is the save
  bool from_file = false; // named by a manifest file on this machine
  bool in_store = true;   // (from_file) the store holds that manifest object
  const store::Manifest& save() const { return all[at]; }
};

// The save id names: the id ls prints or a prefix of it (4 hex or more), a SHA-256 prefix (8
// hex or more), a manifest or archive object key, a link, or a manifest file on this machine
// (read as the store's are). Several saves that share one archive object and digest (two
// content-addressed saves of one state share their index) are one save for a caller that
// only reads content (same_content_is_one): the first of them is taken. Throws
// util::InputError when none or several are named (naming `where`, or each of them), or the
// file is not a manifest.
NamedSave find_named_save(store::Catalog& catalog, const std::string& id, const std::string& where,
                          bool same_content_is_one);

// The links of all, in its order, for store::find_saves.
std::vector<std::string> links_of(store::Catalog& catalog, const std::vector<store::Manifest>& all);

} // namespace ephemera::cli
