#pragma once

#include "util/error.hpp"

#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// buildomat's output_rules glob language (README, "Rules"), compiled to RE2 (linear time).
namespace ephemera::rules {

enum class Anchor { root, home, work };

// "root", "home", "work": the archive's top-level folders.
const char* folder(Anchor anchor);

struct Rule {
  std::string text; // as written
  Anchor anchor = Anchor::work;
  std::string pattern;     // relative to the anchor, no leading '/'; "" is the anchor itself
  bool exclude = false;    // '!'
  bool must_match = false; // '='
  bool may_change = false; // '%'
};

// A malformed rule: which, where (0-based byte offset in the rule) and what is wrong.
class RuleError : public util::Error {
public:
  RuleError(std::string rule, size_t offset, std::string reason);
  const std::string& rule() const { return m_rule; }
  size_t offset() const { return m_offset; }
  const std::string& reason() const { return m_reason; }

private:
  std::string m_rule;
  size_t m_offset;
  std::string m_reason;
};

Rule parse_rule(std::string_view text);

// What a set of rules admits, as 64 hex of SHA-256: over each rule's anchor, pattern and
// whether it excludes, sorted and each once. The rules' order, '=' and '%' (which say how to
// save, not what) and how they were written (quotes, spacing, a trailing '/') do not change
// it; any change to what the rules can admit does. A save records it, so that a restore
// with other rules passes over it instead of refusing its entries.
std::string rules_digest(const std::vector<Rule>& rules);

// The RE2 syntax for one pattern (anchor-relative), exposed for tests.
std::string pattern_regex(std::string_view pattern);

// All rules of one stanza, compiled once.
class RuleSet {
public:
  RuleSet();
  ~RuleSet();
  RuleSet(RuleSet&&) noexcept;
  RuleSet& operator=(RuleSet&&) noexcept;

  static RuleSet compile(std::vector<Rule> rules);

  // Index of the first include rule selecting this anchor-relative path: it or one of its
  // parent directories matches an include rule, and neither it nor a parent matches a '!'
  // rule. nullopt when not selected.
  std::optional<size_t> selects(Anchor anchor, std::string_view rel) const;
  // Every include rule that matches the path or a parent (for '=' accounting).
  std::vector<size_t> matching_includes(Anchor anchor, std::string_view rel) const;
  // Whether something at or below this anchor-relative directory could be selected.
  bool may_contain(Anchor anchor, std::string_view rel_dir) const;

  const std::vector<Rule>& rules() const;
  // The literal directories (anchor-relative) where a walk must start, deduplicated.
  std::vector<std::pair<Anchor, std::string>> starts() const;

private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

} // namespace ephemera::rules
