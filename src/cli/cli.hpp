#pragma once

#include "cli/command.hpp"

#include <functional>
#include <string>

namespace ephemera::cli {

// Exit codes are chosen here only (README, "Exit codes").
inline constexpr int k_exit_ok = 0;
inline constexpr int k_exit_failure = 1;
inline constexpr int k_exit_usage = 2;
inline constexpr int k_exit_miss = 3;

// Options every subcommand understands.
struct Globals {
  std::string store;      // --store / EPHEMERA_STORE; empty: the default local store
  std::string root = "/"; // --root: re-bases every absolute path the tool touches
  std::string state_dir;  // --state-dir / EPHEMERA_STATE_DIR
  bool json = false;
  bool quiet = false;
  bool verbose = false;
  bool strict = false;
};

// What a subcommand runs once the command line is parsed; returns the exit code.
using Action = std::function<int()>;

// Adds one subcommand to app; its callback stores the action to run into *action.
using Registrar = void (*)(Command app, Globals& globals, Action& action);

// Parse argv, run the chosen subcommand inside the one catch boundary, return the exit code.
int run(int argc, char** argv);

} // namespace ephemera::cli
