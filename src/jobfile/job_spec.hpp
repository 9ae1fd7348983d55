#pragma once

#include "rules/rules.hpp"
#include "util/error.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ephemera::jobfile {

// A value and where the author wrote it.
template <typename T> struct Located {
  T value{};
  util::Position pos;
};

enum class Share { repository, branch };

// One [[persist]] stanza (README, "Job TOML reference"), validated.
struct PersistSpec {
  Located<std::string> name;
  std::vector<Located<std::string>> rules; // as written, prefixes included
  // The same, parsed once: by StanzaCheck::rules as the reader checks them, and a preset's
  // by session::Stanza.
  std::vector<rules::Rule> parsed_rules;
  Located<int64_t> epoch;
  Located<std::string> cache_key; // "" when absent
  std::vector<Located<std::string>> key_files;
  std::vector<Located<std::string>> restore_keys;
  bool restore = true;
  bool save = true;
  bool restore_on_protected = false;
  Share share = Share::repository;
  std::optional<uint64_t> max_size; // bytes, compressed
  std::optional<int> level;         // zstd 1..19
  util::Position pos;               // the [[persist]] header
  std::string source_file;          // job file or sibling persist file
  // From `preset = "NAME"` (src/presets/), never set by a key of their own: the preset, the
  // name of each toolchain probe its key hashes and, once presets::resolve has run, their
  // outputs; whether the tool names its entries by their content and touches those it uses
  // (ccache, go's build cache), so that "nothing changed" compares only the paths, types,
  // sizes, modes and link targets of files and symlinks, not mtimes or directories.
  Located<std::string> preset; // "" when none
  bool derived_rules = false;  // presets::resolve adds rules from the job's tree
  std::vector<std::pair<std::string, std::string>> probe_outputs; // command line, output
  bool content_addressed = false;
  // key_files came from the preset: each is optional (rust-toolchain.toml often is not
  // there), so only none of them matching is worth a warning.
  bool preset_key_files = false;
};

// A job file after reading (README, "Job TOML reference").
struct JobSpec {
  std::string file;                        // the job file as given
  std::optional<std::string> persist_file; // the sibling file, when one was read
  std::string name;
  std::string variety;
  bool enable = true;
  std::optional<std::string> target;
  std::vector<PersistSpec> persist;
  std::vector<util::Diagnostic> warnings; // lints; errors are thrown as InputError
};

} // namespace ephemera::jobfile
