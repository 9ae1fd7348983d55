#pragma once

#include "jobfile/job_spec.hpp"
#include "rules/rules.hpp"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ephemera::session {

// Where a stanza was declared. post saves an in-job nomination in the "persist" phase of
// the report, and a job file's stanza wins over a nomination of the same name.
enum class Origin { job_file, persist_file, in_job };

// "job file", "persist file", "in-job": for messages.
const char* to_string(Origin origin);

// A [[persist]] stanza as every phase uses it: its values checked by jobfile::StanzaCheck
// (wherever it came from), its rules compiled once, and its origin. Copies share the
// compiled rules.
class Stanza {
public:
  // spec.parsed_rules holds the first of spec.rules as StanzaCheck::rules parsed them; the
  // rules after those (a preset's, or those presets::resolve derives from the job's tree)
  // are parsed here. Throws rules::RuleError for one that is malformed.
  Stanza(jobfile::PersistSpec spec, Origin origin);

  const jobfile::PersistSpec& spec() const { return m_spec; }
  const std::string& name() const { return m_spec.name.value; }
  const rules::RuleSet& rules() const { return *m_rules; }
  Origin origin() const { return m_origin; }

  // `restore NAME --epoch N` of a job file's stanza: the same set at another epoch.
  void set_epoch(int64_t epoch) { m_spec.epoch.value = epoch; }

private:
  jobfile::PersistSpec m_spec;
  std::shared_ptr<const rules::RuleSet> m_rules;
  Origin m_origin;
};

// A set named on the command line, by `ephemera persist NAME RULE...` or `ephemera restore
// NAME --rule R...`, as given.
struct InJobArgs {
  std::string command; // "persist" or "restore", for messages
  std::string name;
  std::vector<std::string> rules;
  std::string rules_argument;       // how the command names its rules: "RULE", "--rule"
  std::optional<std::string> epoch; // --epoch as given: required
  std::optional<std::string> key;   // --key: the cache_key
};

// The stanza those arguments declare, checked by the TOML reader's own checks, so a set is
// refused on the command line exactly when the same stanza in a job file is. Throws
// util::InputError with every problem, each saying which argument it is about.
Stanza in_job_stanza(const InJobArgs& args);

// --epoch as given: an integer >= 0 (nullopt when absent). Read here rather than by
// CLI11, which clamps an out-of-range number to the largest one. Throws util::InputError.
std::optional<int64_t> parse_epoch(const std::string& command, const std::string& name,
                                   const std::optional<std::string>& text);

} // namespace ephemera::session
