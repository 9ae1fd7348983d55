#pragma once

#include "cas/cas.hpp"
#include "cas/index.hpp"
#include "store/backend.hpp"

#include <cstdint>
#include <string>
#include <vector>

// Garbage collection of one scope's content-addressed objects, counting pack references
// through the live indexes (those the scope's manifests point to).
namespace ephemera::cas {

struct GcResult {
  std::vector<std::string> removed; // keys, packs and indexes
  uint64_t removed_bytes = 0;
  uint64_t live_packs = 0;
  uint64_t kept_young = 0; // unreferenced, but younger than the grace period
};

// Removes, below scope's prefix, every pack that no index in `live` references and every
// index whose key is not in live_keys, once the store's time of the object is at least
// grace_seconds before now (store clock): a save in progress uploads its packs before its
// index, so its packs are young while they are not yet referenced, and a save or gc killed
// at any moment leaves either the old state or the new one. The leftovers of interrupted
// uploads below the prefix go after the grace period too; objects of other names stay. live must
// have been loaded for this scope.
GcResult collect(store::Backend& backend, const Scope& scope, const std::vector<Index>& live,
                 const std::vector<std::string>& live_keys, int64_t now, int64_t grace_seconds);

// Whether a save should ignore base and write a new full state (a new base): when less than
// half the content of the packs base references is content base uses, or base spreads over
// more than 8 packs beyond what a full save of it would make. Keeps restore fan-out and the
// bytes a restore fetches bounded.
bool should_rebase(const Index& base, uint64_t pack_bytes);

} // namespace ephemera::cas
