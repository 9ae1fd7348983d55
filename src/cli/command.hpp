#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace CLI {
class App;
class Option;
} // namespace CLI

namespace ephemera::cli {

// An option as declared, for the settings chained after it. CLI11 is a large header-only
// library: only cli.cpp includes it, and subcommands declare themselves through these.
class Opt {
public:
  explicit Opt(CLI::Option* option) : m_option(option) {}
  Opt required();
  Opt envname(const std::string& name); // the environment variable it defaults from
  Opt capture_default_str();            // --help shows the default

private:
  CLI::Option* m_option;
};

// The application or one of its subcommands.
class Command {
public:
  explicit Command(CLI::App* app) : m_app(app) {}

  Command add_subcommand(const std::string& name, const std::string& help);
  // A name starting with '-' is a flag's spelling ("-q,--quiet"); otherwise positional.
  Opt add_option(const std::string& name, std::string& into, const std::string& help);
  Opt add_option(const std::string& name, std::vector<std::string>& into, const std::string& help);
  Opt add_option(const std::string& name, int& into, const std::string& help);
  Opt add_option(const std::string& name, std::optional<int>& into, const std::string& help);
  Opt add_option(const std::string& name, std::optional<int64_t>& into, const std::string& help);
  Opt add_option(const std::string& name, std::optional<std::string>& into,
                 const std::string& help);
  Opt add_flag(const std::string& name, bool& into, const std::string& help);
  // Runs once the command line is parsed, when this subcommand was chosen.
  void callback(std::function<void()> fn);

private:
  CLI::App* m_app;
};

} // namespace ephemera::cli
