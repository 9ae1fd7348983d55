#pragma once

#include "store/backend.hpp"
#include "store/catalog.hpp"
#include "store/keys.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// Retention by use: a restore marks the save it used with one empty object beside its
// manifest (keys.hpp: use_marker_key), one per save, UTC day and trust of the restoring job.
//
// A marker says nothing by its content; what counts is the store's own time of the object
// (so a writer's clock cannot date it) and where it lies. What a marker can do is bounded:
// it only ever makes gc's --max-age and --max-bytes keep a save longer. Invalidation, an
// epoch bump and supersession are decided before use is looked at, so no marker brings back
// a save that is hidden; lookups never read markers. A trusted save counts only trusted
// jobs' markers, so untrusted jobs (which may restore trusted saves) cannot keep one alive.
namespace ephemera::store {

// The most a marker object may be to count (they are written empty).
constexpr uint64_t k_max_use_marker = 1024;

// The use marker a key names (keys.hpp: use_marker_key), or nullopt when it is not one.
struct UseMarker {
  std::string manifest; // the manifest object it marks
  std::string day;      // YYYYMMDD, as its name says
  bool trusted = true;  // written for a trusted job
};
std::optional<UseMarker> parse_use_marker(std::string_view key);

// How a save has been used, as its markers tell.
struct Use {
  double last = 0;                  // the store's time of the newest marker that counts (0: never)
  size_t days = 0;                  // days with a restore
  std::vector<std::string> markers; // every marker object of the save, counting or not
};

// For each save, its use from a listing (every marker in it, with its store time and size).
// A marker counts when it is at most k_max_use_marker bytes, is dated no later than its store
// time's day (a name from the future is a forgery) and, for a trusted save, was written for a
// trusted job. Keyed by manifest object; every save has an entry.
std::map<std::string, Use> uses_of(const std::vector<Manifest>& saves,
                                   const std::vector<ObjectInfo>& listing);

// Markers in the listing whose save's manifest object is not listed: left by a save gc
// removed while a restore was marking it, or forged.
std::vector<ObjectInfo> orphan_use_markers(const std::vector<ObjectInfo>& listing);

} // namespace ephemera::store
