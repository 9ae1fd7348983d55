#pragma once

#include "jobfile/job_spec.hpp"
#include "presets/presets.hpp"
#include "rules/walk.hpp"

#include <set>
#include <string>

namespace ephemera::presets {

// Fills every field of stanza that the author did not write (given holds the keys of the
// [[persist]] table) from the preset, each at the position of the `preset` key, and
// records the preset in stanza.preset. The name defaults to the preset's name.
void apply(jobfile::PersistSpec& stanza, const Preset& preset, const std::set<std::string>& given);

// What a hook adds to a preset's stanza from the job's tree and the agent, before the stanza's
// key is computed or its rules compiled (pre: before anything is restored):
// - Derived::cargo_workspace_excludes: a '!' rule set for each package of the working
//   directory's Cargo.lock that has no `source` (the workspace's own), read with the agent's
//   privileges as a regular file of at most 16 MiB, never a fifo or device; a missing or
//   unreadable Cargo.lock, or one of more than 1,000 workspace packages, adds none (a warning
//   but for a missing one);
// - each probe's output (probe.hpp), in stanza.probe_outputs, hashed into the key.
// Warnings go to the log; a stanza with no preset is returned as it is.
jobfile::PersistSpec resolve(jobfile::PersistSpec stanza, const rules::Anchors& anchors);

// resolve's first part alone, the rules (for `ephemera match`, which runs no probe).
jobfile::PersistSpec derive_rules(jobfile::PersistSpec stanza, const rules::Anchors& anchors);

// The workspace packages of a Cargo.lock text (its [[package]] tables with no `source`), sorted;
// throws util::Error when it is not TOML.
std::vector<std::string> cargo_workspace_packages(const std::string& lock_text,
                                                  const std::string& file_name);

// The four '!' rules that keep workspace package `package` out of cargo-deps' target/ rules.
std::vector<std::string> cargo_excludes(const std::string& package);

} // namespace ephemera::presets
