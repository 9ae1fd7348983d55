#pragma once

#include "jobfile/job_spec.hpp"

#include <filesystem>
#include <optional>
#include <string_view>

namespace ephemera::jobfile {

// The sibling file SPEC 2 names: .github/buildomat/jobs/build.sh ->
// .github/buildomat/persist/build.toml
std::filesystem::path sibling_persist_file(const std::filesystem::path& job_file);

// Reads a job (*.sh with '#:' frontmatter, or *.toml) and its persist file (the one given,
// else the sibling when it exists), validates SPEC 2 and 2.1, merges the stanzas.
// Throws util::InputError with every error (and the warnings), positions in each file's
// own numbering; warnings alone land in JobSpec::warnings.
JobSpec load_job(const std::filesystem::path& job_file,
                 const std::optional<std::filesystem::path>& persist_file = std::nullopt);

// ^[a-z0-9][a-z0-9._-]{0,63}$: a stanza name (it also names files and object paths).
bool valid_stanza_name(std::string_view name);

// What is wrong with a stanza that did not come from TOML (a nomination of `ephemera
// persist`, read back from the state dir the job can write), by the rules of SPEC 2.1:
// the name, the rules (each well-formed, at least one not '!'), epoch >= 0, cache_key.
// One message each; empty when it is valid.
std::vector<std::string> stanza_problems(const PersistSpec& stanza);

// The closest of candidates within a small edit distance, for "did you mean".
std::optional<std::string> closest(std::string_view word, const std::vector<std::string>& candidates);

} // namespace ephemera::jobfile
