#pragma once

#include "cli/cli.hpp"

// One registrar per subcommand, each defined in its own file in this folder.
namespace ephemera::cli {

void add_version(CLI::App& app, Globals& globals, Action& action);
void add_check(CLI::App& app, Globals& globals, Action& action);
void add_match(CLI::App& app, Globals& globals, Action& action);
void add_pre(CLI::App& app, Globals& globals, Action& action);
void add_post(CLI::App& app, Globals& globals, Action& action);
void add_plan(CLI::App& app, Globals& globals, Action& action);
void add_restore(CLI::App& app, Globals& globals, Action& action);
void add_persist(CLI::App& app, Globals& globals, Action& action);
void add_report(CLI::App& app, Globals& globals, Action& action);
void add_ls(CLI::App& app, Globals& globals, Action& action);
void add_show(CLI::App& app, Globals& globals, Action& action);
void add_invalidate(CLI::App& app, Globals& globals, Action& action);
void add_gc(CLI::App& app, Globals& globals, Action& action);

} // namespace ephemera::cli
