#pragma once

#include "cli/cli.hpp"

// One registrar per subcommand, each defined in its own file in this folder.
namespace ephemera::cli {

void add_version(Command app, Globals& globals, Action& action);
void add_check(Command app, Globals& globals, Action& action);
void add_match(Command app, Globals& globals, Action& action);
void add_pre(Command app, Globals& globals, Action& action);
void add_post(Command app, Globals& globals, Action& action);
void add_plan(Command app, Globals& globals, Action& action);
void add_lookup(Command app, Globals& globals, Action& action);
void add_restore(Command app, Globals& globals, Action& action);
void add_persist(Command app, Globals& globals, Action& action);
void add_report(Command app, Globals& globals, Action& action);
void add_status(Command app, Globals& globals, Action& action);
void add_ls(Command app, Globals& globals, Action& action);
void add_show(Command app, Globals& globals, Action& action);
void add_export(Command app, Globals& globals, Action& action);
void add_invalidate(Command app, Globals& globals, Action& action);
void add_gc(Command app, Globals& globals, Action& action);
void add_stats(Command app, Globals& globals, Action& action);
void add_presets(Command app, Globals& globals, Action& action);
void add_serve(Command app, Globals& globals, Action& action);
void add_token(Command app, Globals& globals, Action& action);

} // namespace ephemera::cli
