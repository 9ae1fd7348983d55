#pragma once

#include <filesystem>
#include <string>
#include <string_view>

// The one shape of every temporary name the tool makes (write-then-rename of its own files
// in the state dir and the local store, and the unpacker's staging beside a job's files):
// ".ephemera-<16 hex>-<8 hex>". Fixed length, whatever the target's name, so a name near
// the file system's limit can still be written under a temporary name beside it; hidden,
// so `ls` in a job's directory does not show a restore under way.
namespace ephemera::util {

// A fresh name of that shape: unique in this process (a random token per thread and a
// counter) and, with O_EXCL at its creation, never taken from another process's.
std::string temp_name();

// Whether name (one path component) has exactly that shape. A name of the shape is not
// proof the tool made it: whoever removes one must know it made it too (the unpacker's
// journal) or own the directory (the local store).
bool is_temp_name(std::string_view name);

// A temporary name in target's directory, for writing target by rename.
std::filesystem::path temp_name_beside(const std::filesystem::path& target);

} // namespace ephemera::util
