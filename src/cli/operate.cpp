// ls, show, invalidate, gc: operating the store.
#include "cas/gc.hpp"
#include "cli/commands.hpp"
#include "cli/context.hpp"
#include "cli/named_save.hpp"
#include "jobfile/reader.hpp"
#include "jobfile/stanza_check.hpp"
#include "policy/policy.hpp"
#include "report/report.hpp"
#include "session/store_open.hpp"
#include "store/catalog.hpp"
#include "store/gc.hpp"
#include "store/keys.hpp"
#include "store/selection.hpp"
#include "store/short_id.hpp"
#include "store/url.hpp"
#include "store/usage.hpp"
#include "util/error.hpp"
#include "util/fault.hpp"
#include "util/fs.hpp"
#include "util/log.hpp"
#include "util/units.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
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

std::string age_since(double t) {
  double s = std::max(0.0, now() - t);
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

std::string age(const std::string& created) {
  auto t = store::parse_rfc3339(created);
  return t ? age_since(*t) : "?";
}

// "2h x3": restored last 2 hours ago, on 3 days; "-": never (usage.hpp).
std::string used_cell(const store::Use& u) {
  return u.last > 0 ? fmt::format("{} x{}", age_since(u.last), u.days) : "-";
}

std::string rfc3339_of(double t) {
  auto tt = static_cast<std::time_t>(t);
  struct tm tm {};
  ::gmtime_r(&tt, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

struct Filter {
  std::string repository, target, name, reason;
  // invalidate: only saves of this key, or of this branch (given, even as "", or not)
  std::optional<std::string> key, branch;
  bool dry_run = false;
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

// Text cut to at most width columns (it is escaped already, so one byte is one column),
// with '~' marking a cut, then padded: a long name must not push the columns of a line apart.
std::string cell(const std::string& text, size_t width) {
  if (text.size() > width) {
    return text.substr(0, width - 1) + "~";
  }
  return text + std::string(width - text.size(), ' ');
}

// A save's standing in one word or two, for ls: `show ID` says it in full.
std::string status_word(const store::Manifest& m, const store::Visibility& v) {
  if (v.restorable) {
    return m.trusted ? "restorable" : "untrusted";
  }
  for (const char* word : {"invalidated", "old epoch", "superseded", "unsigned", "bad signature"}) {
    if (v.why.rfind(word, 0) == 0) {
      return word;
    }
  }
  return "refused";
}

int run_ls(const Globals& g, const Filter& f) {
  auto c = open_catalog(g);
  auto all = c->list(f.repository, f.target, f.name);
  auto invs = c->invalidations(f.repository);
  auto valid = c->valid_saves(all);
  store::Selection selection(valid, invs);
  // The use markers lie beside the manifests: one more listing of the same folder.
  auto uses =
      store::uses_of(all, c->backend().list(store::saves_prefix(f.repository, f.target, f.name)));
  // What each save holds: its archive, or its index and the packs it references.
  std::map<std::string, std::vector<std::pair<std::string, uint64_t>>> held;
  auto bytes_of = [](const std::vector<std::pair<std::string, uint64_t>>& objects) {
    cas::HeldBytes b;
    b.add(objects);
    return b.bytes();
  };
  for (const auto& m : all) {
    held[m.object] = cas::held_objects(c->backend(), m);
  }
  if (g.json) {
    json out = json::array();
    for (const auto& m : all) {
      auto j = manifest_json(*c, m, c->visibility(m, selection));
      j["id"] = store::short_id(m);
      const auto& u = uses[m.object];
      j["last_used"] = u.last > 0 ? json(rfc3339_of(u.last)) : json(nullptr);
      j["restored_days"] = u.days;
      j["stored_bytes"] = bytes_of(held[m.object]);
      out.push_back(std::move(j));
    }
    std::printf("%s\n", out.dump(2).c_str());
    return k_exit_ok;
  }
  // One line a save, within 100 columns: the repository and target head their group, and
  // what does not fit (files, job, the full status) is in `show ID`.
  // Totals count each object once: saves of one stanza share packs.
  std::map<std::string, std::pair<uint64_t, cas::HeldBytes>> scopes;
  cas::HeldBytes everything;
  std::string group;
  for (const auto& m : all) {
    std::string here = fmt::format("{} target {}", shown(m.repository), shown(m.target, "-"));
    if (here != group) {
      group = here;
      std::printf("%s:\n%-10s %-15s %-4s %-14s %-14s %10s %4s %-7s %s\n", here.c_str(), "ID",
                  "NAME", "EP", "KEY", "BRANCH", "SIZE", "AGE", "USED", "STATUS");
    }
    auto v = c->visibility(m, selection);
    std::printf("%s %s %s %s %s %10s %4s %s %s\n", store::short_id(m).c_str(),
                cell(shown(m.name), 15).c_str(), cell(fmt::format("e{}", m.epoch), 4).c_str(),
                cell(shown(m.key, "\"\""), 14).c_str(), cell(shown(m.branch, "-"), 14).c_str(),
                report::human_bytes(bytes_of(held[m.object])).c_str(),
                cell(age(m.created), 4).c_str(),
                cell(used_cell(uses[m.object]), 7).c_str(), status_word(m, v).c_str());
    auto& s = scopes[fmt::format("{}/{}/{}/e{}", shown(m.repository), shown(m.target, "-"),
                                 shown(m.name), m.epoch)];
    s.first += 1;
    s.second.add(held[m.object]);
    everything.add(held[m.object]);
  }
  for (const auto& [scope, s] : scopes) {
    std::printf("total %s: %llu archives, %s\n", scope.c_str(),
                static_cast<unsigned long long>(s.first),
                report::human_bytes(s.second.bytes()).c_str());
  }
  std::printf("total: %zu archives, %s\n", all.size(),
              report::human_bytes(everything.bytes()).c_str());
  for (const auto& inv : invs) {
    std::printf("marker: %s%s%s%s%s invalidated at %s%s\n", shown(inv.repository).c_str(),
                inv.target.empty() ? "" : ("/" + shown(inv.target)).c_str(),
                inv.name.empty() ? "" : ("/" + shown(inv.name)).c_str(),
                inv.key.empty() ? "" : (" key '" + shown(inv.key) + "'").c_str(),
                inv.branch.empty() ? "" : (" branch '" + shown(inv.branch) + "'").c_str(),
                shown(inv.created).c_str(),
                inv.reason.empty() ? "" : (": " + shown(inv.reason)).c_str());
  }
  return k_exit_ok;
}

// Sizes for people, with the exact count beside them.
std::string sized(uint64_t bytes) {
  return fmt::format("{} ({} bytes)", report::human_bytes(bytes), bytes);
}

int run_show(const Globals& g, const std::string& id) {
  auto c = open_catalog(g);
  auto named = find_named_save(*c, id, store_shown(g), false);
  const auto& all = named.all;
  const auto& m = named.save();
  bool local = named.from_file;
  bool in_store = named.in_store;
  auto v = c->visibility(m, all, c->invalidations(m.repository));
  auto j = manifest_json(*c, m, v);
  j["id"] = store::short_id(m);
  j["store"] = store_shown(g);
  if (local) {
    j["file"] = id;
    j["in_store"] = in_store;
  }
  if (auto p = c->presigned_link(m)) {
    j["presigned"] = *p;
  }
  // Any save exports as a plain tar.zst; a content-addressed one has no other single download.
  j["export"] =
      report::export_command(store_shown(g), store::short_id(m), store::short_id(m) + ".tar.zst");
  if (g.json) {
    std::printf("%s\n", j.dump(2).c_str());
    return k_exit_ok;
  }
  for (const auto& [k, val] : j.items()) {
    std::string text = val.is_string() ? shown(val.get<std::string>()) : val.dump();
    if ((k == "compressed_size" || k == "unpacked_bytes") && val.is_number_unsigned()) {
      text = sized(val.get<uint64_t>());
    }
    std::printf("%-18s %s\n", (k + ":").c_str(), text.c_str());
  }
  std::string verdict = v.restorable ? "restorable" : "not restorable: " + v.why;
  if (local && !in_store) {
    verdict = "not in the store (" + verdict + " if it were)";
  }
  std::printf("%-18s %s\n", "verdict:", verdict.c_str());
  return k_exit_ok;
}

// Refuses a narrowing that could hide nothing it names, or more than it names: "" is what a
// marker stores for "any", so an empty --key or --branch given by a script whose variable
// was unset would otherwise hide every save of the scope.
void check_narrowing(const Filter& f) {
  if (!f.name.empty() && !jobfile::valid_stanza_name(f.name)) {
    throw util::InputError(fmt::format("invalidate --name '{}': a stanza name matches "
                                       "^[a-z0-9][a-z0-9._-]{{0,63}}$, so no save has it",
                                       util::printable(f.name)));
  }
  if (f.key && f.key->empty()) {
    throw util::InputError("invalidate --key '': an empty --key would hide every key's saves; "
                           "leave --key out for that, or name the stanza (--name) to hide the "
                           "saves of a stanza without a key");
  }
  if (f.key && !policy::possible_key(*f.key)) {
    throw util::InputError(fmt::format("invalidate --key '{}': not a key a save can have (a "
                                       "cache_key of A-Z a-z 0-9 . _ -, at most 128, and its key "
                                       "files' '-<16 hex>')",
                                       util::printable(*f.key)));
  }
  if (f.branch && f.branch->empty()) {
    throw util::InputError("invalidate --branch '': every save has a branch and an empty one "
                           "would hide them all; leave --branch out for that");
  }
}

// Writes the marker (not on a dry run) and says what it hid: the saves it covers that no
// marker hides already.
int invalidate_scope(const Globals& g, const Filter& f) {
  const std::string key = f.key.value_or(""), branch = f.branch.value_or("");
  auto c = open_catalog(g);
  // What the marker hides: the saves it covers that no marker hides already, judged as
  // lookup, ls and gc judge them (the one selection).
  auto all = c->list(f.repository, f.target, f.name);
  auto markers = c->invalidations(f.repository);
  auto valid = c->valid_saves(all);
  store::Selection before(valid, markers);
  store::Invalidation probe{f.repository, f.target, f.name, f.reason, store::rfc3339_now(),
                            "",           0,        key,    branch};
  std::vector<const store::Manifest*> hidden;
  for (const auto& m : valid) {
    if (probe.covers(m) && before.hidden_by(m) == nullptr) {
      hidden.push_back(&m);
    }
  }
  std::string scope = fmt::format("{} target {} name {}{}{}", shown(f.repository),
                                  f.target.empty() ? "(all)" : shown(f.target),
                                  f.name.empty() ? "(all)" : shown(f.name),
                                  key.empty() ? "" : fmt::format(" key '{}'", shown(key)),
                                  branch.empty() ? "" : fmt::format(" branch '{}'", shown(branch)));
  std::string created = probe.created;
  if (!f.dry_run) {
    created = c->invalidate(f.repository, f.target, f.name, f.reason, key, branch).created;
  }
  std::string ids;
  for (const auto* m : hidden) {
    ids += " " + store::short_id(*m);
  }
  if (g.json) {
    json list = json::array();
    for (const auto* m : hidden) {
      list.push_back(json{{"id", store::short_id(*m)},
                          {"object", m->object},
                          {"key", m->key},
                          {"branch", m->branch},
                          {"created", m->created}});
    }
    std::printf("%s\n", json{{"dry_run", f.dry_run},
                             {"created", created},
                             {"signed", c->signing() && !f.dry_run},
                             {"hidden", list}}
                            .dump(2)
                            .c_str());
    return k_exit_ok;
  }
  std::printf("%s %s at %s: %s %zu save%s%s%s\n", f.dry_run ? "would invalidate" : "invalidated",
              scope.c_str(), created.c_str(), f.dry_run ? "would hide" : "hid", hidden.size(),
              hidden.size() == 1 ? "" : "s", hidden.empty() ? "" : ":", ids.c_str());
  if (!f.dry_run && c->signing()) {
    std::printf("the marker is signed\n");
  }
  return k_exit_ok;
}

int run_invalidate(const Globals& g, const Filter& f) {
  if (f.repository.empty()) {
    throw util::InputError("invalidate --repository '': give the repository (owner/name) whose "
                           "saves to hide");
  }
  check_narrowing(f);
  try {
    return invalidate_scope(g, f);
  } catch (const util::StoreError& e) {
    if (e.kind() != util::StoreErrorKind::unauthorized) {
      throw;
    }
    // A broker refuses a job's token both: say what would be allowed, not only what was not.
    throw util::StoreError(e.kind(),
                           std::string(e.what()) +
                               " (invalidate lists the saves of the scope and writes a marker: "
                               "through a broker only an operator's token may, see ephemera "
                               "token --operator)");
  }
}

struct GcFlags {
  int keep = 1;
  std::string max_age;
  std::string max_bytes;
  std::string grace = "1h";
  std::string events_max_age = "30d";
  bool dry_run = false;
  std::vector<std::string> saves; // --save ID: only these
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
  auto events = util::parse_duration(flags.events_max_age);
  if (!events) {
    throw util::InputError(fmt::format("--events-max-age '{}': give a duration such as 30d",
                                       util::printable(flags.events_max_age)));
  }
  o.events_max_age = *events;
  return o;
}

// What gc freed of one kind of object.
struct Freed {
  size_t count = 0;
  uint64_t bytes = 0;
  void add(uint64_t b) {
    ++count;
    bytes += b;
  }
};

// A dry run writes nothing, so it cannot place the probe that reads the store's clock: it
// takes this machine's, never earlier than the newest object the store listed.
// gc --save ID... deletes exactly the saves named, whatever their standing (the operator's
// removal of a save known to be bad), through the same plan and checks as a full run: the
// manifest first, so no reader finds a save whose objects are going, then a content-addressed
// save's index, then the packs no other save references.
int run_gc(const Globals& g, const GcFlags& flags) {
  auto o = gc_options(flags);
  auto c = open_catalog(g);
  std::map<std::string, std::string> ids; // with --save: manifest object -> id, for people
  if (!flags.saves.empty()) {
    auto all = c->list();
    auto links = links_of(*c, all);
    for (const auto& id : flags.saves) {
      const auto& m = store::one_save(all, id, store_shown(g), links);
      o.only.insert(m.object);
      ids.emplace(m.object, store::short_id(m));
    }
  }
  auto inventory = store::take_inventory(*c);
  double now = flags.dry_run ? store::estimate_store_now(inventory) : c->store_now();
  cas::read_indexes(c->backend(), inventory, now, o.grace);
  auto plan = store::plan_gc(inventory, o, now);
  cas::PackRecheck recheck(c->backend(), inventory);
  auto still_dead = [&recheck](const std::string& key) { return recheck(key); };
  uint64_t freed = 0;
  size_t done = 0;
  Freed packs, indexes, saves;
  json out = json::array();
  for (const auto& a : plan.actions) {
    std::string what = util::printable(c->backend().url(a.subject));
    if (!flags.dry_run && !store::carry_out(*c, a, still_dead)) {
      plan.kept.push_back(
          fmt::format("{}: {}", what,
                      a.kind == store::GcObject::index || a.kind == store::GcObject::pack
                          ? "written again or newly referenced while gc ran"
                          : "its manifest appeared while gc ran"));
      continue;
    }
    util::fault_point("gc-deleted");
    freed += a.bytes;
    done += a.objects.size();
    if (a.kind == store::GcObject::pack) {
      packs.add(a.bytes);
    } else if (a.kind == store::GcObject::index) {
      indexes.add(a.bytes);
    } else if (a.kind == store::GcObject::save) {
      saves.add(a.bytes);
    }
    auto id = ids.find(a.subject);
    if (g.json) {
      json d{{"object", what}, {"objects", a.objects.size()}, {"why", a.why}, {"bytes", a.bytes}};
      if (id != ids.end()) {
        d["id"] = id->second;
      }
      out.push_back(std::move(d));
    } else if (id != ids.end()) {
      std::printf("%s save %s %s (%s): %s\n", flags.dry_run ? "would delete" : "deleted",
                  id->second.c_str(), what.c_str(), report::human_bytes(a.bytes).c_str(),
                  a.why.c_str());
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
                             {"freed_packs", packs.count},
                             {"freed_pack_bytes", packs.bytes},
                             {"freed_indexes", indexes.count},
                             {"freed_index_bytes", indexes.bytes},
                             {"freed_saves", saves.count},
                             {"kept", plan.kept}}
                            .dump(2)
                            .c_str());
    return k_exit_ok;
  }
  if (!ids.empty()) {
    std::printf("%s %zu save%s, %s", flags.dry_run ? "would free" : "freed", saves.count,
                saves.count == 1 ? "" : "s", report::human_bytes(freed).c_str());
  } else {
    std::printf("%s %zu objects, %s", flags.dry_run ? "would free" : "freed", done,
                report::human_bytes(freed).c_str());
  }
  if (packs.count + indexes.count > 0) {
    std::printf(" (of which %zu content-addressed pack%s, %s, and %zu index%s, %s)", packs.count,
                packs.count == 1 ? "" : "s", report::human_bytes(packs.bytes).c_str(),
                indexes.count, indexes.count == 1 ? "" : "es",
                report::human_bytes(indexes.bytes).c_str());
  }
  std::printf("\n");
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
  sub.add_option("archive", *id,
                 "The id ls prints, a SHA-256 prefix, an object key, a link, or a manifest file")
      .required();
  sub.callback([&g, &action, id] { action = [&g, id] { return run_show(g, *id); }; });
}

void add_invalidate(Command app, Globals& g, Action& action) {
  auto sub = app.add_subcommand("invalidate", "Hide every archive of a scope saved before now");
  auto f = std::make_shared<Filter>();
  sub.add_option("--repository", f->repository, "owner/name").required();
  sub.add_option("--target", f->target, "Only this target");
  sub.add_option("--name", f->name, "Only this stanza");
  sub.add_option("--key", f->key, "Only saves of this key");
  sub.add_option("--branch", f->branch, "Only saves made from this branch");
  sub.add_option("--reason", f->reason, "Why, for ls and show");
  sub.add_flag("--dry-run", f->dry_run, "Say which saves it would hide, write no marker");
  sub.callback([&g, &action, f] { action = [&g, f] { return run_invalidate(g, *f); }; });
}

void add_gc(Command app, Globals& g, Action& action) {
  auto sub =
      app.add_subcommand("gc", "Delete what can no longer be restored, and what is over budget");
  auto flags = std::make_shared<GcFlags>();
  sub.add_option("--keep", flags->keep,
                 "Keep the newest N saves per key and branch (default 1: superseded saves go)");
  sub.add_option("--max-age", flags->max_age,
                 "Delete saves not restored for this long (30d, 12h), or never restored and older");
  sub.add_option("--max-bytes", flags->max_bytes,
                 "Then delete the least recently used until the store fits (50GiB)");
  sub.add_option("--grace", flags->grace,
                 "Never touch saves or orphans younger than this (default 1h)");
  sub.add_option("--events-max-age", flags->events_max_age,
                 "Delete the event records stats reads once older than this (default 30d)");
  sub.add_flag("--dry-run", flags->dry_run, "Print what would be deleted, delete nothing");
  sub.add_option("--save", flags->saves,
                 "Delete only this save (the id ls prints; repeatable), whatever its standing");
  sub.callback([&g, &action, flags] { action = [&g, flags] { return run_gc(g, *flags); }; });
}

} // namespace ephemera::cli
