#pragma once

#include "archive/archive.hpp"
#include "cas/chunker.hpp"
#include "cas/index.hpp"
#include "cas/pack.hpp"
#include "store/backend.hpp"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

// Incremental, content-addressed saves on the store's Backend primitives. A save hashes every
// file (cut into content-defined chunks when it is large), uploads as new packs only the
// chunks its base index does not already hold, and writes its own index last. A restore
// checks every chunk against its hash before its bytes go on, and writes through the
// archive's all-or-nothing staging.
//
// Store layout, below the scope's prefix (Scope::prefix):
//   packs/<sha256 of the pack>.pack     immutable, named by content
//   index/<sha256 of the index>.idx     immutable, named by content; the commit point
namespace ephemera::cas {

// What may share packs: one repository, target and stanza name at one trust level (trusted,
// or untrusted of one origin). A save dedups only against an index of its own scope and
// writes only below its own prefix; a restore reads packs only below the prefix of the scope
// it was asked for, and refuses an index that names another scope.
struct Scope {
  std::string repository;
  std::string target;
  std::string name;
  bool trusted = true;
  std::string origin; // untrusted saves: the origin they are bound to

  // "repo/target/name/trusted" or ".../untrusted/<origin>", each component sanitised.
  std::string id() const;
  // "cas1/" + id() + "/"
  std::string prefix() const;
};

// What a save or a restore saw of each file it read or wrote, by host path: enough to know
// that a file is unchanged without reading it again. The kernel changes a file's ctime on
// every write and no call sets it back, so a file whose device, inode, size, mtime and ctime
// are all the recorded ones still holds the recorded content (size and mtime alone are not
// enough: npm gives every file of a package one fixed mtime, and a patch bump keeps sizes).
struct Seen {
  uint64_t dev = 0;
  uint64_t ino = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  std::vector<Hash> chunks;
};
using SeenFiles = std::unordered_map<std::string, Seen>;

// The record as bytes (for the state dir), and back. parse_seen throws util::Error on
// anything malformed or beyond k_max_entries files and k_max_chunks chunks.
std::string encode_seen(const SeenFiles& seen);
SeenFiles parse_seen(std::string_view bytes);

struct SaveOptions {
  ChunkSizes sizes;
  PackOptions pack;
  // Optional: files a previous save or restore saw; one unchanged since is not read again
  // when its chunks are in the base (or already in this save).
  const SeenFiles* seen = nullptr;
  // Optional: filled with what this save saw, for the next one.
  SeenFiles* record = nullptr;
  // Optional: told of the files and bytes done, every quarter second at most.
  archive::ProgressFn progress;
};

struct SaveResult {
  std::string index_key;
  std::string index_sha256;
  uint64_t index_bytes = 0;
  uint64_t pack_bytes = 0;     // compressed bytes of the new packs
  uint32_t packs = 0;          // new packs
  uint64_t new_bytes = 0;      // content bytes in the new packs
  uint64_t unpacked_bytes = 0; // content bytes of every file
  uint64_t files = 0;
  uint64_t directories = 0;
  uint64_t symlinks = 0;
  uint64_t stored_bytes = 0; // compressed bytes of every pack the state uses, old and new
  uint64_t files_read = 0;   // files read (the others were unchanged since `seen`)
  bool base_used = false;    // whether the base was of this scope and dedup used it
  bool rebased = false;      // the base was of this scope, but should_rebase said start over
  double seconds = 0;
  uint64_t uploaded() const { return pack_bytes + index_bytes; }
};

// Saves items (any order; names unique). base, when given and of the same scope, is the
// index whose chunks the save may reference instead of uploading them again; a base of
// another scope is ignored, and so is one that should_rebase (gc.hpp) finds too sparse.
// Reads each file once; a file that changed (size or mtime) or vanished while it was read
// throws util::ArchiveError naming it unless its item is may_change (then it is saved as
// read, or left out when gone). Packs are uploaded first,
// the index last: a save killed at any moment leaves at most unreferenced packs.
SaveResult save(store::Backend& backend, const Scope& scope,
                const std::vector<archive::PackItem>& items, const Index* base,
                const SaveOptions& options);

// Reads and parses the index at key, which must lie below scope's prefix, with the SHA-256
// and size a manifest gives for it. Throws util::ArchiveError otherwise (a save refused, as a
// broken archive is: a restore passes over it to the next candidate), util::StoreError when
// the store fails.
Index load_index(store::Backend& backend, const Scope& scope, const std::string& key,
                 const std::string& sha256, uint64_t size);

struct RestoreOptions {
  // resolve, written, journal, progress and max_unpacked_bytes as for archive::unpack;
  // expected_sha256 and expected_size are not used (each chunk is verified instead).
  archive::UnpackOptions unpack;
  // Optional: filled with what the restore wrote, for the next save's SaveOptions::seen.
  SeenFiles* record = nullptr;
};

struct RestoreResult {
  archive::UnpackResult unpacked;
  uint64_t fetched_bytes = 0; // compressed bytes read from packs
};

// Restores the state of index (loaded with load_index for this scope). Every pack is checked
// to exist with the index's size before any content is read; every chunk is checked against
// its hash before its bytes go on, into archive::EntryUnpack, which admits each entry with
// the archive's checks (confinement, type, mode, duplicates) and stages it; the commit comes
// after the last. On any failure nothing is written at a destination. Throws
// util::ArchiveError for content refused (a pack missing, of another size, bytes that do not
// decode or do not hash to the index's), util::StoreError when the store fails.
RestoreResult restore(store::Backend& backend, const Scope& scope, const Index& index,
                      const RestoreOptions& options);

struct ExportResult {
  uint64_t files = 0;
  uint64_t directories = 0;
  uint64_t symlinks = 0;
  uint64_t bytes = 0;         // content bytes written
  uint64_t fetched_bytes = 0; // compressed bytes read from packs
};

// Writes the state of index (loaded with load_index for this scope) to out as a plain archive,
// entry by entry in path order: every pack is checked first as for a restore, and every chunk
// against its hash before its bytes reach out. An index whose content exceeds max_bytes (the
// manifest's unpacked size) is refused before anything is written. progress, when given, is
// told the files and bytes written. Throws util::Error or util::ArchiveError; what out holds
// is then to be thrown away.
ExportResult export_tar(store::Backend& backend, const Scope& scope, const Index& index,
                        uint64_t max_bytes, archive::TarWriter& out,
                        const archive::ProgressFn& progress);

} // namespace ephemera::cas
