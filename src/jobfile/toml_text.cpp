#include "jobfile/toml_text.hpp"

#include <vector>

namespace ephemera::jobfile {

namespace {

bool digit(char c) {
  return c >= '0' && c <= '9';
}
bool letter(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

} // namespace

std::string toml_message(const std::string& what) {
  std::string first = what.substr(0, what.find('\n'));
  for (const char* p : {"[error] "}) {
    if (first.rfind(p, 0) == 0) {
      first = first.substr(std::string(p).size());
    }
  }
  if (first.rfind("toml::", 0) == 0) {
    auto colon = first.find(": ");
    if (colon != std::string::npos) {
      first = first.substr(colon + 2);
    }
  }
  return "TOML: " + first;
}

std::optional<Utf8Error> first_invalid_utf8(std::string_view text) {
  size_t i = 0;
  int line = 1, col = 1;
  while (i < text.size()) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool ok = n > 0 && i + n <= text.size();
    for (size_t k = 1; ok && k < n; ++k) {
      ok = (static_cast<unsigned char>(text[i + k]) >> 6) == 2;
    }
    if (!ok) {
      return Utf8Error{line, col, c};
    }
    if (c == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
    i += n;
  }
  return std::nullopt;
}

std::optional<size_t> too_deep(std::string_view text) {
  std::vector<int> open; // the depth each open '[' or '{' adds: its key's parts, or 1
  int enclosing = 0;     // the sum of open
  int header = 0;        // parts of the last table header: its tables hold what follows
  int parts = 0;         // parts of the dotted key being read
  int key = 0;           // parts of the key whose value is being read
  bool in_header = false, line_start = true, after_part = false;
  size_t i = 0;
  auto skip_string = [&](char quote) {
    bool multi = text.substr(i, 3) == std::string(3, quote);
    i += multi ? 3 : 1;
    while (i < text.size()) {
      if (quote == '"' && text[i] == '\\') {
        i += 2;
      } else if (multi && text.substr(i, 3) == std::string(3, quote)) {
        i += 3;
        while (i < text.size() && text[i] == quote) {
          ++i; // up to two quotes may end a multi-line string's content
        }
        return;
      } else if (!multi && (text[i] == quote || text[i] == '\n')) {
        i += text[i] == quote ? 1 : 0;
        return;
      } else {
        ++i;
      }
    }
  };
  auto depth = [&] { return header + enclosing + key + parts; };
  while (i < text.size()) {
    char c = text[i];
    bool bare = letter(c) || digit(c) || c == '_' || c == '-';
    if (c == '"' || c == '\'') {
      skip_string(c);
      after_part = true;
      line_start = false;
      continue;
    }
    size_t at = i++;
    if (c == ' ' || c == '\t' || c == '\r') {
      continue;
    }
    if (bare) {
      while (i < text.size() &&
             (letter(text[i]) || digit(text[i]) || text[i] == '_' || text[i] == '-')) {
        ++i;
      }
      after_part = true;
      line_start = false;
      continue;
    }
    if (c == '#') {
      while (i < text.size() && text[i] != '\n') {
        ++i;
      }
      continue;
    }
    if (c == '.' && after_part) {
      ++parts;
      after_part = false;
      if (depth() > k_max_toml_nesting) {
        return at;
      }
      continue;
    }
    after_part = false;
    if (c == '[' && open.empty() && (line_start || in_header)) {
      in_header = true; // [table] or [[array of tables]]
      ++parts;
      header = 0;
      line_start = false;
      continue;
    }
    line_start = false;
    if (c == ']' && in_header) {
      if (i < text.size() && text[i] == ']') {
        ++i;
      }
      header = parts;
      parts = 0;
      in_header = false;
      continue;
    }
    if (c == '=') {
      key = parts + 1;
      parts = 0;
    } else if (c == '[' || c == '{') {
      open.push_back(std::max(1, key)); // `a.b = {` opens a, then b
      enclosing += open.back();
      key = 0;
      parts = 0;
      if (depth() > k_max_toml_nesting) {
        return at;
      }
    } else if ((c == ']' || c == '}') && !open.empty()) {
      enclosing -= open.back();
      open.pop_back();
      key = 0;
      parts = 0;
    } else {
      key = 0; // ',' or a newline ends a key's value
      parts = 0;
      line_start = c == '\n';
    }
  }
  return std::nullopt;
}

} // namespace ephemera::jobfile
