#include "cli/commands.hpp"

#include "ephemera_config.hpp"

#include <CLI/CLI.hpp>

#include <cstdio>

namespace ephemera::cli {

void add_version(CLI::App& app, Globals& /*globals*/, Action& action) {
  auto* sub = app.add_subcommand("version", "Print the version");
  sub->callback([&action] {
    action = [] {
      std::printf("ephemera %s\n", EPHEMERA_VERSION);
      return k_exit_ok;
    };
  });
}

} // namespace ephemera::cli
