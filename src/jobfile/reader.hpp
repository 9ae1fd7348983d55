#pragma once

#include "jobfile/job_spec.hpp"
#include "jobfile/stanza_check.hpp"

#include <filesystem>
#include <optional>
#include <string_view>

namespace ephemera::jobfile {

// The sibling file (README, "The sibling file"): .github/buildomat/jobs/build.sh ->
// .github/buildomat/persist/build.toml
std::filesystem::path sibling_persist_file(const std::filesystem::path& job_file);

// Reads a job (*.sh with '#:' frontmatter, or *.toml) and its persist file (the one given,
// else the sibling when it exists), validates the job and its stanzas (README, "Job TOML
// reference"), merges the stanzas. Throws util::InputError with every error (and the warnings),
// positions in each file's own numbering; warnings alone land in JobSpec::warnings.
JobSpec load_job(const std::filesystem::path& job_file,
                 const std::optional<std::filesystem::path>& persist_file = std::nullopt);

// The closest of candidates within a small edit distance, for "did you mean".
std::optional<std::string> closest(std::string_view word,
                                   const std::vector<std::string>& candidates);

} // namespace ephemera::jobfile
