#include "cli/cli.hpp"

#include "cli/commands.hpp"
#include "ephemera_config.hpp"
#include "util/error.hpp"
#include "util/log.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sys/stat.h>

namespace ephemera::cli {

namespace {

const Registrar k_registrars[] = {
    add_pre,    add_post,    add_restore, add_persist,    add_plan,  add_report,
    add_status, add_ls,      add_show,    add_invalidate, add_gc,    add_check,
    add_match,  add_presets, add_version, add_serve,      add_token, add_lookup,
    add_stats,  add_export,
};

void add_globals(Command app, Globals& g) {
  app.add_option("--store", g.store,
                 "Store URL: a path, file:///path, s3://bucket/prefix or a broker's http(s)://host")
      .envname("EPHEMERA_STORE");
  app.add_option("--root", g.root, "Re-base every absolute path under this directory")
      .capture_default_str();
  app.add_option("--state-dir", g.state_dir, "Where pre, persist and post share what the job did")
      .envname("EPHEMERA_STATE_DIR");
  app.add_flag("--json", g.json, "Machine-readable output on stdout");
  app.add_flag("-q,--quiet", g.quiet, "Only warnings and errors on stderr");
  app.add_flag("-v,--verbose", g.verbose, "More detail on stderr");
  app.add_flag("--strict", g.strict, "Cache problems become failures (exit 1)");
}

// --root re-bases every path the tool touches: anything but an existing directory (an
// empty value, a regular file) would quietly put them somewhere nobody meant.
void check_root(const std::string& root) {
  if (root.empty()) {
    throw util::InputError("--root '': give a directory (the default is /)");
  }
  struct stat st {};
  if (::stat(root.c_str(), &st) != 0) {
    throw util::InputError(
        fmt::format("--root '{}': {}", util::printable(root), std::strerror(errno)));
  }
  if (!S_ISDIR(st.st_mode)) {
    throw util::InputError(fmt::format("--root '{}': not a directory", util::printable(root)));
  }
}

int print_input_error(const util::InputError& e) {
  for (const auto& d : e.diagnostics()) {
    std::fprintf(stderr, "%s\n", d.str().c_str());
  }
  return k_exit_usage;
}

} // namespace

Opt Opt::required() {
  m_option->required();
  return *this;
}

Opt Opt::envname(const std::string& name) {
  m_option->envname(name);
  return *this;
}

Opt Opt::capture_default_str() {
  m_option->capture_default_str();
  return *this;
}

Command Command::add_subcommand(const std::string& name, const std::string& help) {
  return Command(m_app->add_subcommand(name, help));
}

Opt Command::add_option(const std::string& name, std::string& into, const std::string& help) {
  return Opt(m_app->add_option(name, into, help));
}

Opt Command::add_option(const std::string& name, std::vector<std::string>& into,
                        const std::string& help) {
  return Opt(m_app->add_option(name, into, help));
}

Opt Command::add_option(const std::string& name, int& into, const std::string& help) {
  return Opt(m_app->add_option(name, into, help));
}

Opt Command::add_option(const std::string& name, std::optional<int>& into,
                        const std::string& help) {
  return Opt(m_app->add_option(name, into, help));
}

Opt Command::add_option(const std::string& name, std::optional<int64_t>& into,
                        const std::string& help) {
  return Opt(m_app->add_option(name, into, help));
}

Opt Command::add_option(const std::string& name, std::optional<std::string>& into,
                        const std::string& help) {
  return Opt(m_app->add_option(name, into, help));
}

Opt Command::add_flag(const std::string& name, bool& into, const std::string& help) {
  return Opt(m_app->add_flag(name, into, help));
}

void Command::callback(std::function<void()> fn) {
  m_app->callback(std::move(fn));
}

int run(int argc, char** argv) {
  CLI::App app{"ephemera: persist a declared part of a CI job's environment between pristine "
               "machines"};
  app.name("ephemera");
  app.require_subcommand(1);
  // What `ephemera version` prints; CLI11 prints it and exits 0 before any subcommand is
  // required.
  app.set_version_flag("--version", std::string("ephemera ") + EPHEMERA_VERSION,
                       "Print the version and exit");
  app.fallthrough();
  Globals globals;
  add_globals(Command(&app), globals);
  Action action;
  for (auto registrar : k_registrars) {
    registrar(Command(&app), globals, action);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? k_exit_ok : k_exit_usage;
  }
  util::log::set_level(globals.quiet     ? util::log::Level::quiet
                       : globals.verbose ? util::log::Level::verbose
                                         : util::log::Level::normal);
  try {
    check_root(globals.root);
    return action ? action() : k_exit_usage;
  } catch (const util::InputError& e) {
    return print_input_error(e);
  } catch (const util::Error& e) {
    util::log::error("{}", e.what());
    return k_exit_failure;
  } catch (const std::exception& e) {
    util::log::error("{}", e.what());
    return k_exit_failure;
  }
}

} // namespace ephemera::cli
