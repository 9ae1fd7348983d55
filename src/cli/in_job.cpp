// restore and persist: the same powers as [[persist]], used imperatively inside a job.
#include "cli/commands.hpp"
#include "cli/context.hpp"
#include "jobfile/stanza_check.hpp"
#include "session/session.hpp"
#include "util/error.hpp"
#include "util/log.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <memory>

namespace ephemera::cli {

namespace {

struct InJobOptions {
  std::string name;
  std::vector<std::string> rules;
  std::optional<std::string> epoch; // as given: epoch_of reads it
  std::optional<std::string> key;
  std::string budget; // restore: --budget as given
};

void check_name(const std::string& name) {
  if (!jobfile::valid_stanza_name(name)) {
    throw util::InputError(
        fmt::format("'{}' is not a valid persist name: it must match ^[a-z0-9][a-z0-9._-]{{0,63}}$",
                    util::printable(name)));
  }
}

// A set named by its arguments, checked as a [[persist]] stanza is.
session::Stanza ad_hoc(const InJobOptions& o, const char* command, const char* rules_argument) {
  return session::in_job_stanza({command, o.name, o.rules, rules_argument, o.epoch, o.key});
}

int run_restore(const Globals& g, const ContextOptions& c, const InJobOptions& o) {
  start_budget(o.budget);
  session::Session s(session_options(g, c));
  // A job file known to the job (--job, EPHEMERA_JOB) gives its target even to a set named
  // by its rules: post saves an `ephemera persist` nomination under it, so restore must look
  // there too.
  if (!c.job.empty()) {
    load_job(s, c);
  }
  std::optional<session::Stanza> stanza;
  if (o.rules.empty() && !c.job.empty()) {
    for (const auto& st : s.job().stanzas) {
      if (st.name() == o.name) {
        stanza = st;
      }
    }
    if (!stanza) {
      throw util::InputError(fmt::format("{} has no [[persist]] stanza named '{}'; name one of "
                                         "its stanzas, or give --rule and --epoch",
                                         c.job, util::printable(o.name)));
    }
    if (auto epoch = session::parse_epoch("restore", o.name, o.epoch)) {
      stanza->set_epoch(*epoch);
    }
  } else if (o.rules.empty()) {
    throw util::InputError(fmt::format(
        "restore '{}': give --job FILE (or set EPHEMERA_JOB) to use its stanza, or --rule and "
        "--epoch",
        util::printable(o.name)));
  } else {
    stanza = ad_hoc(o, "restore", "--rule");
  }
  auto e = s.run_restore(*stanza, o.key);
  if (g.json) {
    std::printf("%s\n", report::to_json(e).dump(2).c_str());
  }
  if (e.result == report::Result::hit) {
    return k_exit_ok;
  }
  if (e.result == report::Result::failed && g.strict) {
    return k_exit_failure;
  }
  return k_exit_miss;
}

int run_persist(const Globals& g, const ContextOptions& c, const InJobOptions& o) {
  session::Session s(session_options(g, c));
  auto e = s.run_persist(ad_hoc(o, "persist", "RULE"));
  if (g.json) {
    std::printf("%s\n", report::to_json(e).dump(2).c_str());
  }
  return g.strict && s.had_problem() ? k_exit_failure : k_exit_ok;
}

int run_report(const Globals& g, const ContextOptions& c) {
  auto state_dir = session_options(g, c).state_dir;
  auto r = report::load(state_dir);
  if (r.job.empty() && r.entries.empty()) {
    // No report.json: say where it was looked for, the usual cause being a state dir other
    // than the one pre and post used.
    util::log::warn("no report at {}: pre, post, restore and persist write it there; give the "
                    "state dir they used (--state-dir, EPHEMERA_STATE_DIR)",
                    util::printable(report::file_in(state_dir).string()));
  }
  if (g.json) {
    std::printf("%s\n", report::to_json(r).dump(2).c_str());
  } else {
    std::fputs(report::render(r).c_str(), stdout);
  }
  return k_exit_ok;
}

// Exit codes of status: 0 restored (any hit), 3 not restored, 2 nothing known of NAME.
int run_status(const Globals& g, const ContextOptions& c, const std::string& name) {
  check_name(name);
  session::Session s(session_options(g, c));
  auto r = report::load(s.options().state_dir);
  std::string where = util::printable(report::file_in(s.options().state_dir).string());
  if (r.job.empty() && r.entries.empty()) {
    throw util::InputError(fmt::format("status '{}': no report at {}: pre or an in-job restore "
                                       "writes it there (--state-dir, EPHEMERA_STATE_DIR)",
                                       name, where));
  }
  bool known = false;
  if (!c.job.empty()) {
    load_job(s, c);
    for (const auto& st : s.job().stanzas) {
      known = known || st.name() == name;
    }
  }
  const report::Entry* last = nullptr; // the newest restore of NAME, by pre or the job
  for (const auto& e : r.entries) {
    if (e.name != name) {
      continue;
    }
    known = true;
    if (e.phase == report::Phase::pre || e.phase == report::Phase::restore) {
      last = &e;
    }
  }
  if (!known) {
    throw util::InputError(fmt::format("status '{}': {} has no entry for it{}", name, where,
                                       c.job.empty() ? "" : " and the job file no such stanza"));
  }
  bool hit = last != nullptr && last->result == report::Result::hit;
  std::string result = last != nullptr ? report::to_string(last->result) : "none";
  std::string key_found = hit && last->archive ? last->archive->key : "";
  if (g.json) {
    nlohmann::json out{{"name", name},
                       {"result", result},
                       {"step", last != nullptr ? report::to_string(last->step) : ""},
                       {"key_wanted", last != nullptr ? last->key_wanted : ""},
                       {"key_found", key_found}};
    std::printf("%s\n", out.dump(2).c_str());
  } else if (last == nullptr) {
    std::printf("%s: not restored\n", name.c_str());
  } else if (hit) {
    std::printf("%s: hit (%s key '%s', wanted '%s')\n", name.c_str(), report::to_string(last->step),
                util::printable(key_found).c_str(), util::printable(last->key_wanted).c_str());
  } else {
    std::printf("%s: %s (wanted '%s')\n", name.c_str(), result.c_str(),
                util::printable(last->key_wanted).c_str());
  }
  return hit ? k_exit_ok : k_exit_miss;
}

} // namespace

void add_status(Command app, Globals& g, Action& action) {
  auto sub = app.add_subcommand(
      "status", "In a job: whether pre or a restore restored NAME (exit 0 hit, 3 not, 2 unknown)");
  auto c = std::make_shared<ContextOptions>();
  auto name = std::make_shared<std::string>();
  sub.add_option("name", *name, "The stanza or set name").required();
  add_context_options(sub, *c, true);
  sub.callback(
      [&g, &action, c, name] { action = [&g, c, name] { return run_status(g, *c, *name); }; });
}

void add_restore(Command app, Globals& g, Action& action) {
  auto sub = app.add_subcommand("restore", "In a job: unfurl a set now (exit 0 hit, 3 miss)");
  auto c = std::make_shared<ContextOptions>();
  auto o = std::make_shared<InJobOptions>();
  sub.add_option("name", o->name, "The stanza or set name").required();
  add_context_options(sub, *c, true);
  sub.add_option("--rule", o->rules, "A rule, when the set is not a stanza of the job file");
  sub.add_option("--epoch", o->epoch, "The set's epoch");
  sub.add_option("--key", o->key, "The key to look for instead of the stanza's");
  add_budget_option(sub, o->budget);
  sub.callback([&g, &action, c, o] { action = [&g, c, o] { return run_restore(g, *c, *o); }; });
}

void add_persist(Command app, Globals& g, Action& action) {
  auto sub =
      app.add_subcommand("persist", "In a job: nominate files that post saves after success");
  auto c = std::make_shared<ContextOptions>();
  auto o = std::make_shared<InJobOptions>();
  sub.add_option("name", o->name, "The set's name").required();
  sub.add_option("rules", o->rules, "Rules, as in a [[persist]] stanza").required();
  add_context_options(sub, *c, false);
  sub.add_option("--epoch", o->epoch, "The set's epoch (required): bump it to invalidate");
  sub.add_option("--key", o->key, "The set's cache key");
  sub.callback([&g, &action, c, o] { action = [&g, c, o] { return run_persist(g, *c, *o); }; });
}

void add_report(Command app, Globals& g, Action& action) {
  auto sub = app.add_subcommand("report", "Print this job's report (what was used and made)");
  auto c = std::make_shared<ContextOptions>();
  add_context_options(sub, *c, false);
  sub.callback([&g, &action, c] { action = [&g, c] { return run_report(g, *c); }; });
}

} // namespace ephemera::cli
