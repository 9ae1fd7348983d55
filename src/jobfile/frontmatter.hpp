#pragma once

#include "util/error.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace ephemera::jobfile {

// The TOML of a buildomat job script and how to map its positions back to the script.
struct Frontmatter {
  std::string toml; // the '#:' lines, prefix removed, joined with '\n'
  struct Line {
    int script_line; // 1-based line in the script
    int prefix;      // bytes removed from the start of the line ("#:", "#:#:")
  };
  std::vector<Line> lines; // one per TOML line
  std::vector<util::Diagnostic> warnings;

  // A TOML position (1-based line and column) as a position in the script.
  util::Position map(const std::string& file, int toml_line, int toml_column) const;
};

// Extracts the frontmatter as buildomat does: line 1 must be "#!"; then the run of lines
// beginning with '#'; of those, lines beginning with "#:" lose every leading "#:".
// Only '\n' ends a line (a trailing '\r' is dropped, a lone '\r' is not a break).
// Throws InputError when there is no interpreter line or no frontmatter.
Frontmatter extract_frontmatter(const std::string& file, std::string_view text);

// Splits on '\n', dropping one trailing '\r' per line (as Rust's str::lines does).
std::vector<std::string_view> split_lines(std::string_view text);

} // namespace ephemera::jobfile
