#pragma once

#include "jobfile/job_spec.hpp"
#include "rules/rules.hpp"
#include "util/error.hpp"

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ephemera::jobfile {

// ^[a-z0-9][a-z0-9._-]{0,63}$: a stanza name (it also names files and object paths).
bool valid_stanza_name(std::string_view name);
// ^[A-Za-z0-9._-]{0,128}$: a cache key or a restore_keys prefix.
bool valid_cache_key(std::string_view key);

// Where a value of a stanza was written, for the message about it: the TOML reader names
// the key ("persist[0].cache_key") and its file:line:col; an in-job command names its
// argument ("--key") and has no position.
struct Where {
  std::string label;
  util::Position pos;
};

// The one validator of a stanza's values (README "[[persist]]"): the TOML reader checks
// each value's TOML type itself and hands the value here; `ephemera persist`, `restore
// --rule` and a nomination read back from the state dir go through the same checks, so a
// stanza is valid or not wherever it came from, and says why in the same words. Every
// problem is appended to `out` as an error; nothing throws.
class StanzaCheck {
public:
  explicit StanzaCheck(std::vector<util::Diagnostic>& out) : m_out(out) {}

  void name(const Where& at, std::string_view name);
  // Parses every rule, once: the parsed rules in order, or nullopt when one is malformed
  // (each named by item(i) and, where the rule's position is known, the column of the
  // offending byte), when there is none, or when all are '!' rules.
  std::optional<std::vector<rules::Rule>> rules(const Where& at,
                                                const std::vector<Located<std::string>>& rules,
                                                const std::function<std::string(size_t)>& item);
  void epoch(const Where& at, int64_t epoch);
  void cache_key(const Where& at, std::string_view key);
  void restore_key(const Where& at, std::string_view prefix);
  // A path or pattern in the rules language (README "Rules"), '!' allowed.
  void key_file(const Where& at, std::string_view path);

  // Whether any check so far found a problem.
  bool failed() const { return m_failed; }

private:
  void error(const Where& at, std::string message);

  std::vector<util::Diagnostic>& m_out;
  bool m_failed = false;
};

} // namespace ephemera::jobfile
