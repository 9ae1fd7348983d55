#pragma once

#include "cas/cas.hpp"
#include "cas/index.hpp"
#include "store/backend.hpp"
#include "store/gc.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

// Garbage collection of content-addressed objects: what the indexes that decide anything
// reference, read for store::plan_gc, which counts pack references through them, and the
// last look before a pack is deleted. And when a save should start a new base.
namespace ephemera::cas {

// Fills inventory.indexes for store::plan_gc: every index a manifest names (saves and refused
// ones), held to the manifest's size and SHA-256 and to the manifest's own scope, and every
// other index whose store time is less than grace_seconds before now (a save in progress
// writes its index before its manifest), held to its name and the scope of its folder. Only
// keys of inventory.cas_listing that parse as an index are read. An index that cannot be read
// (missing, too large, not the bytes its name or manifest says, malformed, of another scope)
// is recorded with why, naming the key, and gc keeps every pack of its scope; so is each
// index no manifest names past the 32nd or 256 MiB read in one scope (a store writer who
// plants more keeps that scope's packs for the grace period, and no more). A transient
// store failure throws util::StoreError: gc then deletes nothing.
void read_indexes(store::Backend& backend, store::GcInventory& inventory, double now,
                  double grace_seconds);

// The pack keys an index references: all below its scope's packs/ folder, by construction.
std::vector<std::string> pack_keys(const Scope& scope, const Index& index);

// The last look before gc deletes a pack (a store::PackRecheck): lists the indexes of the
// pack's scope again and reads every one the inventory did not know, once; the pack is still
// dead when none of them references it and each could be read. Narrows the race with a save
// that builds on an old state and writes its index while gc runs to the moment between this
// listing and the deletion; the save checks after writing its index that every pack it
// references is there (and saves in full otherwise), which closes most of what remains.
class PackRecheck {
public:
  PackRecheck(store::Backend& backend, const store::GcInventory& inventory);
  bool operator()(const std::string& pack_key);

private:
  store::Backend& m_backend;
  std::map<std::string, bool> m_known; // index keys listed at the inventory
  // Indexes read since: their pack keys, or an empty optional when one could not be read.
  std::map<std::string, std::optional<std::vector<std::string>>> m_read;
};

// What a save holds in the store, for ls and stats: a single archive, at its manifest's size;
// a content-addressed save, its index and the packs the index references, each with its size
// (the index's as the manifest gives it, the packs' as the index records them; a restore
// checks both against the store), only the index when it cannot be read (a warning says
// why). Saves that share packs list them each: count them with HeldBytes.
std::vector<std::pair<std::string, uint64_t>> held_objects(store::Backend& backend,
                                                           const store::Manifest& m);

// The bytes a set of saves holds in the store: each object once, however many of the saves
// hold it (a pack shared by the saves of one scope), the sum saturating (a forged manifest
// may claim 2^64 - 1 bytes).
class HeldBytes {
public:
  // Adds what held_objects gave for one save.
  void add(const std::vector<std::pair<std::string, uint64_t>>& objects);
  uint64_t bytes() const { return m_bytes; }

private:
  std::map<std::string, uint64_t> m_objects;
  uint64_t m_bytes = 0;
};

// Whether a save should ignore base and write a new full state (a new base): when less than
// half the content of the packs base references is content base uses, or base spreads over
// more than 8 packs beyond what a full save of it would make. Keeps restore fan-out and the
// bytes a restore fetches bounded.
bool should_rebase(const Index& base, uint64_t pack_bytes);

} // namespace ephemera::cas
