#include "cli/commands.hpp"
#include "ephemera_config.hpp"

#include <cstdio>

namespace ephemera::cli {

void add_version(Command app, Globals& /*globals*/, Action& action) {
  auto sub = app.add_subcommand("version", "Print the version");
  sub.callback([&action] {
    action = [] {
      std::printf("ephemera %s\n", EPHEMERA_VERSION);
      return k_exit_ok;
    };
  });
}

} // namespace ephemera::cli
