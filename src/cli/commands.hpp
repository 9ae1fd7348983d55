#pragma once

#include "cli/cli.hpp"

// One registrar per subcommand, each defined in its own file in this folder.
namespace ephemera::cli {

void add_version(CLI::App& app, Globals& globals, Action& action);

} // namespace ephemera::cli
