// pre, post and plan: the agent's hooks around a job.
#include "cli/commands.hpp"
#include "cli/context.hpp"
#include "cli/preset_view.hpp"
#include "session/miss.hpp"
#include "session/session.hpp"
#include "store/catalog.hpp"
#include "store/short_id.hpp"
#include "store/url.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/units.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <limits>
#include <memory>

namespace ephemera::cli {

namespace {

using nlohmann::json;

// Ends the phase with its summary line, prints the entries for --json and chooses the exit
// code.
int finish(const Globals& g, const session::Session& s, const std::vector<report::Entry>& entries,
           const char* phase, std::chrono::steady_clock::time_point start) {
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  util::log::info("{}", report::summary_line(phase, entries, seconds));
  if (g.json) {
    json out = json::array();
    for (const auto& e : entries) {
      out.push_back(report::to_json(e));
    }
    std::printf("%s\n", out.dump(2).c_str());
  }
  if (g.strict && s.had_problem()) {
    util::log::error("a cache problem occurred and --strict is set");
    return k_exit_failure;
  }
  return k_exit_ok;
}

int run_pre(const Globals& g, const ContextOptions& o, const std::string& budget) {
  start_budget(budget); // first: the budget is the whole of pre's
  auto start = std::chrono::steady_clock::now();
  session::Session s(session_options(g, o));
  load_job(s, o);
  return finish(g, s, s.run_pre(), "pre", start);
}

struct PostOptions {
  std::string status = "0"; // as given; parse_status reads it
  bool cancelled = false;
};

// --status as the agent passes it: a decimal integer, '-' allowed. Anything else is a
// usage error, never a success: an empty value is what `--status "$status"` gives with
// $status unset, and saving on it would save after a job nobody saw succeed.
int parse_status(const std::string& text) {
  auto value =
      util::parse_integer(text, std::numeric_limits<int>::min(), std::numeric_limits<int>::max());
  if (!value) {
    throw util::InputError(fmt::format(
        "--status '{}' is not an exit status: give the job's exit code as an integer (0: "
        "success){}",
        util::printable(text),
        text.empty() ? "; an empty value is usually an unset variable" : ""));
  }
  return *value;
}

policy::Outcome outcome_of(const PostOptions& p) {
  int status = parse_status(p.status); // checked even when cancelled: a typo is a typo
  return p.cancelled ? policy::Outcome::cancelled : policy::outcome_from_status(status);
}

int run_post(const Globals& g, const ContextOptions& o, const PostOptions& p) {
  auto outcome = outcome_of(p);
  auto start = std::chrono::steady_clock::now();
  session::Session s(session_options(g, o));
  if (!o.job.empty()) {
    load_job(s, o);
  }
  return finish(g, s, s.run_post(outcome), "post", start);
}

int run_plan(const Globals& g, const ContextOptions& o, const PostOptions& p) {
  auto outcome = outcome_of(p);
  session::Session s(session_options(g, o));
  load_job(s, o);
  const auto& job = s.job().spec;
  json out = json::array();
  if (!job.enable) {
    std::printf("job '%s' is disabled (enable = false): pre and post do nothing\n",
                job.name.c_str());
  }
  for (const auto& st : s.job().stanzas) {
    const auto& stanza = st.spec();
    auto r = policy::restore_decision(job, stanza, s.context());
    auto w = policy::save_decision(job, stanza, s.context(), outcome);
    session::KeyFiles k;
    try {
      k = s.key_files(st);
    } catch (const util::Error& e) {
      k.key = fmt::format("(unknown: {})", e.what()); // pre and post warn and leave it out
    }
    const std::string& key = k.key;
    for (const auto& w : k.warnings) {
      std::fprintf(stderr, "%s\n", w.str().c_str());
    }
    json prefixes = json::array();
    for (const auto& k : stanza.restore_keys) {
      prefixes.push_back(k.value);
    }
    out.push_back(
        json{{"name", stanza.name.value},
             {"source", stanza.source_file},
             {"key", key},
             {"restore_keys", prefixes},
             {"key_files", k.files},
             {"key_bytes", k.bytes},
             {"epoch", stanza.epoch.value},
             {"preset", preset_json(stanza)},
             {"pre", {{"restore", r.act}, {"reason", r.reason}}},
             {"post",
              {{"save", w.act}, {"reason", w.reason}, {"outcome", policy::to_string(outcome)}}}});
    if (!g.json) {
      std::printf("%s (epoch %lld, key '%s', from %s)\n", stanza.name.value.c_str(),
                  static_cast<long long>(stanza.epoch.value), key.c_str(),
                  stanza.source_file.c_str());
      for (const auto& line : preset_lines(stanza)) {
        std::printf("  %s\n", line.c_str());
      }
      if (!stanza.key_files.empty() || !stanza.probe_outputs.empty()) {
        std::printf("  key from %zu file%s (%s)%s\n", k.files.size(),
                    k.files.size() == 1 ? "" : "s", report::human_bytes(k.bytes).c_str(),
                    k.files.empty() ? "" : ":");
        for (const auto& f : k.files) {
          std::printf("    %s\n", util::printable(f).c_str());
        }
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

// What one stanza's restore would take from the store, without downloading anything.
json lookup_one(session::Session& s, const session::Stanza& st, bool& any_miss) {
  const auto& job = s.job().spec;
  json j{{"name", st.name()}, {"epoch", st.spec().epoch.value}};
  auto d = policy::restore_decision(job, st.spec(), s.context());
  if (!d.act) {
    j["result"] = "not restored";
    j["reason"] = d.reason;
    return j;
  }
  std::string key = s.key_of(st);
  auto request = s.lookup_request(st, key);
  j["key_wanted"] = key;
  auto found = s.catalog().lookup(request);
  if (found.candidates.empty()) {
    any_miss = true;
    request.survey = true;
    auto why = session::explain_miss(
        s.catalog().lookup(request),
        session::scope_shown({request.repository, request.target, request.name, request.epoch}));
    j["result"] = "miss";
    j["reason"] = why.summary;
    j["passed_over"] = why.details;
    return j;
  }
  const auto& c = found.candidates.front();
  const auto& m = c.manifest;
  j["result"] = "hit";
  j["step"] = c.step.prefix ? "prefix" : "exact";
  j["prefix"] = c.step.prefix ? c.step.value : "";
  j["branch_match"] = c.own_branch ? "own" : "other";
  j["id"] = store::short_id(m);
  j["key_found"] = m.key;
  j["compressed_bytes"] = m.compressed_size;
  j["unpacked_bytes"] = m.unpacked_bytes;
  j["files"] = m.files;
  j["created"] = m.created;
  j["job_id"] = m.job_id;
  j["branch"] = m.branch;
  j["link"] = s.catalog().link(m);
  j["candidates"] = found.candidates.size();
  return j;
}

void print_lookup(const json& j) {
  auto str = [&](const char* k) { return util::printable(j.value(k, std::string())); };
  std::string result = j["result"];
  if (result == "hit") {
    std::printf("%s: hit %s key '%s' (%s%s, %s branch '%s'), %s, created %s by job '%s'\n",
                str("name").c_str(), str("id").c_str(), str("key_found").c_str(),
                str("step").c_str(),
                j["step"] == "prefix" ? (" '" + str("prefix") + "'").c_str() : "",
                str("branch_match").c_str(), str("branch").c_str(),
                util::human_bytes(j["compressed_bytes"].get<uint64_t>()).c_str(),
                str("created").c_str(), str("job_id").c_str());
  } else if (result == "miss") {
    std::printf("%s: miss (key '%s'): %s\n", str("name").c_str(), str("key_wanted").c_str(),
                str("reason").c_str());
    if (util::log::level() >= util::log::Level::verbose) {
      for (const auto& d : j["passed_over"]) {
        std::printf("  passed over %s\n", d.get<std::string>().c_str());
      }
    }
  } else {
    std::printf("%s: not restored: %s\n", str("name").c_str(), str("reason").c_str());
  }
}

// lookup: what pre would restore, asked of the store without downloading. Exit 0 when every
// stanza pre would restore has a save to take, 3 when one would miss, 1 when the store
// cannot be asked, 2 for a job-file error.
int run_lookup(const Globals& g, const ContextOptions& o) {
  session::Session s(session_options(g, o));
  load_job(s, o);
  json out = json::array();
  bool any_miss = false;
  try {
    for (const auto& st : s.job().stanzas) {
      if (!s.job().spec.enable) {
        out.push_back(json{{"name", st.name()},
                           {"result", "not restored"},
                           {"reason", "the job is disabled (enable = false)"}});
        continue;
      }
      out.push_back(lookup_one(s, st, any_miss));
      if (!g.json) {
        print_lookup(out.back());
      }
    }
  } catch (const util::InputError&) {
    throw;
  } catch (const std::exception& e) {
    util::log::error("unable to look up in {}: {}",
                     store::redact_url(s.options().store.resolved_url()),
                     util::printable(e.what()));
    return k_exit_failure;
  }
  if (g.json) {
    std::printf("%s\n", out.dump(2).c_str());
  }
  return any_miss ? k_exit_miss : k_exit_ok;
}

} // namespace

void add_lookup(Command app, Globals& g, Action& action) {
  auto sub = app.add_subcommand(
      "lookup",
      "Ask the store what pre would restore, downloading nothing (exit 0 all hit, 3 a miss)");
  auto o = std::make_shared<ContextOptions>();
  add_context_options(sub, *o, true);
  sub.callback([&g, &action, o] { action = [&g, o] { return run_lookup(g, *o); }; });
}

void add_pre(Command app, Globals& g, Action& action) {
  auto sub = app.add_subcommand("pre", "Before the job: restore every stanza the policy allows");
  auto o = std::make_shared<ContextOptions>();
  auto budget = std::make_shared<std::string>();
  add_context_options(sub, *o, true);
  add_budget_option(sub, *budget);
  sub.callback(
      [&g, &action, o, budget] { action = [&g, o, budget] { return run_pre(g, *o, *budget); }; });
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
