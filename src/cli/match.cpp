// match: what a stanza's rules select, one job-visible absolute path a line.
#include "cli/commands.hpp"
#include "cli/context.hpp"
#include "jobfile/reader.hpp"
#include "presets/expand.hpp"
#include "rules/rules.hpp"
#include "rules/walk.hpp"
#include "session/stanza.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/units.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <memory>

namespace ephemera::cli {

namespace {

using nlohmann::json;

struct MatchOptions {
  std::vector<std::string> rules;
  std::string name;
};

const char* type_name(rules::EntryType t) {
  switch (t) {
  case rules::EntryType::file:
    return "file";
  case rules::EntryType::symlink:
    return "symlink";
  case rules::EntryType::directory:
    return "directory";
  }
  return "file";
}

// The rules to match, each parsed once: the command line's, or those of the job file's
// stanzas (which the job file's reader parsed as it checked them), with what a preset
// derives from the job's tree.
std::vector<rules::Rule> rules_of(const ContextOptions& c, const MatchOptions& m,
                                  const rules::Anchors& anchors) {
  if (c.job.empty()) {
    if (m.rules.empty()) {
      throw util::InputError("match: give rules, or --job FILE [--name N]");
    }
    std::vector<rules::Rule> parsed;
    for (const auto& text : m.rules) {
      try {
        parsed.push_back(rules::parse_rule(text));
      } catch (const rules::RuleError& e) {
        throw util::InputError(fmt::format("match: RULE '{}': {} (at byte {})",
                                           util::printable(text), e.reason(), e.offset()));
      }
    }
    return parsed;
  }
  if (!m.rules.empty()) {
    throw util::InputError("match: give rules or --job, not both");
  }
  auto job = jobfile::load_job(c.job, persist_file_of(c));
  std::vector<rules::Rule> out;
  bool found = false;
  for (const auto& s : job.persist) {
    if (m.name.empty() || s.name.value == m.name) {
      found = true;
      // As pre and post derive it; the Stanza parses what a preset adds.
      session::Stanza stanza(presets::derive_rules(s, anchors), session::Origin::job_file);
      const auto& parsed = stanza.spec().parsed_rules;
      out.insert(out.end(), parsed.begin(), parsed.end());
    }
  }
  if (!found) {
    throw util::InputError(
        fmt::format("{} has no [[persist]] stanza named '{}'", c.job, util::printable(m.name)));
  }
  return out;
}

int run_match(const Globals& g, const ContextOptions& c, const MatchOptions& m) {
  rules::Anchors anchors;
  anchors.root = g.root;
  anchors.home = home_of(c);
  anchors.work = workdir_of(c);
  auto parsed = rules_of(c, m, anchors);
  auto set = rules::RuleSet::compile(parsed);
  auto result = rules::walk(set, anchors);
  uint64_t files = 0, links = 0, dirs = 0, bytes = 0;
  json entries = json::array();
  std::string out;
  for (const auto& e : result.entries) {
    files += e.type == rules::EntryType::file;
    links += e.type == rules::EntryType::symlink;
    dirs += e.type == rules::EntryType::directory;
    bytes += e.size;
    if (g.json) {
      json j{{"path", anchors.visible_path(e.anchor, e.rel)},
             {"type", type_name(e.type)},
             {"size", e.size},
             {"mode", fmt::format("{:04o}", e.mode)},
             {"mtime_ns", e.mtime_ns},
             {"rule", set.rules()[e.rule].text}};
      if (e.type == rules::EntryType::symlink) {
        j["target"] = e.link_target;
      }
      entries.push_back(j);
    } else {
      out += anchors.visible_path(e.anchor, e.rel);
      out += '\n';
    }
  }
  if (g.json) {
    std::printf("%s\n", json{{"entries", entries},
                             {"files", files},
                             {"symlinks", links},
                             {"directories", dirs},
                             {"bytes", bytes}}
                            .dump(2)
                            .c_str());
  } else {
    std::fwrite(out.data(), 1, out.size(), stdout);
  }
  for (const auto& w : result.warnings) {
    std::fprintf(stderr, "ephemera: warning: %s\n", w.c_str());
  }
  std::fprintf(stderr, "ephemera: %llu files, %llu symlinks, %llu directories, %s\n",
               static_cast<unsigned long long>(files), static_cast<unsigned long long>(links),
               static_cast<unsigned long long>(dirs), util::human_bytes(bytes).c_str());
  for (size_t i = 0; i < set.rules().size(); ++i) {
    const auto& r = set.rules()[i];
    if (r.must_match) {
      std::fprintf(stderr, "ephemera: rule '%s' must match: %s\n", r.text.c_str(),
                   result.rule_hits[i] > 0 ? fmt::format("matched {}", result.rule_hits[i]).c_str()
                                           : "MATCHED NOTHING (a save would fail)");
    }
  }
  return k_exit_ok;
}

} // namespace

void add_match(Command app, Globals& g, Action& action) {
  auto sub = app.add_subcommand("match", "List what rules match, one path a line, sorted");
  auto c = std::make_shared<ContextOptions>();
  auto m = std::make_shared<MatchOptions>();
  sub.add_option("rules", m->rules, "Rules, as in a [[persist]] stanza");
  sub.add_option("--job", c->job, "Use the rules of this job file's stanzas");
  sub.add_option("--persist", c->persist, "A persist file other than the sibling");
  sub.add_option("--name", m->name, "Only this stanza of --job");
  sub.add_option("--workdir", c->workdir, "The job's working directory (default: current)");
  sub.add_option("--home", c->home, "The job's $HOME (default: $HOME)");
  sub.callback([&g, &action, c, m] { action = [&g, c, m] { return run_match(g, *c, *m); }; });
}

} // namespace ephemera::cli
