#pragma once

#include "store/catalog.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
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
  // gc --save: when not empty, the manifest objects of the only saves to delete, whatever
  // their standing or age, with what no other save holds: a content-addressed one's index
  // and the packs no index that stays references (through the same checks as a full run).
  // Nothing else is chosen.
  std::set<std::string> only;
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
  // Content-addressed saves: every object below cas1/, and what the indexes that decide
  // anything reference (cas::read_indexes fills it, by index key: every index a manifest
  // names, and every index younger than the grace period). An index that could not be read
  // has `why` set; then nothing of its scope's packs is proven dead.
  std::vector<ObjectInfo> cas_listing;
  struct Content {
    std::vector<std::string> packs; // pack object keys, all below the index's own scope
    std::string why;                // why it could not be read; "" when it was
  };
  std::map<std::string, Content> indexes;
};

// What kind of object an action deletes, for the totals gc prints.
enum class GcObject { save, index, pack, other };

struct GcAction {
  std::string subject;              // what goes, for people: a manifest or another object key
  std::vector<std::string> objects; // deleted in this order: a manifest before its archive
  std::string why;
  uint64_t bytes = 0;  // as the listing gave them
  bool orphan = false; // look for its manifest once more before deleting
  // A piece of an interrupted write (objects then holds only its key, to be counted): removed
  // through the backend's LeftoverCleaner, never by remove().
  std::optional<Leftover> leftover;
  GcObject kind = GcObject::other;
  // An index or a pack: its store time in the listing. It is deleted only while it still has
  // that time (a save that uploads the same content again rewrites it, and so keeps it).
  int64_t mtime = 0;
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
// Content-addressed objects, after the manifests (so a crash leaves at worst objects no
// manifest names): past the grace, every index no manifest that stays names (a save
// deleted by this run frees its index in this run), then every pack no index that stays
// references (an index stays when a manifest that stays names it or it is younger than the
// grace period: a save writes packs, then its index, then its manifest). Never a pack of a
// scope where an index that stays could not be read, nor anything of a stanza one of whose
// manifest objects could not be read (it may name any index of the stanza), nor an object
// below cas1/ that is not a pack or an index where a save puts one. max_bytes counts a
// content-addressed save as its manifest, its index and the packs it references, a pack
// shared by several saves once: evicting a save frees what no save that stays references.
GcPlan plan_gc(const GcInventory& inventory, const GcOptions& options, double now);

// Lists and reads the store for plan_gc. Throws StoreError when a listing or a read fails
// for any reason but a permanent one (a transient failure must not make a live save look
// like an orphan): gc then deletes nothing.
GcInventory take_inventory(Catalog& catalog);

// The store's time without writing to it, for a dry run: this machine's clock, but never
// earlier than the newest object listed (a dry run then reports at most what a real run,
// which reads the store's clock with a probe, would delete, unless this clock runs ahead).
double estimate_store_now(const GcInventory& inventory);

// Asked just before a pack is deleted: whether it is still dead, i.e. no index written since
// the inventory references it (cas::PackRecheck answers from a fresh listing of the pack's
// scope). An empty one answers yes.
using PackRecheck = std::function<bool(const std::string& pack_key)>;

// Deletes an action's objects in order. An orphan whose manifest has appeared since the
// listing, an index or a pack rewritten since the listing (or, for a pack, one recheck says
// is referenced again), or an action naming a malformed key, is left alone (with a warning
// for the latter): returns false then, true when the action was carried out.
bool carry_out(Catalog& catalog, const GcAction& action, const PackRecheck& recheck = {});

// Seconds as an operator writes them: 90 -> "90s", 3600 -> "1h", 5400 -> "1.5h".
std::string duration_text(double seconds);

} // namespace ephemera::store
