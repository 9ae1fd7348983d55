#pragma once

#include <cstdint>
#include <string>

namespace ephemera::store {
class Catalog;
struct Manifest;
} // namespace ephemera::store

// `ephemera export`: one save as a plain tar.zst that GNU tar reads, whatever its format.
namespace ephemera::session {

struct ExportResult {
  bool content_addressed = false;
  uint64_t files = 0;   // content-addressed: files written; a single archive: its manifest's
  uint64_t bytes = 0;   // content bytes (likewise)
  uint64_t written = 0; // bytes of the tar.zst written
  uint64_t fetched = 0; // compressed bytes read from the store
  double seconds = 0;
};

// Writes save m as a plain tar.zst at out, or on stdout when out is "-". A content-addressed
// save: its index loaded for the manifest's own scope and held to the manifest's size and
// SHA-256, every chunk verified against the index before its bytes are written, the entries
// in path order with their modes, mtimes and link targets (as a single archive holds them).
// A single archive: its bytes as stored, their size and SHA-256 the manifest's. With signing
// on, a manifest that is unsigned or badly signed is refused before anything is read.
// A file out is written under a temporary name beside it and renamed over it only once all
// is verified: on any error the temporary is removed and out is as it was. On stdout, a single
// archive is downloaded and verified whole (in a temporary directory) before its first byte is
// written; a content-addressed save streams, each chunk verified before it is written, so an
// error cuts the stream short (what was written is verified, but incomplete). Throws
// util::Error whose message names the save and the cause.
ExportResult export_save(store::Catalog& catalog, const store::Manifest& m, const std::string& out);

} // namespace ephemera::session
