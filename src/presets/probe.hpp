#pragma once

#include "presets/presets.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

// How a preset learns a toolchain's version (README "Threat model"): pre runs with the
// agent's privileges before the job, and the job file comes from whoever opened the pull
// request, so the program is never one the job file names or the job could have put there.
namespace ephemera::presets {

// Where a probe may find its program: the absolute directories of PATH (the agent's own
// environment), in order, without those at or below any of `job_dirs` (the job's home and
// working directory) and without one that is not owned by root or this user or that is
// writable by group or others. Relative and empty entries are dropped.
std::vector<std::filesystem::path> trusted_path(const std::string& path_env,
                                                const std::vector<std::filesystem::path>& job_dirs);

// The first regular, executable file named program in dirs, itself owned by root or this
// user and not writable by group or others; nullopt when there is none.
std::optional<std::filesystem::path> find_program(const std::string& program,
                                                  const std::vector<std::filesystem::path>& dirs);

struct ProbeResult {
  std::optional<std::filesystem::path> program; // what ran; nullopt when none was found
  std::string output;                           // stdout, at most k_max_output bytes
  std::string problem;                          // why output is not the program's answer
};

constexpr size_t k_max_output = 64 * 1024;
constexpr int k_timeout_seconds = 10;

// Runs probe.program found by find_program in trusted_path(PATH, job_dirs) directly (no shell),
// with argv = program and probe.args, an environment of only PATH=/usr/local/bin:/usr/bin:/bin
// and LC_ALL=C, stdin from /dev/null, stderr discarded, in the directory "/" (outside every
// checkout: a rustup proxy reads rust-toolchain.toml from its cwd and its parents), as the
// agent's user; killed after timeout_seconds; stdout kept up to k_max_output bytes. A
// program not found, killed, or exiting non-zero gives an output of "" and says why.
ProbeResult run_probe(const Probe& probe, const std::vector<std::filesystem::path>& job_dirs,
                      int timeout_seconds = k_timeout_seconds);

} // namespace ephemera::presets
