#pragma once

#include <cstdint>

namespace ephemera::util {

// What the tool keeps of a file tree: regular files, symlinks (as links) and directories.
// One type for the walk that selects them (rules), the archive that packs and unpacks them,
// and the session between, so an entry's type passes from one to the other unconverted.
// The values are hashed into a file set's fingerprint: append, never renumber.
enum class EntryType : uint8_t { file = 0, symlink = 1, directory = 2 };

} // namespace ephemera::util
