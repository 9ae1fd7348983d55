#pragma once

#include "archive/archive.hpp"

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

// The index of one saved state: every entry (path, type, mode, mtime, link target, size) and
// where its content lies (pack, frame, offset, length, SHA-256 of each chunk). One object per
// state, written last: it is the commit point of a save and what the manifest points to.
//
// Object format, version 1: one or more zstd frames whose content is the body, all integers
// little-endian, every length bounded and checked before it is used:
//   magic "ephemera-cas-index/1\n"
//   u32 scope length, scope bytes          the scope that may use this index's packs
//   u32 pack count, then per pack:         32-byte SHA-256 of the pack object (its name),
//                                          u64 pack size, u32 frame count, then per frame
//                                          u32 compressed size, u32 content size
//   u32 entry count, then per entry, in strictly increasing byte order of path (mode at
//   most 01777: set-id bits are never saved):
//     u32 path length, path; u8 type (0 file, 1 directory, 2 symlink, 3 hard link); u32 mode;
//     i64 mtime_ns
//     file:      u64 size, u32 chunk count, per chunk u32 pack, u32 frame, u32 offset in the
//                frame's content, u32 length, 32-byte SHA-256 of the chunk's bytes
//     symlink:   u32 target length, target
//     hard link: u32 path length, the path of an earlier entry of type file (not itself a hard
//                link) whose mode and mtime it has: the same file under a second name
// and nothing after the last entry. A pack's frames lie end to end from offset 0 and fill it
// exactly; each is an independent zstd frame, so a range of frames decodes alone.
namespace ephemera::cas {

using Hash = std::array<uint8_t, 32>;

inline constexpr std::string_view k_index_magic = "ephemera-cas-index/1\n";

// Bounds of the format: an index beyond any of them is refused as a whole.
inline constexpr uint64_t k_max_index_object = 64ULL << 20; // compressed bytes
inline constexpr uint64_t k_max_index_body = 256ULL << 20;  // decompressed bytes
inline constexpr uint32_t k_max_entries = 500000;
inline constexpr uint64_t k_max_chunks = 4000000; // in all entries
inline constexpr uint32_t k_max_packs = 4096;
inline constexpr uint64_t k_max_frames = 1000000; // in all packs
inline constexpr uint32_t k_max_frame_content = 4U << 20;
inline constexpr uint64_t k_max_pack_size = 1ULL << 32;
inline constexpr uint32_t k_max_path = 4096;
inline constexpr uint32_t k_max_scope = 1024;

struct Frame {
  uint64_t offset = 0; // in the pack object (not stored: the sum of those before it)
  uint32_t compressed = 0;
  uint32_t size = 0; // of its content
};

struct PackRef {
  Hash id{}; // SHA-256 of the pack object
  uint64_t size = 0;
  std::vector<Frame> frames;
};

struct ChunkRef {
  uint32_t pack = 0;   // into Index::packs
  uint32_t frame = 0;  // into that pack's frames
  uint32_t offset = 0; // in the frame's content
  uint32_t length = 0;
  Hash hash{};
};

struct Entry {
  std::string path; // archive name, e.g. "work/node_modules/x/index.js"
  archive::EntryType type = archive::EntryType::file;
  uint32_t mode = 0;
  int64_t mtime_ns = 0;
  uint64_t size = 0;       // files: the sum of their chunks' lengths
  std::string link_target; // symlinks
  // A hard link (type file, no size, no chunks): the path of the earlier file entry it is a
  // second name of. A tool that checks whether two names are one file (cargo's uplifted
  // build outputs) finds them so after a restore, as they were saved, and rewrites nothing.
  std::string hardlink;
  std::vector<ChunkRef> chunks;
};

struct Index {
  std::string scope;
  std::vector<PackRef> packs;
  std::vector<Entry> entries;
};

// The index as an object (zstd-compressed body). Throws util::Error when it breaks a bound
// or a rule of the format, so that nothing written can fail to parse.
std::string encode(const Index& index);

// Parses an index object, strictly: every rule above, and expected_scope must be the index's
// own scope (an index of another scope is refused: its packs are not this scope's). Throws
// util::ArchiveError (a save refused, as a broken archive is) naming the first problem (and the entry, escaped) before allocating for any
// count that is out of bounds.
Index parse(std::string_view object, std::string_view expected_scope);

// The index body (decompressed) parsed by the same rules; for tests and the fuzz target.
Index parse_body(std::string_view body, std::string_view expected_scope);

std::string hex(const Hash& h);

} // namespace ephemera::cas
