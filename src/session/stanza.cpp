#include "session/stanza.hpp"

#include "jobfile/stanza_check.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/units.hpp"

#include <fmt/format.h>

#include <limits>

namespace ephemera::session {

const char* to_string(Origin origin) {
  switch (origin) {
  case Origin::job_file:
    return "job file";
  case Origin::persist_file:
    return "persist file";
  case Origin::in_job:
    return "in-job";
  }
  return "job file";
}

namespace {

// Rules a stanza gained after its check (a preset's, and the excludes presets::resolve
// derives) are parsed here, once, so every rule of a Stanza is parsed exactly once.
jobfile::PersistSpec with_parsed_rules(jobfile::PersistSpec spec) {
  for (size_t i = spec.parsed_rules.size(); i < spec.rules.size(); ++i) {
    spec.parsed_rules.push_back(rules::parse_rule(spec.rules[i].value));
  }
  return spec;
}

} // namespace

Stanza::Stanza(jobfile::PersistSpec spec, Origin origin)
    : m_spec(with_parsed_rules(std::move(spec))),
      m_rules(std::make_shared<const rules::RuleSet>(rules::RuleSet::compile(m_spec.parsed_rules))),
      m_origin(origin) {}

std::optional<int64_t> parse_epoch(const std::string& command, const std::string& name,
                                   const std::optional<std::string>& text) {
  if (!text) {
    return std::nullopt;
  }
  auto value = util::parse_integer(*text, 0, std::numeric_limits<int64_t>::max());
  if (!value) {
    throw util::InputError(fmt::format("{} '{}': --epoch '{}' must be an integer >= 0", command,
                                       util::printable(name), util::printable(*text)));
  }
  return *value;
}

Stanza in_job_stanza(const InJobArgs& a) {
  std::string shown = util::printable(a.name);
  auto label = [&](const std::string& argument) {
    return jobfile::Where{fmt::format("{} '{}': {}", a.command, shown, argument), {}};
  };
  std::vector<util::Diagnostic> problems;
  jobfile::StanzaCheck check(problems);
  jobfile::PersistSpec s;
  check.name({fmt::format("{} NAME", a.command), {}}, a.name);
  s.name.value = a.name;
  for (const auto& r : a.rules) {
    s.rules.push_back({r, {}});
  }
  auto rules_at = label(a.rules_argument);
  auto parsed = check.rules(rules_at, s.rules, [&rules_at](size_t) { return rules_at.label; });
  s.parsed_rules = parsed.value_or(std::vector<rules::Rule>{});
  auto epoch = parse_epoch(a.command, a.name, a.epoch);
  if (!epoch) {
    problems.push_back({util::Severity::error,
                        {},
                        fmt::format("{} '{}' needs --epoch N: bumping the epoch is how every old "
                                    "archive of this set is thrown away, so it must be chosen, "
                                    "as in a [[persist]] stanza",
                                    a.command, shown)});
  } else {
    s.epoch.value = *epoch;
  }
  s.cache_key.value = a.key.value_or("");
  check.cache_key(label("--key"), s.cache_key.value);
  if (!problems.empty()) {
    throw util::InputError(std::move(problems));
  }
  return Stanza(std::move(s), Origin::in_job);
}

} // namespace ephemera::session
