// ls, show, invalidate, gc: operating the store.
#include "cli/commands.hpp"
#include "cli/context.hpp"
#include "jobfile/reader.hpp"
#include "report/report.hpp"
#include "session/store_open.hpp"
#include "store/catalog.hpp"
#include "store/gc.hpp"
#include "store/selection.hpp"
#include "store/url.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/units.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>
#include <memory>

namespace ephemera::cli {

namespace {

using nlohmann::json;

std::unique_ptr<store::Catalog> open_catalog(const Globals& g) {
  return session::open_catalog(store_options(g));
}

// The store's URL for messages, never with credentials.
std::string store_shown(const Globals& g) {
  return store::redact_url(store_options(g).resolved_url());
}

double now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string age(const std::string& created) {
  auto t = store::parse_rfc3339(created);
  if (!t) {
    return "?";
  }
  double s = std::max(0.0, now() - *t);
  if (s < 120) {
    return fmt::format("{:.0f}s", s);
  }
  if (s < 7200) {
    return fmt::format("{:.0f}m", s / 60);
  }
  if (s < 172800) {
    return fmt::format("{:.0f}h", s / 3600);
  }
  return fmt::format("{:.0f}d", s / 86400);
}

struct Filter {
  std::string repository, target, name, reason;
};

json manifest_json(store::Catalog& c, const store::Manifest& m, const store::Visibility& v) {
  json j = m.to_json();
  j["manifest_object"] = m.object;
  j["link"] = c.link(m);
  j["restorable"] = v.restorable;
  j["status"] = v.why;
  return j;
}

// What a store holds, escaped for a terminal: every field of a manifest or a marker was
// written by whoever can write to the store.
std::string shown(const std::string& text, const char* if_empty = "") {
  return text.empty() ? if_empty : util::printable(text);
}

// Sizes as manifests claim them: a forged one may claim 2^64 - 1, which must not wrap a total.
uint64_t saturating_add(uint64_t a, uint64_t b) {
  return b > UINT64_MAX - a ? UINT64_MAX : a + b;
}

int run_ls(const Globals& g, const Filter& f) {
  auto c = open_catalog(g);
  auto all = c->list(f.repository, f.target, f.name);
  auto invs = c->invalidations(f.repository);
  auto valid = c->valid_saves(all);
  store::Selection selection(valid, invs);
  if (g.json) {
    json out = json::array();
    for (const auto& m : all) {
      out.push_back(manifest_json(*c, m, c->visibility(m, selection)));
    }
    std::printf("%s\n", out.dump(2).c_str());
    return k_exit_ok;
  }
  std::printf("%-24s %-12s %-18s %-5s %-28s %-16s %-7s %10s %7s %-8s %-14s %s\n", "REPOSITORY",
              "TARGET", "NAME", "EPOCH", "KEY", "BRANCH", "TRUSTED", "SIZE", "FILES", "AGE", "JOB",
              "STATUS");
  std::map<std::string, std::pair<uint64_t, uint64_t>> scopes;
  uint64_t total = 0;
  for (const auto& m : all) {
    auto v = c->visibility(m, selection);
    std::string status = v.restorable ? (v.why.empty() ? "restorable" : v.why) : v.why;
    std::printf("%-24s %-12s %-18s %-5lld %-28s %-16s %-7s %10s %7llu %-8s %-14s %s\n",
                shown(m.repository).c_str(), shown(m.target, "-").c_str(), shown(m.name).c_str(),
                static_cast<long long>(m.epoch), shown(m.key, "\"\"").c_str(),
                shown(m.branch).c_str(), m.trusted ? "yes" : "no",
                report::human_bytes(m.compressed_size).c_str(),
                static_cast<unsigned long long>(m.files), age(m.created).c_str(),
                shown(m.job_id).c_str(), status.c_str());
    auto& s = scopes[fmt::format("{}/{}/{}/e{}", shown(m.repository), shown(m.target, "-"),
                                 shown(m.name), m.epoch)];
    s.first += 1;
    s.second = saturating_add(s.second, m.compressed_size);
    total = saturating_add(total, m.compressed_size);
  }
  for (const auto& [scope, s] : scopes) {
    std::printf("total %s: %llu archives, %s\n", scope.c_str(),
                static_cast<unsigned long long>(s.first), report::human_bytes(s.second).c_str());
  }
  std::printf("total: %zu archives, %s\n", all.size(), report::human_bytes(total).c_str());
  for (const auto& inv : invs) {
    std::printf("invalidated %s%s%s at %s%s\n", shown(inv.repository).c_str(),
                inv.target.empty() ? "" : ("/" + shown(inv.target)).c_str(),
                inv.name.empty() ? "" : ("/" + shown(inv.name)).c_str(), shown(inv.created).c_str(),
                inv.reason.empty() ? "" : (": " + shown(inv.reason)).c_str());
  }
  return k_exit_ok;
}

int run_show(const Globals& g, const std::string& id) {
  auto c = open_catalog(g);
  auto all = c->list();
  std::vector<const store::Manifest*> found;
  for (const auto& m : all) {
    if (m.object == id || m.archive == id || c->link(m) == id || m.archive + "" == id ||
        (id.size() >= 8 && m.sha256.rfind(id, 0) == 0)) {
      found.push_back(&m);
    }
  }
  if (found.empty()) {
    throw util::InputError(fmt::format("no archive '{}' in {}: give an object key, a link from "
                                       "'ephemera ls --json', or a SHA-256 prefix (8+ hex)",
                                       id, store_shown(g)));
  }
  if (found.size() > 1) {
    throw util::InputError(
        fmt::format("'{}' names {} archives: give more of the SHA-256", id, found.size()));
  }
  const auto& m = *found.front();
  auto v = c->visibility(m, all, c->invalidations(m.repository));
  auto j = manifest_json(*c, m, v);
  j["store"] = store_shown(g);
  if (auto p = c->presigned_link(m)) {
    j["presigned"] = *p;
  }
  if (g.json) {
    std::printf("%s\n", j.dump(2).c_str());
    return k_exit_ok;
  }
  for (const auto& [k, val] : j.items()) {
    std::printf("%-18s %s\n", (k + ":").c_str(),
                val.is_string() ? shown(val.get<std::string>()).c_str() : val.dump().c_str());
  }
  std::printf("%-18s %s\n",
              "verdict:", v.restorable ? "restorable" : ("not restorable: " + v.why).c_str());
  return k_exit_ok;
}

int run_invalidate(const Globals& g, const Filter& f) {
  if (f.repository.empty()) {
    throw util::InputError("invalidate --repository '': give the repository (owner/name) whose "
                           "saves to hide");
  }
  auto c = open_catalog(g);
  auto inv = c->invalidate(f.repository, f.target, f.name, f.reason);
  std::printf("invalidated %s target %s name %s at %s: every archive saved before now is "
              "invisible%s\n",
              shown(f.repository).c_str(), f.target.empty() ? "(all)" : shown(f.target).c_str(),
              f.name.empty() ? "(all)" : shown(f.name).c_str(), inv.created.c_str(),
              c->signing() ? " (the marker is signed)" : "");
  return k_exit_ok;
}

struct GcFlags {
  int keep = 1;
  std::string max_age;
  std::string max_bytes;
  std::string grace = "1h";
  bool dry_run = false;
};

store::GcOptions gc_options(const GcFlags& flags) {
  store::GcOptions o;
  if (flags.keep < 1) {
    throw util::InputError(fmt::format("--keep {}: give 1 or more (the newest save of each key "
                                       "and branch is what a restore takes)",
                                       flags.keep));
  }
  o.keep = flags.keep;
  if (!flags.max_age.empty()) {
    o.max_age = util::parse_duration(flags.max_age);
    if (!o.max_age) {
      throw util::InputError(
          fmt::format("--max-age '{}': give a duration such as 30d, 12h, 90m", flags.max_age));
    }
  }
  if (!flags.max_bytes.empty()) {
    o.max_bytes = util::parse_size(flags.max_bytes);
    if (!o.max_bytes) {
      throw util::InputError(
          fmt::format("--max-bytes '{}': give a size such as 50GiB", flags.max_bytes));
    }
  }
  auto grace = util::parse_duration(flags.grace);
  if (!grace) {
    throw util::InputError(fmt::format("--grace '{}': give a duration such as 1h", flags.grace));
  }
  o.grace = *grace;
  return o;
}

// A dry run writes nothing, so it cannot place the probe that reads the store's clock: it
// takes this machine's, never earlier than the newest object the store listed.
int run_gc(const Globals& g, const GcFlags& flags) {
  auto o = gc_options(flags);
  auto c = open_catalog(g);
  auto inventory = store::take_inventory(*c);
  double now = flags.dry_run ? store::estimate_store_now(inventory) : c->store_now();
  auto plan = store::plan_gc(inventory, o, now);
  uint64_t freed = 0;
  size_t done = 0;
  json out = json::array();
  for (const auto& a : plan.actions) {
    std::string what = util::printable(c->backend().url(a.subject));
    if (!flags.dry_run && !store::carry_out(*c, a)) {
      plan.kept.push_back(fmt::format("{}: its manifest appeared while gc ran", what));
      continue;
    }
    freed += a.bytes;
    done += a.objects.size();
    if (g.json) {
      out.push_back(json{
          {"object", what}, {"objects", a.objects.size()}, {"why", a.why}, {"bytes", a.bytes}});
    } else {
      std::printf("%s %s (%s): %s\n", flags.dry_run ? "would delete" : "deleted", what.c_str(),
                  report::human_bytes(a.bytes).c_str(), a.why.c_str());
    }
  }
  if (g.json) {
    std::printf("%s\n", json{{"dry_run", flags.dry_run},
                             {"deleted", out},
                             {"freed_objects", done},
                             {"freed_bytes", freed},
                             {"kept", plan.kept}}
                            .dump(2)
                            .c_str());
    return k_exit_ok;
  }
  std::printf("%s %zu objects, %s\n", flags.dry_run ? "would free" : "freed", done,
              report::human_bytes(freed).c_str());
  for (const auto& k : plan.kept) {
    std::printf("kept %s\n", k.c_str());
  }
  return k_exit_ok;
}

} // namespace

void add_ls(Command app, Globals& g, Action& action) {
  auto sub = app.add_subcommand("ls", "List the archives in the store");
  auto f = std::make_shared<Filter>();
  sub.add_option("--repository", f->repository, "Only this repository");
  sub.add_option("--target", f->target, "Only this target (with --repository)");
  sub.add_option("--name", f->name, "Only this stanza name");
  sub.callback([&g, &action, f] { action = [&g, f] { return run_ls(g, *f); }; });
}

void add_show(Command app, Globals& g, Action& action) {
  auto sub =
      app.add_subcommand("show", "Show one archive's manifest, link and whether it is restorable");
  auto id = std::make_shared<std::string>();
  sub.add_option("archive", *id, "Object key, link or SHA-256 prefix").required();
  sub.callback([&g, &action, id] { action = [&g, id] { return run_show(g, *id); }; });
}

void add_invalidate(Command app, Globals& g, Action& action) {
  auto sub = app.add_subcommand("invalidate", "Hide every archive of a scope saved before now");
  auto f = std::make_shared<Filter>();
  sub.add_option("--repository", f->repository, "owner/name").required();
  sub.add_option("--target", f->target, "Only this target");
  sub.add_option("--name", f->name, "Only this stanza");
  sub.add_option("--reason", f->reason, "Why, for ls and show");
  sub.callback([&g, &action, f] { action = [&g, f] { return run_invalidate(g, *f); }; });
}

void add_gc(Command app, Globals& g, Action& action) {
  auto sub =
      app.add_subcommand("gc", "Delete what can no longer be restored, and what is over budget");
  auto flags = std::make_shared<GcFlags>();
  sub.add_option("--keep", flags->keep,
                 "Keep the newest N saves per key and branch (default 1: superseded saves go)");
  sub.add_option("--max-age", flags->max_age, "Delete saves older than this (30d, 12h)");
  sub.add_option("--max-bytes", flags->max_bytes,
                 "Then delete the oldest until the store fits (50GiB)");
  sub.add_option("--grace", flags->grace,
                 "Never touch saves or orphans younger than this (default 1h)");
  sub.add_flag("--dry-run", flags->dry_run, "Print what would be deleted, delete nothing");
  sub.callback([&g, &action, flags] { action = [&g, flags] { return run_gc(g, *flags); }; });
}

} // namespace ephemera::cli
