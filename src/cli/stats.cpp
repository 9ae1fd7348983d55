// stats: what each stanza is worth, across the fleet, from the event records in the store.
#include "cas/gc.hpp"
#include "cli/commands.hpp"
#include "cli/context.hpp"
#include "report/report.hpp"
#include "session/store_open.hpp"
#include "store/catalog.hpp"
#include "store/events.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/units.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <memory>

namespace ephemera::cli {

namespace {

using nlohmann::json;

struct StatsFlags {
  std::string repository;
  std::string since = "7d";
  size_t max_records = 100000;
};

// Text cut to at most width columns and padded (escaped already: one byte is one column).
std::string cell(const std::string& text, size_t width) {
  if (text.size() > width) {
    return text.substr(0, width - 1) + "~";
  }
  return text + std::string(width - text.size(), ' ');
}

// What the "stored" figures are, for the output to say: the store's own count, not a sum of
// what the saves reported (a content-addressed save reports every pack its state uses, and
// the saves of one stanza share packs).
constexpr const char* k_stored_is =
    "bytes the store holds now for the stanza: its archives, and its indexes with the packs "
    "they reference, a pack shared by several saves counted once";

json stats_json(const store::StatsKey& k, const store::StanzaStats& s, uint64_t stored) {
  return json{{"repository", std::get<0>(k)},
              {"target", std::get<1>(k)},
              {"name", std::get<2>(k)},
              {"restores", {{"exact", s.exact}, {"prefix", s.prefix}, {"miss", s.misses}}},
              {"saves", {{"saved", s.saves}, {"unchanged", s.unchanged}}},
              {"failed", s.failed},
              {"budget", s.budget},
              {"bytes_stored", stored},
              {"bytes_moved", s.moved},
              {"seconds", {{"pre", s.pre_seconds}, {"post", s.post_seconds}}}};
}

int run_stats(const Globals& g, const StatsFlags& f) {
  auto since = util::parse_duration(f.since);
  if (!since || *since <= 0) {
    throw util::InputError(
        fmt::format("--since '{}': give a duration such as 7d, 12h", util::printable(f.since)));
  }
  double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  auto c = session::open_catalog(store_options(g));
  auto read = store::read_events(c->backend(), f.repository, now - *since, f.max_records);
  if (read.truncated) {
    util::log::warn("more than {} event records since {} ago: only the newest days' were counted",
                    f.max_records, f.since);
  }
  auto table = store::add_up(read.events);
  // The store's own figure for each stanza counted: what its saves hold, each object once.
  std::map<store::StatsKey, cas::HeldBytes> stored;
  for (const auto& row : table) {
    stored[row.first];
  }
  for (const auto& m : c->list(f.repository)) {
    if (auto it = stored.find({m.repository, m.target, m.name}); it != stored.end()) {
      it->second.add(cas::held_objects(c->backend(), m));
    }
  }
  if (g.json) {
    json out = json::array();
    for (const auto& [k, s] : table) {
      out.push_back(stats_json(k, s, stored[k].bytes()));
    }
    std::printf("%s\n", json{{"since", f.since},
                             {"records", read.events.size()},
                             {"skipped", read.skipped},
                             {"truncated", read.truncated},
                             {"bytes_stored_is", k_stored_is},
                             {"stanzas", out}}
                            .dump(2)
                            .c_str());
    return k_exit_ok;
  }
  // Within 100 columns: the repository and target head their group.
  std::string group;
  for (const auto& [k, s] : table) {
    std::string here = fmt::format("{} target {}", util::printable(std::get<0>(k)),
                                   std::get<1>(k).empty() ? "-" : util::printable(std::get<1>(k)));
    if (here != group) {
      group = here;
      std::printf("%s:\n%-18s %6s %6s %6s %6s %6s %10s %10s %8s %8s\n", here.c_str(), "NAME",
                  "EXACT", "PREFIX", "MISS", "SAVED", "SAME", "IN STORE", "MOVED", "PRE s",
                  "POST s");
    }
    std::printf("%s %6llu %6llu %6llu %6llu %6llu %10s %10s %8.1f %8.1f\n",
                cell(util::printable(std::get<2>(k)), 18).c_str(),
                static_cast<unsigned long long>(s.exact), static_cast<unsigned long long>(s.prefix),
                static_cast<unsigned long long>(s.misses), static_cast<unsigned long long>(s.saves),
                static_cast<unsigned long long>(s.unchanged),
                report::human_bytes(stored[k].bytes()).c_str(),
                report::human_bytes(s.moved).c_str(), s.pre_seconds, s.post_seconds);
  }
  std::printf("IN STORE: bytes held now: archives, indexes and their packs, a shared pack once\n");
  std::printf("%zu event records since %s ago%s\n", read.events.size(), f.since.c_str(),
              read.skipped > 0 ? fmt::format(", {} skipped (see above)", read.skipped).c_str()
                               : "");
  return k_exit_ok;
}

} // namespace

void add_stats(Command app, Globals& g, Action& action) {
  auto sub = app.add_subcommand(
      "stats", "What each stanza is worth across the fleet: restores, saves, bytes, seconds");
  auto f = std::make_shared<StatsFlags>();
  sub.add_option("--repository", f->repository, "Only this repository (owner/name)");
  sub.add_option("--since", f->since, "Count the records of this long (default 7d)");
  sub.callback([&g, &action, f] { action = [&g, f] { return run_stats(g, *f); }; });
}

} // namespace ephemera::cli
