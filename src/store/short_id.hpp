#pragma once

#include "store/catalog.hpp"

#include <string>
#include <string_view>
#include <vector>

// The id people give `show`, `invalidate` and `gc` for one save, and that `ls` prints.
namespace ephemera::store {

// How many hex digits of the id ls prints.
inline constexpr size_t k_short_id_length = 10;

// The first k_short_id_length hex of SHA-256 over the save's manifest object key: unique per
// save (the key holds its stamp and a random part), the same on every machine, and unlike
// the archive's digest not shared by two saves of the same bytes.
std::string short_id(const Manifest& m);
// The same for a manifest object key alone (a save known only by where it lies).
std::string short_id(const std::string& manifest_object);
// All 64 hex of that digest, which a longer id is a prefix of.
std::string long_id(const Manifest& m);

// The saves of `all` that id names: a prefix (4 hex or more) of their id, a prefix (8 hex
// or more) of their archive's SHA-256, their manifest or archive object key, or one of the
// links given (links[i] is all[i]'s; empty to match none). Each save once, in all's order.
std::vector<const Manifest*> find_saves(const std::vector<Manifest>& all, std::string_view id,
                                        const std::vector<std::string>& links = {});

// The one save id names; throws util::InputError when none does (naming `where`) or when
// more than one does, listing each with its id, scope, key and creation time.
const Manifest& one_save(const std::vector<Manifest>& all, std::string_view id,
                         const std::string& where, const std::vector<std::string>& links = {});

} // namespace ephemera::store
