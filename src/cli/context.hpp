#pragma once

#include "cli/cli.hpp"
#include "policy/policy.hpp"
#include "session/session.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace ephemera::cli {

// The job context flags (README "Command line"), with the agent's environment as defaults.
struct ContextOptions {
  std::string job;     // --job / EPHEMERA_JOB
  std::string persist; // --persist: a persist file other than the sibling
  std::string repository;
  std::string branch;
  std::string commit;
  std::string job_id;
  std::string event;
  bool untrusted = false; // --untrusted; else EPHEMERA_UNTRUSTED (see make_context)
  std::string origin;     // --origin / EPHEMERA_ORIGIN: the fork or pull request
  std::vector<std::string> protected_branches;
  std::string workdir; // job-visible; default: the current directory
  std::string home;    // job-visible; default: $HOME
};

// Adds --repository, --branch, ... to a subcommand; with_job also adds --job and --persist.
void add_context_options(Command sub, ContextOptions& options, bool with_job);

// Adds --budget (the time a restore may take; EPHEMERA_BUDGET when not given) to pre and
// restore; `budget` receives the flag as given.
void add_budget_option(Command sub, std::string& budget);
// Starts the process's time budget (util/budget.hpp) from --budget, else EPHEMERA_BUDGET,
// else none. A value that is not a duration above 0 and at most 7d is an InputError naming
// it and where it came from.
void start_budget(const std::string& flag);

// Resolves flags and environment into the policy's context; the branch loses a "refs/heads/"
// prefix. Throws InputError for a bad --event, and for an EPHEMERA_UNTRUSTED that is not
// one of 1/true/yes or 0/false/no/empty (a typo must not make a fork's job trusted).
policy::Context make_context(const ContextOptions& options);

// Workdir and home with their defaults applied (job-visible absolute paths).
std::string workdir_of(const ContextOptions& options);
std::string home_of(const ContextOptions& options);

// The state dir shared by pre, persist, restore and post of one job: --state-dir, else
// session::default_state_dir.
std::filesystem::path state_dir_of(const Globals& globals, const ContextOptions& options);

// --store or EPHEMERA_STORE.
session::StoreOptions store_options(const Globals& globals);

// Everything a session needs, from the flags and the environment. Throws InputError as
// make_context does.
session::Options session_options(const Globals& globals, const ContextOptions& options);

// --persist, when given.
std::optional<std::filesystem::path> persist_file_of(const ContextOptions& options);

// Loads --job into the session; throws InputError when there is none or it is broken.
void load_job(session::Session& session, const ContextOptions& options);

} // namespace ephemera::cli
