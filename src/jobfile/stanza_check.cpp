#include "jobfile/stanza_check.hpp"

#include "util/log.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace ephemera::jobfile {

namespace {

bool digit(char c) {
  return c >= '0' && c <= '9';
}
bool lower_alnum(char c) {
  return digit(c) || (c >= 'a' && c <= 'z');
}
bool letter(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

} // namespace

bool valid_stanza_name(std::string_view s) {
  return !s.empty() && s.size() <= 64 && lower_alnum(s.front()) &&
         std::all_of(s.begin(), s.end(),
                     [](char c) { return lower_alnum(c) || c == '.' || c == '_' || c == '-'; });
}

bool valid_cache_key(std::string_view s) {
  return s.size() <= 128 && std::all_of(s.begin(), s.end(), [](char c) {
           return digit(c) || letter(c) || c == '.' || c == '_' || c == '-';
         });
}

void StanzaCheck::error(const Where& at, std::string message) {
  m_failed = true;
  m_out.push_back({util::Severity::error, at.pos, std::move(message)});
}

void StanzaCheck::name(const Where& at, std::string_view name) {
  if (!valid_stanza_name(name)) {
    error(at, fmt::format("{} '{}' must match ^[a-z0-9][a-z0-9._-]{{0,63}}$ (lower case "
                          "letters, digits, '.', '_', '-')",
                          at.label, util::printable(name)));
  }
}

std::optional<std::vector<rules::Rule>>
StanzaCheck::rules(const Where& at, const std::vector<Located<std::string>>& rules,
                   const std::function<std::string(size_t)>& item) {
  if (rules.empty()) {
    error(at, fmt::format("{} must list at least one rule", at.label));
    return std::nullopt;
  }
  std::vector<rules::Rule> parsed;
  bool malformed = false;
  bool include = false;
  for (size_t i = 0; i < rules.size(); ++i) {
    const auto& r = rules[i];
    try {
      parsed.push_back(rules::parse_rule(r.value));
      include = include || !parsed.back().exclude;
    } catch (const rules::RuleError& e) {
      // A rule inside a TOML string: its column, one past the opening quote, plus the offset
      // lands on the offending byte. An argument has no column: the offset is said instead.
      Where where{item(i), r.pos};
      std::string offset;
      if (where.pos.column > 0) {
        where.pos.column += 1 + static_cast<int>(e.offset());
      } else {
        offset = fmt::format(" (at byte {})", e.offset());
      }
      error(where, fmt::format("{} '{}': {}{}", where.label, util::printable(r.value), e.reason(),
                               offset));
      malformed = true;
    }
  }
  if (malformed) {
    return std::nullopt;
  }
  if (!include) {
    error(at, fmt::format("{} has only '!' rules: nothing would be persisted; add a rule that "
                          "selects files",
                          at.label));
    return std::nullopt;
  }
  return parsed;
}

void StanzaCheck::epoch(const Where& at, int64_t epoch) {
  if (epoch < 0) {
    error(at, fmt::format("{} must be an integer >= 0", at.label));
  }
}

void StanzaCheck::cache_key(const Where& at, std::string_view key) {
  if (!valid_cache_key(key)) {
    error(at, fmt::format("{} '{}' may hold only A-Z a-z 0-9 . _ - (at most 128)", at.label,
                          util::printable(key)));
  }
}

void StanzaCheck::restore_key(const Where& at, std::string_view prefix) {
  if (!valid_cache_key(prefix)) {
    error(at, fmt::format("{}: '{}' may hold only A-Z a-z 0-9 . _ -", at.label,
                          util::printable(prefix)));
  }
}

void StanzaCheck::key_file(const Where& at, std::string_view path) {
  if (path.empty()) {
    error(at, fmt::format("{}: an empty path", at.label));
    return;
  }
  // A pattern in the rules language, so that `**/package-lock.json` means what it does in
  // the stanza's rules; only the prefixes that mean something for reading a file are taken.
  try {
    auto r = rules::parse_rule(path);
    if (r.must_match || r.may_change) {
      error(at, fmt::format("{} '{}': '=' and '%' mean nothing for a key file (a key file "
                            "that matches nothing is a warning; give the path or pattern alone)",
                            at.label, util::printable(path)));
    }
  } catch (const rules::RuleError& e) {
    error(at, fmt::format("{} '{}': {}", at.label, util::printable(path), e.reason()));
  }
}

} // namespace ephemera::jobfile
