#pragma once

#include "jobfile/job_spec.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

// How check and plan show what a stanza's preset expanded to.
namespace ephemera::cli {

// Indented lines for a stanza with a preset ("preset cargo-deps: ...", its rules, key files,
// restore keys, level, probes and their answers once resolved); none for a stanza without.
std::vector<std::string> preset_lines(const jobfile::PersistSpec& stanza);

// The same as JSON: null for a stanza without a preset.
nlohmann::json preset_json(const jobfile::PersistSpec& stanza);

} // namespace ephemera::cli
