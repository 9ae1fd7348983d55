#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>

namespace ephemera::util {

// text with every byte below 0x20, 0x7f and '\\' written as an escape (\n, \t, \xNN,
// \\), so that what a store, a manifest or a file name holds can never move the cursor,
// colour the terminal or forge a log line. Bytes of 0x80 and above are kept (UTF-8).
std::string printable(std::string_view text);

} // namespace ephemera::util

namespace ephemera::util::log {

enum class Level { quiet = 0, normal = 1, verbose = 2 };

// Process-wide verbosity, set once by the CLI.
void set_level(Level level);
Level level();

// Every line goes to stderr with an "ephemera: " prefix; stdout is kept for results.
void write(std::string_view severity, std::string_view message);

template <typename... Args> void info(fmt::format_string<Args...> f, Args&&... args) {
  if (level() >= Level::normal) {
    write("", fmt::format(f, std::forward<Args>(args)...));
  }
}

template <typename... Args> void debug(fmt::format_string<Args...> f, Args&&... args) {
  if (level() >= Level::verbose) {
    write("debug: ", fmt::format(f, std::forward<Args>(args)...));
  }
}

// Warnings are printed even with --quiet: a cache problem must be visible in the job log.
template <typename... Args> void warn(fmt::format_string<Args...> f, Args&&... args) {
  write("warning: ", fmt::format(f, std::forward<Args>(args)...));
}

template <typename... Args> void error(fmt::format_string<Args...> f, Args&&... args) {
  write("error: ", fmt::format(f, std::forward<Args>(args)...));
}

} // namespace ephemera::util::log
