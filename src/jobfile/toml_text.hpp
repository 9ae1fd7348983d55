#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

// What the job-file reader checks of TOML text before toml11 parses it, and how it words
// toml11's own errors: the text-level half of reading a job file (reader.cpp walks the
// parsed tables).
namespace ephemera::jobfile {

// How deep TOML may nest: arrays, inline tables and the components of dotted keys and
// table headers together. toml11 parses and destroys values recursively, so a file
// nested some thousands deep would crash the agent; real job files nest a handful deep.
constexpr int k_max_toml_nesting = 100;

// Finds where text nests deeper than k_max_toml_nesting, as the byte offset where the
// limit is passed, without parsing it: a scan of brackets, braces and dotted keys outside
// strings and comments. It may overcount a little (a float counts as a dotted key of two
// parts), never undercount.
std::optional<size_t> too_deep(std::string_view text);

// The first byte of text that does not begin a well-formed UTF-8 sequence: its line and
// column (1-based, columns counted in characters) and its value.
struct Utf8Error {
  int line = 0;
  int column = 0;
  unsigned char byte = 0;
};
std::optional<Utf8Error> first_invalid_utf8(std::string_view text);

// toml11's exception text as one line for a diagnostic: "TOML: <what>", without its
// "[error] " and "toml::...: " prefixes or the excerpt that follows.
std::string toml_message(const std::string& what);

} // namespace ephemera::jobfile
