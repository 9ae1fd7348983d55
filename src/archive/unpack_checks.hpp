#pragma once

#include "archive/archive.hpp"

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_set>

struct archive_entry;

// The unpacker's checks of each entry's header, before anything is made for it: what may be
// restored at all, and where. Internal to src/archive.
namespace ephemera::archive::detail {

// Throws ArchiveError "refused entry '<name>': <why>", the form every refusal takes.
[[noreturn]] void refuse(std::string_view name, const std::string& why);

// Whether name is a plain relative path: not empty, not absolute, no empty, '.' or '..'
// component.
bool safe_name(std::string_view name);

// An entry the checks accepted: what it is and where it goes.
struct Accepted {
  std::string name;                 // as in the archive, without a trailing '/'
  EntryType type = EntryType::file; // a hard link is a file
  uint32_t mode = 0;                // permission bits, never set-user-id or set-group-id
  std::string base;                 // the destination's base, without a trailing '/'
  std::string rel;                  // a plain relative path below base
  std::string final;                // base + "/" + rel
  const char* hardlink = nullptr;   // the archive name a hard link names (libarchive's string)
  int64_t sec = 0;                  // mtime
  long nsec = 0;
};

// An entry as its producer describes it, before any check: a tar header (header_of), or an
// entry a content-addressed restore verified (unpack_entries).
struct Header {
  std::string_view name;          // may end in '/'
  std::optional<EntryType> type;  // nullopt: a device, fifo or socket
  uint32_t perm = 0;              // permission bits as stored, set-id bits included
  const char* hardlink = nullptr; // the archive name a hard link names
  int64_t sec = 0;                // mtime
  long nsec = 0;
};

// A libarchive entry's header, unchecked; valid while e is.
Header header_of(archive_entry* e);

// Checks entries in archive order, remembering what earlier ones were.
class EntryChecks {
public:
  explicit EntryChecks(const Resolve& resolve) : m_resolve(resolve) {}

  // The entry's kind and destination, or a refusal (ArchiveError naming it): a name that is
  // not a plain relative path, a device, fifo or socket, set-id bits, a path below a
  // symlink of the same archive, a path the resolver refuses or maps to anything but a
  // plain relative path, and a second entry for a destination already taken. Every entry of
  // every producer is admitted here, once.
  Accepted check(const Header& h);

private:
  const Resolve& m_resolve;
  std::set<std::string> m_symlinks;         // names of the archive's symlinks so far
  std::unordered_set<std::string> m_finals; // destinations taken
};

} // namespace ephemera::archive::detail
