#pragma once

#include "jobfile/job_spec.hpp"
#include "rules/walk.hpp"
#include "util/error.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

// A stanza's key (README "Keys, scope and the store"): cache_key, or cache_key-<digest> of
// the files its key_files patterns match and of its presets' probe outputs. The one place
// the key is computed: pre, post (which computes it again, after the job ran), `restore`
// and `plan` call it, and `check` for its warnings.
namespace ephemera::session {

// Bounds on what a key may hash: a pattern such as `**/*` in a large tree would otherwise
// read the whole of it before every restore and save.
constexpr size_t k_max_key_files = 10000;
constexpr uint64_t k_max_key_bytes = uint64_t{1} << 30;

struct KeyFiles {
  std::string key;
  // The files that went into the key, as the digest names them (relative to the working
  // directory, "~/..." or absolute, as a rule would be written), in the digest's order.
  std::vector<std::string> files;
  uint64_t bytes = 0; // of those files, hashed
  // Patterns that matched nothing (each hashed as a marker, so a file's appearance changes
  // the key), with where they were written; and the walk's own warnings.
  std::vector<util::Diagnostic> warnings;
};

// Matches spec.key_files as rules (README "Rules": relative to the working directory unless
// they start with '/' or '~/', '!' excluding), reads each matched regular file (a symlink
// to one is followed; anything else is never opened), sorted by the name the digest gives
// it, and digests them with spec.probe_outputs. Throws util::Error naming the file or the
// pattern when one cannot be read or parsed, or when the matches pass k_max_key_files or
// k_max_key_bytes.
KeyFiles compute_key(const jobfile::PersistSpec& spec, const rules::Anchors& anchors);

} // namespace ephemera::session
