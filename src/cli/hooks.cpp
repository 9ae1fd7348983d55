// pre, post and plan: the agent's hooks around a job.
#include "cli/commands.hpp"
#include "cli/context.hpp"
#include "cli/engine.hpp"
#include "cli/preset_view.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/units.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <limits>
#include <memory>

namespace ephemera::cli {

namespace {

using nlohmann::json;

report::Entry skipped(const std::string& phase, const jobfile::PersistSpec& stanza,
                      const policy::Decision& d, const char* verb) {
  report::Entry e;
  e.phase = phase;
  e.name = stanza.name.value;
  e.acted = false;
  e.reason = d.reason;
  e.result = "skipped";
  util::log::info("{} '{}': not {}: {}", phase, stanza.name.value, verb, d.reason);
  return e;
}

int finish(Session& s, const std::vector<report::Entry>& entries) {
  s.record(entries);
  if (s.globals().json) {
    json out = json::array();
    for (const auto& e : entries) {
      out.push_back(report::to_json(e));
    }
    std::printf("%s\n", out.dump(2).c_str());
  }
  if (s.globals().strict && s.had_problem()) {
    util::log::error("a cache problem occurred and --strict is set");
    return k_exit_failure;
  }
  return k_exit_ok;
}

std::vector<report::Entry> disabled(Session& s, const std::string& phase) {
  util::log::info("job '{}' is disabled (enable = false): {} does nothing", s.job().name, phase);
  std::vector<report::Entry> entries;
  for (const auto& stanza : s.job().persist) {
    report::Entry e;
    e.phase = phase;
    e.name = stanza.name.value;
    e.reason = "the job is disabled (enable = false)";
    e.result = "disabled";
    entries.push_back(e);
  }
  return entries;
}

int run_pre(const Globals& g, const ContextOptions& o) {
  Session s(g, o);
  const auto& job = s.load_job();
  if (!job.enable) {
    return finish(s, disabled(s, "pre"));
  }
  std::vector<report::Entry> entries;
  for (const auto& stanza : job.persist) {
    auto d = policy::restore_decision(job, stanza, s.context());
    if (!d.act) {
      entries.push_back(skipped("pre", stanza, d, "restored"));
      continue;
    }
    auto e = s.restore(stanza, "pre");
    e.reason = d.reason + e.reason;
    entries.push_back(std::move(e));
  }
  return finish(s, entries);
}

struct PostOptions {
  std::string status = "0"; // as given; parse_status reads it
  bool cancelled = false;
};

// --status as the agent passes it: a decimal integer, '-' allowed. Anything else is a
// usage error, never a success: an empty value is what `--status "$status"` gives with
// $status unset, and saving on it would save after a job nobody saw succeed.
int parse_status(const std::string& text) {
  auto value = util::parse_integer(text, std::numeric_limits<int>::min(),
                                   std::numeric_limits<int>::max());
  if (!value) {
    throw util::InputError(fmt::format(
        "--status '{}' is not an exit status: give the job's exit code as an integer (0: "
        "success){}",
        util::printable(text), text.empty() ? "; an empty value is usually an unset variable" : ""));
  }
  return *value;
}

policy::Outcome outcome_of(const PostOptions& p) {
  int status = parse_status(p.status); // checked even when cancelled: a typo is a typo
  return p.cancelled ? policy::Outcome::cancelled : policy::outcome_from_status(status);
}

int run_post(const Globals& g, const ContextOptions& o, const PostOptions& p) {
  auto outcome = outcome_of(p);
  Session s(g, o);
  jobfile::JobSpec none;
  const auto& job = o.job.empty() ? none : s.load_job();
  if (!job.enable) {
    return finish(s, disabled(s, "post"));
  }
  std::vector<jobfile::PersistSpec> stanzas = job.persist;
  for (auto& n : s.nominated()) {
    bool clash = false;
    for (const auto& st : job.persist) {
      clash = clash || st.name.value == n.name.value;
    }
    if (clash) {
      util::log::warn("persist '{}' was nominated in the job but the job file already has a "
                      "stanza of that name: the job file's stanza wins",
                      n.name.value);
      continue;
    }
    stanzas.push_back(std::move(n));
  }
  std::vector<report::Entry> entries;
  for (const auto& stanza : stanzas) {
    std::string phase = stanza.source_file == "ephemera persist" ? "persist" : "post";
    auto d = policy::save_decision(job, stanza, s.context(), outcome);
    if (!d.act) {
      entries.push_back(skipped(phase, stanza, d, "saved"));
      continue;
    }
    auto e = s.save(stanza, phase);
    e.reason = d.reason + e.reason;
    entries.push_back(std::move(e));
  }
  return finish(s, entries);
}

int run_plan(const Globals& g, const ContextOptions& o, const PostOptions& p) {
  auto outcome = outcome_of(p);
  Session s(g, o);
  const auto& job = s.load_job();
  json out = json::array();
  if (!job.enable) {
    std::printf("job '%s' is disabled (enable = false): pre and post do nothing\n",
                job.name.c_str());
  }
  for (const auto& stanza : job.persist) {
    auto r = policy::restore_decision(job, stanza, s.context());
    auto w = policy::save_decision(job, stanza, s.context(), outcome);
    std::string key;
    try {
      key = s.key_of(stanza);
    } catch (const util::Error& e) {
      key = fmt::format("(unknown: {})", e.what()); // pre and post warn and leave the stanza out
    }
    json prefixes = json::array();
    for (const auto& k : stanza.restore_keys) {
      prefixes.push_back(k.value);
    }
    out.push_back(json{{"name", stanza.name.value},
                       {"source", stanza.source_file},
                       {"key", key},
                       {"restore_keys", prefixes},
                       {"epoch", stanza.epoch.value},
                       {"preset", preset_json(stanza)},
                       {"pre", {{"restore", r.act}, {"reason", r.reason}}},
                       {"post", {{"save", w.act}, {"reason", w.reason}, {"outcome",
                                                                         policy::to_string(outcome)}}}});
    if (!g.json) {
      std::printf("%s (epoch %lld, key '%s', from %s)\n", stanza.name.value.c_str(),
                  static_cast<long long>(stanza.epoch.value), key.c_str(),
                  stanza.source_file.c_str());
      for (const auto& line : preset_lines(stanza)) {
        std::printf("  %s\n", line.c_str());
      }
      std::printf("  pre:  %s: %s\n", r.act ? "restore" : "no restore", r.reason.c_str());
      std::printf("  post: %s: %s (if the job ends in %s)\n", w.act ? "save" : "no save",
                  w.reason.c_str(), policy::to_string(outcome));
    }
  }
  if (g.json) {
    std::printf("%s\n", out.dump(2).c_str());
  }
  return k_exit_ok;
}

} // namespace

void add_pre(Command app, Globals& g, Action& action) {
  auto sub = app.add_subcommand("pre", "Before the job: restore every stanza the policy allows");
  auto o = std::make_shared<ContextOptions>();
  add_context_options(sub, *o, true);
  sub.callback([&g, &action, o] { action = [&g, o] { return run_pre(g, *o); }; });
}

void add_post(Command app, Globals& g, Action& action) {
  auto sub = app.add_subcommand("post", "After the job: save every stanza the policy allows");
  auto o = std::make_shared<ContextOptions>();
  auto p = std::make_shared<PostOptions>();
  add_context_options(sub, *o, true);
  sub.add_option("--status", p->status, "The job's exit status (0: success)").required();
  sub.add_flag("--cancelled", p->cancelled, "The job was cancelled");
  sub.callback([&g, &action, o, p] { action = [&g, o, p] { return run_post(g, *o, *p); }; });
}

void add_plan(Command app, Globals& g, Action& action) {
  auto sub = app.add_subcommand("plan", "Print what pre and post would do, touching nothing");
  auto o = std::make_shared<ContextOptions>();
  auto p = std::make_shared<PostOptions>();
  add_context_options(sub, *o, true);
  sub.add_option("--status", p->status, "Plan post for this exit status (default 0)");
  sub.add_flag("--cancelled", p->cancelled, "Plan post for a cancelled job");
  sub.callback([&g, &action, o, p] { action = [&g, o, p] { return run_plan(g, *o, *p); }; });
}

} // namespace ephemera::cli
