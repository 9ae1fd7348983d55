#pragma once

#include "util/entry_type.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// Pack and unpack POSIX pax tar + zstd with libarchive. Knows nothing of rules or stores:
// confinement reaches it as a callback, archives as local files.
namespace ephemera::archive {

// The walk's own type (rules::EntryType is the same): a walked entry packs unconverted.
using util::EntryType;

// One walked entry, as the walker stat'ed it.
struct PackItem {
  std::string name;   // archive path, e.g. "home/.cargo/registry/x"; never absolute
  std::string source; // where to read it on the host
  EntryType type = EntryType::file;
  uint64_t size = 0;
  uint32_t mode = 0;
  int64_t mtime_ns = 0;
  uint64_t dev = 0;
  uint64_t ino = 0;
  uint64_t nlink = 1;
  std::string link_target;
  bool may_change = false; // '%': archive as read (or skip if gone) instead of failing
};

struct Progress {
  uint64_t files = 0;
  uint64_t bytes = 0;
  double seconds = 0;
};
using ProgressFn = std::function<void(const Progress&)>;

struct PackOptions {
  int level = 3;
  int threads = 0; // zstd worker threads; 0: one per core
  ProgressFn progress;
};

struct PackResult {
  std::string sha256; // of the compressed archive
  uint64_t compressed_bytes = 0;
  uint64_t unpacked_bytes = 0; // file contents
  uint64_t files = 0;
  uint64_t symlinks = 0;
  uint64_t directories = 0;
  double seconds = 0;
};

// Packs items into out_file. Throws util::ArchiveError naming the path when a file changed
// (size or mtime) or vanished while it was read and its item is not may_change; out_file is
// then removed.
PackResult pack(const std::vector<PackItem>& items, const std::filesystem::path& out_file,
                const PackOptions& options);

// Where an entry goes: below base (an anchor directory on the host, created if missing), at
// the relative path rel. No component of rel is ever followed through a symlink.
struct Destination {
  std::filesystem::path base;
  std::string rel;
};
// Decides each entry: its destination, or nullopt to refuse the archive.
using Resolve = std::function<std::optional<Destination>(std::string_view name, EntryType type)>;

// An accepted entry as it will stand once the restore is committed.
struct Written {
  std::string_view name; // as in the archive, without a trailing '/'
  EntryType type = EntryType::file;
  uint64_t size = 0; // files (0 for a hard link: see hardlink)
  uint32_t mode = 0; // as set; 0777 for a symlink
  int64_t mtime_ns = 0;
  std::string_view link_target; // symlinks
  std::string_view hardlink;    // a hard link: the earlier file it names (its size, mode, mtime)
};
using WrittenFn = std::function<void(const Written&)>;

struct UnpackOptions {
  // The manifest's SHA-256 and size of the compressed archive. The unpacker hashes exactly
  // the bytes it reads and decompresses, and commits nothing unless they are expected_size
  // bytes with this digest: whoever can write the file (a store's directory, the state dir
  // a download lands in) cannot swap bytes in after a check.
  std::string expected_sha256;
  uint64_t expected_size = 0;
  uint64_t max_unpacked_bytes = 0;
  Resolve resolve;
  ProgressFn progress;
  WrittenFn written; // optional: told of every entry as it is accepted
  // Optional: a file (in a directory only the caller uses, such as the state dir) where each
  // staging name is recorded before it is made, and which is removed after the commit or
  // the rollback. A restore killed in between leaves it for sweep_staged.
  std::filesystem::path journal;
};

// Whether an interrupted unpack's staging name may be removed from base/rel (rel "" is base
// itself): the caller's rules reach that directory.
using AdmitDir = std::function<bool(const std::string& base, const std::string& rel)>;

// Removes what an unpack killed before its commit or rollback staged, exactly as its
// journal lists it: only names of the unpacker's own staging shape, only in directories
// admit accepts, reached below their base without following a symlink; then the journal.
// Returns how many names were removed; a missing journal is nothing to do. Files of the
// job that merely look like temporary names are never touched.
size_t sweep_staged(const std::filesystem::path& journal, const AdmitDir& admit);

struct UnpackResult {
  uint64_t files = 0;
  uint64_t bytes = 0;
  uint64_t symlinks = 0;
  uint64_t directories = 0;
  double seconds = 0;
};

// Opens archive_file (a regular file of options.expected_size bytes, never through a
// symlink: anything else is refused before a byte is read) and unpacks it in one read that
// also hashes it. Every entry is extracted out of sight and moved into place only when the
// whole archive was accepted and its size and SHA-256 are the expected ones: a directory
// that does not exist yet is filled under a temporary name beside it and renamed once; a
// file in a directory that exists is written under a temporary name and renamed. On any
// failure (refused entry, digest mismatch, more bytes than declared, disk full, corrupt
// stream) everything written is removed and existing files are untouched. Small files are
// written by a second thread while this one decompresses. Throws util::ArchiveError naming
// the first offending entry (or the digest mismatch, when the bytes were not the expected
// ones: a corrupt stream is then reported as what it is).
UnpackResult unpack(const std::filesystem::path& archive_file, const UnpackOptions& options);
// The same from an open descriptor (read from offset 0 with pread, whatever its position;
// it must be a regular file of options.expected_size bytes); fd stays open.
UnpackResult unpack_fd(int fd, const UnpackOptions& options);

// An entry handed to EntryUnpack by a producer that verified its content itself (a
// content-addressed restore checks every chunk against its hash in the signed index).
struct StreamEntry {
  std::string_view name; // as an archive would name it, e.g. "work/node_modules/x"
  EntryType type = EntryType::file;
  uint32_t mode = 0; // permission bits; set-id bits are refused as in an archive
  int64_t mtime_ns = 0;
  uint64_t size = 0;            // files
  std::string_view link_target; // symlinks
  // A hard link (type file, size 0): the name of an earlier file entry it is a second name of.
  std::string_view hardlink;
};
// A file's next piece of verified content; empty when there is no more. A piece stays valid
// until the next call.
using NextPiece = std::function<std::string_view()>;

// The all-or-nothing unpack of entries that come one at a time, already verified: no
// archive, so nothing is hashed again. Each entry is admitted by the very checks an
// archive's entries pass (name, type, set-id bits, a path below a link of the same set,
// confinement through options.resolve, a destination taken twice, max_unpacked_bytes) and
// staged the same way; commit() moves everything into place; destruction before a commit
// removes all that was made, and existing files stay untouched. expected_sha256 and
// expected_size are not used.
class EntryUnpack {
public:
  explicit EntryUnpack(const UnpackOptions& options);
  ~EntryUnpack();
  EntryUnpack(const EntryUnpack&) = delete;
  EntryUnpack& operator=(const EntryUnpack&) = delete;

  // Admits and stages e. A file's content is pulled from next until it gave e.size bytes, and
  // next must then be at its end: more bytes, or fewer, refuse the entry. Throws
  // util::ArchiveError "refused entry '<name>': <why>" (or whatever next throws); after a
  // throw the unpack can only be abandoned.
  void add(const StreamEntry& e, const NextPiece& next);
  // Writes what is queued and moves everything into place. Throws util::ArchiveError (then
  // everything made is removed).
  UnpackResult commit();

private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

// Writes entries handed one at a time, already verified by their producer (a content-addressed
// save being exported), as the archive pack() writes: POSIX pax, zstd at `level`, owners 0,
// mode bits without set-id bits, mtimes to the nanosecond. Each entry first passes the
// unpacker's own checks of its shape (a plain relative name, no device, no set-id bits,
// nothing below a symlink of the same stream, nothing twice), so an export holds nothing a
// restore would refuse for its shape. The bytes go to fd, which stays the caller's.
class TarWriter {
public:
  TarWriter(int fd, int level);
  ~TarWriter();
  TarWriter(const TarWriter&) = delete;
  TarWriter& operator=(const TarWriter&) = delete;

  // Writes e; a file's content is pulled from next until it gave e.size bytes, and next must
  // then be at its end. Throws util::ArchiveError "refused entry '<name>': <why>" for a shape
  // or a length the checks refuse, "unable to write the archive: <why>" when fd fails (or
  // whatever next throws); after a throw the writer can only be abandoned.
  void add(const StreamEntry& e, const NextPiece& next);
  // Ends the archive and returns the compressed bytes written to fd. Throws as add.
  uint64_t finish();

private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

} // namespace ephemera::archive
