// Rules: parsing, compiling to RE2 sets and matching. A rule is parsed or refused with
// RuleError; a rule set answers every path, and selection agrees with its definition.
#include "rules/rules.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

using namespace ephemera::rules;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Lines before the first empty line are rules; the lines after it are paths to match.
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<Rule> rules;
  std::vector<std::string_view> paths;
  bool in_paths = false;
  while (!text.empty()) {
    auto nl = text.find('\n');
    auto line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (!in_paths && line.empty()) {
      in_paths = true;
      continue;
    }
    if (in_paths) {
      paths.push_back(line);
    } else if (rules.size() < 16) {
      try {
        rules.push_back(parse_rule(line));
      } catch (const RuleError& e) {
        if (e.offset() > line.size() || e.reason().empty()) {
          __builtin_trap(); // an error points inside the rule and says what is wrong
        }
      }
    }
  }
  if (rules.empty()) {
    return 0;
  }
  RuleSet set;
  try {
    set = RuleSet::compile(rules);
  } catch (const ephemera::util::Error&) {
    return 0; // too large to compile is a clean refusal
  }
  for (auto path : paths) {
    for (auto anchor : {Anchor::root, Anchor::home, Anchor::work}) {
      auto selected = set.selects(anchor, path);
      auto includes = set.matching_includes(anchor, path);
      if (selected && includes.empty()) {
        __builtin_trap(); // selected means some include rule matches it or a parent
      }
      if (selected && !set.rules().at(*selected).pattern.empty() && set.rules().at(*selected).exclude) {
        __builtin_trap(); // the selecting rule is never an exclusion
      }
      (void)set.may_contain(anchor, path);
    }
  }
  (void)set.starts();
  return 0;
}
