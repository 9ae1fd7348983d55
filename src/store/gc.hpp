#pragma once

#include "store/catalog.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

// Retention: what gc deletes and why, decided once above the backends.
namespace ephemera::store {

struct GcOptions {
  std::optional<int> keep;          // newest N per (scope, key, branch)
  std::optional<double> max_age;    // seconds
  std::optional<uint64_t> max_bytes;
  double grace = 3600;              // seconds: younger saves and orphans are never touched
};

struct GcAction {
  std::optional<Manifest> manifest; // a whole save, or
  std::optional<ObjectInfo> orphan; // an archive object no manifest names
  std::string why;
  uint64_t bytes = 0;
};

// Decides, in order: invalidated saves, saves of epochs below the newest of their stanza,
// all but the newest `keep` per key and branch, saves older than max_age, then the oldest
// until the store fits max_bytes; and orphan archives older than the grace period.
std::vector<GcAction> plan_gc(const std::vector<Manifest>& all,
                              const std::vector<Invalidation>& invalidations,
                              const std::vector<ObjectInfo>& orphans, const GcOptions& options,
                              double now);

} // namespace ephemera::store
