#include "jobfile/frontmatter.hpp"

#include <fmt/format.h>

namespace ephemera::jobfile {

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) {
      end = text.size();
    }
    auto line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
    out.push_back(line);
    start = end + 1;
  }
  return out;
}

util::Position Frontmatter::map(const std::string& file, int toml_line, int toml_column) const {
  if (toml_line < 1 || lines.empty()) {
    return {file, lines.empty() ? 1 : lines.front().script_line, 0};
  }
  size_t i = std::min(static_cast<size_t>(toml_line - 1), lines.size() - 1);
  return {file, lines[i].script_line, toml_column > 0 ? toml_column + lines[i].prefix : 0};
}

namespace {

bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}

} // namespace

Frontmatter extract_frontmatter(const std::string& file, std::string_view text) {
  Frontmatter fm;
  if (starts_with(text, "\xef\xbb\xbf")) {
    throw util::InputError({file, 1, 1},
                           "the file starts with a byte-order mark: the kernel and buildomat need "
                           "'#!' as the very first bytes; save the file without a BOM");
  }
  auto lines = split_lines(text);
  if (lines.empty() || !starts_with(lines[0], "#!")) {
    throw util::InputError({file, 1, 1}, "a job script must start with an interpreter line "
                                         "('#!/bin/bash'); use a .toml file for plain TOML");
  }
  size_t i = 1;
  for (; i < lines.size() && starts_with(lines[i], "#"); ++i) {
    auto line = lines[i];
    int line_no = static_cast<int>(i + 1);
    if (starts_with(line, "##:")) {
      fm.warnings.push_back({util::Severity::warning,
                             {file, line_no, 1},
                             "'##:' is a comment, not frontmatter: did you mean '#:'?"});
    }
    if (!starts_with(line, "#:")) {
      continue;
    }
    int prefix = 0;
    while (starts_with(line, "#:")) {
      line.remove_prefix(2);
      prefix += 2;
    }
    if (!fm.toml.empty() || !fm.lines.empty()) {
      fm.toml += '\n';
    }
    fm.toml += line;
    fm.lines.push_back({line_no, prefix});
  }
  size_t end = i; // the first line after the frontmatter
  for (size_t j = end; j < lines.size(); ++j) {
    if (starts_with(lines[j], "#:")) {
      std::string why = lines[end].empty() ? fmt::format("the blank line {} ended it", end + 1)
                                           : fmt::format("line {} ended it", end + 1);
      fm.warnings.push_back(
          {util::Severity::warning,
           {file, static_cast<int>(j + 1), 1},
           fmt::format("this '#:' line comes after the frontmatter ended ({}), so buildomat never "
                       "reads it; keep the '#' block contiguous after the '#!' line",
                       why)});
    }
  }
  if (fm.lines.empty()) {
    auto diags = fm.warnings;
    diags.insert(diags.begin(),
                 {util::Severity::error,
                  {file, 2, 1},
                  "no frontmatter: the '#:' lines must follow the '#!' line "
                  "directly, in one run of '#' lines (a blank line or code ends it)"});
    throw util::InputError(std::move(diags));
  }
  return fm;
}

} // namespace ephemera::jobfile
