#pragma once

#include "store/catalog.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

// Retention: what gc deletes and why, decided once above the backends, with the selection
// rules of selection.hpp (the same ones ls and show judge by).
namespace ephemera::store {

struct GcOptions {
  int keep = 1;                  // newest N per scope, key, branch and trust
  std::optional<double> max_age; // seconds
  std::optional<uint64_t> max_bytes;
  double grace = 3600;                // seconds: nothing younger is touched
  double events_max_age = 30 * 86400; // seconds: event records (stats) older than this go
};

// What gc sees of the store, read once. A save in progress has its archive in the listing
// and no manifest yet: the grace period, measured on the store's clock, is what protects it.
struct GcInventory {
  std::vector<ObjectInfo> listing; // every object below v1/, with its size and store time
  std::vector<Leftover> leftovers; // pieces of interrupted writes
  std::vector<Manifest> saves;     // read, and valid where they lie
  struct Refused {
    Manifest manifest;
    std::string why; // Catalog::why_refused's answer
  };
  std::vector<Refused> refused;      // read, but unsigned or badly signed
  std::vector<Invalidation> markers; // the markers that count
  bool signing = false;              // whether signatures were checked
};

struct GcAction {
  std::string subject;              // what goes, for people: a manifest or another object key
  std::vector<std::string> objects; // deleted in this order: a manifest before its archive
  std::string why;
  uint64_t bytes = 0;  // as the listing gave them
  bool orphan = false; // look for its manifest once more before deleting
  // A piece of an interrupted write (objects then holds only its key, to be counted): removed
  // through the backend's LeftoverCleaner, never by remove().
  std::optional<Leftover> leftover;
};

struct GcPlan {
  std::vector<GcAction> actions;
  std::vector<std::string> kept; // what stays and why, e.g. "3 saves not restorable but
                                 // younger than --grace 1h"
};

// Decides, for saves older than the grace period, in order: invalidated ones; those of an
// epoch below their stanza's current one; superseded ones beyond the newest `keep` of their
// scope, key, branch and trust; those older than max_age; then the oldest until the saves
// fit max_bytes (counting what the listing says their archives hold). Then, past the grace:
// refused manifests (only the manifest object, and its own archive where no save names it;
// none at all while signing is on and not one manifest verifies, since the key is then
// likely not the agents'); archives no manifest object names; leftovers; clock probes.
// Never an object that is not in the listing, never an archive a refused manifest names
// unless it is that manifest's own, and never an archive whose manifest could not be read.
GcPlan plan_gc(const GcInventory& inventory, const GcOptions& options, double now);

// Lists and reads the store for plan_gc. Throws StoreError when a listing or a read fails
// for any reason but a permanent one (a transient failure must not make a live save look
// like an orphan): gc then deletes nothing.
GcInventory take_inventory(Catalog& catalog);

// The store's time without writing to it, for a dry run: this machine's clock, but never
// earlier than the newest object listed (a dry run then reports at most what a real run,
// which reads the store's clock with a probe, would delete, unless this clock runs ahead).
double estimate_store_now(const GcInventory& inventory);

// Deletes an action's objects in order. An orphan whose manifest has appeared since the
// listing, or an action naming a malformed key, is left alone (with a warning for the
// latter): returns false then, true when the action was carried out.
bool carry_out(Catalog& catalog, const GcAction& action);

// Seconds as an operator writes them: 90 -> "90s", 3600 -> "1h", 5400 -> "1.5h".
std::string duration_text(double seconds);

} // namespace ephemera::store
