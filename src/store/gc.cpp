#include "store/gc.hpp"

#include "store/keys.hpp"
#include "store/selection.hpp"
#include "store/usage.hpp"
#include "util/log.hpp"
#include "util/units.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <tuple>

namespace ephemera::store {

namespace {

// When the store received it (its clock, as `now` is); the writer's clock if unknown.
double saved_at(const Manifest& m) {
  return m.stored > 0 ? static_cast<double>(m.stored) : parse_rfc3339(m.created).value_or(0);
}

std::string days(double seconds) {
  return seconds >= 86400 ? fmt::format("{:.1f} days", seconds / 86400)
                          : fmt::format("{:.1f} hours", seconds / 3600);
}

std::string count(size_t n, std::string_view one, std::string_view many) {
  return fmt::format("{} {}", n, n == 1 ? one : many);
}

// One plan in the making: what is chosen, what stays, and the listing to check against.
class Planner {
public:
  Planner(const GcInventory& inv, const GcOptions& o, double now)
      : m_inv(inv), m_options(o), m_now(now), m_selection(inv.saves, inv.markers),
        m_uses(uses_of(inv.saves, inv.listing)) {
    for (const auto& obj : inv.listing) {
      m_listed.emplace(obj.key, obj.size);
    }
    for (const auto& m : inv.saves) {
      m_named.insert(m.archive);
      m_live_names[m.archive] += 1;
    }
  }

  GcPlan run() {
    saves_by_standing();
    if (m_options.max_age) {
      saves_by_age();
    }
    if (m_options.max_bytes) {
      saves_by_budget();
    }
    refused_manifests();
    unnamed_objects();
    explain_saves();
    return std::move(m_plan);
  }

private:
  bool young(double at) const { return m_now - at < m_options.grace; }
  bool listed(const std::string& key) const { return m_listed.count(key) != 0; }
  uint64_t size_of(const std::string& key) const {
    auto it = m_listed.find(key);
    return it == m_listed.end() ? 0 : it->second;
  }
  std::string grace() const { return "--grace " + duration_text(m_options.grace); }
  const Use& use_of(const Manifest& m) const { return m_uses.at(m.object); }
  // When m was last restored, by its use markers; when it was saved if never since.
  double last_use(const Manifest& m) const { return std::max(saved_at(m), use_of(m).last); }

  // A save goes: its manifest, then its archive if it is its own and no save that stays
  // names it. Only what the listing holds is deleted.
  void drop(const Manifest& m, std::string why) {
    if (!listed(m.object) || !m_gone.insert(m.object).second) {
      return;
    }
    GcAction a{m.object, {m.object}, std::move(why), size_of(m.object), false, std::nullopt};
    if (--m_live_names[m.archive] == 0 && m.archive == own_archive(m.object) && listed(m.archive)) {
      a.objects.push_back(m.archive);
      a.bytes += size_of(m.archive);
    }
    for (const auto& marker : use_of(m).markers) { // its use goes with it
      a.objects.push_back(marker);
      a.bytes += size_of(marker);
    }
    m_plan.actions.push_back(std::move(a));
  }

  // Drops m unless it is in its grace period, which is then remembered as why it stays.
  void drop_unless_young(const Manifest& m, std::string why) {
    if (young(saved_at(m))) {
      m_spared.insert(m.object);
    } else {
      drop(m, std::move(why));
    }
  }

  // A superseded save goes once it has been beyond the newest `keep` for the grace period,
  // by when a restore that chose it before its successor arrived has long finished.
  void saves_by_standing() {
    for (const auto& m : m_inv.saves) {
      auto v = m_selection.judge(m);
      switch (v.standing) {
      case Standing::invalidated:
        drop_unless_young(m, v.why);
        break;
      case Standing::superseded:
        if (v.newer >= static_cast<size_t>(m_options.keep)) {
          const auto* since = m_selection.newer(m, static_cast<size_t>(m_options.keep));
          if (young(saved_at(*since))) {
            m_recent.insert(m.object);
          } else {
            drop_unless_young(m, v.why);
          }
        }
        break;
      case Standing::old_epoch:
        drop_unless_young(m, fmt::format("epoch {} is below the stanza's current one, {}", m.epoch,
                                         v.current_epoch));
        break;
      case Standing::live:
        break;
      }
    }
  }

  // By last use: a save restored within --max-age stays however old it is (a stable, hot
  // cache is never re-saved); one never restored goes by when it was saved.
  void saves_by_age() {
    for (const auto& m : m_inv.saves) {
      double idle = m_now - last_use(m);
      if (m_gone.count(m.object) == 0 && idle > *m_options.max_age) {
        drop_unless_young(
            m, use_of(m).last > 0
                   ? fmt::format("last restored {} ago, over --max-age", days(idle))
                   : fmt::format("{} old and never restored, over --max-age", days(idle)));
      }
    }
  }

  // The least recently used first (by last use, as saves_by_age), superseded saves before
  // the newest of any key: the save a lookup of its key chooses outlives every save that
  // is not. Sizes are what the listing says each save's objects hold: a size a manifest
  // claims is never believed.
  void saves_by_budget() {
    uint64_t total = 0;
    std::vector<const Manifest*> kept;
    std::set<std::string> newest;
    for (const auto& m : m_inv.saves) {
      if (m_gone.count(m.object) == 0) {
        total += bytes_of(m);
        kept.push_back(&m);
        if (m_selection.judge(m).standing == Standing::live) {
          newest.insert(m.object);
        }
      }
    }
    auto rank = [&](const Manifest* m) {
      return std::make_tuple(newest.count(m->object), last_use(*m), saved_at(*m), m->created);
    };
    std::sort(kept.begin(), kept.end(),
              [&](const Manifest* a, const Manifest* b) { return rank(a) < rank(b); });
    for (const auto* m : kept) {
      if (total <= *m_options.max_bytes) {
        break;
      }
      uint64_t bytes = bytes_of(*m);
      drop_unless_young(*m, fmt::format("least recently used while the store is over "
                                        "--max-bytes {}",
                                        util::human_bytes(*m_options.max_bytes)));
      if (m_gone.count(m->object) != 0) {
        total -= bytes;
      }
    }
  }

  uint64_t bytes_of(const Manifest& m) const {
    uint64_t bytes = size_of(m.object) + size_of(m.archive);
    for (const auto& marker : use_of(m).markers) {
      bytes += size_of(marker);
    }
    return bytes;
  }

  // A refused manifest never decides anything; past the grace period it is itself removed,
  // with its archive only where that is its own and no save names it.
  void refused_manifests() {
    size_t young_ones = 0;
    size_t unproven = 0;
    bool key_proven = !m_inv.signing || !m_inv.saves.empty();
    for (const auto& r : m_inv.refused) {
      const auto& m = r.manifest;
      if (!listed(m.object)) {
        continue;
      }
      if (!key_proven) {
        ++unproven;
        continue;
      }
      if (young(saved_at(m))) {
        ++young_ones;
        continue;
      }
      std::string why = "a manifest that takes no part: " + r.why;
      GcAction a{m.object, {m.object}, std::move(why), size_of(m.object), false, std::nullopt};
      if (m.archive == own_archive(m.object) && listed(m.archive) &&
          m_named.count(m.archive) == 0) {
        a.objects.push_back(m.archive);
        a.bytes += size_of(m.archive);
      }
      m_plan.actions.push_back(std::move(a));
    }
    if (young_ones > 0) {
      m_plan.kept.push_back(
          fmt::format("{} that take no part (unsigned or badly signed), younger than {}",
                      count(young_ones, "manifest", "manifests"), grace()));
    }
    if (unproven > 0) {
      m_plan.kept.push_back(fmt::format(
          "{} unsigned or badly signed: not one manifest verifies with EPHEMERA_SIGNING_KEY, so it "
          "may not be the agents' key and nothing is deleted for its sake",
          count(unproven, "manifest", "manifests")));
    }
  }

  // Archives no manifest object names, leftovers of interrupted writes, clock probes.
  void unnamed_objects() {
    std::vector<Manifest> named = m_inv.saves;
    for (const auto& r : m_inv.refused) {
      named.push_back(r.manifest);
    }
    size_t young_ones = 0;
    auto collect = [&](const ObjectInfo& o, const char* why, bool orphan) {
      if (young(static_cast<double>(o.mtime))) {
        ++young_ones;
      } else {
        m_plan.actions.push_back({o.key, {o.key}, why, o.size, orphan, std::nullopt});
      }
    };
    for (const auto& o : orphan_archives(m_inv.listing, named)) {
      collect(o, "an archive no manifest names (a save that never finished)", true);
    }
    for (const auto& l : m_inv.leftovers) {
      if (young(static_cast<double>(l.mtime))) {
        ++young_ones;
        continue;
      }
      GcAction a{l.key, {l.key}, "a piece of an interrupted write", l.size, false, l};
      if (!l.upload.empty()) {
        a.why += fmt::format(" (upload {})", util::printable(l.upload));
      }
      m_plan.actions.push_back(std::move(a));
    }
    for (const auto& o : m_inv.listing) {
      if (parse_key(o.key).kind == KeyKind::clock_probe) {
        collect(o, "a clock probe an interrupted gc left", false);
      }
    }
    for (const auto& o : m_inv.listing) {
      if (parse_key(o.key).kind == KeyKind::event &&
          m_now - static_cast<double>(o.mtime) > m_options.events_max_age) {
        m_plan.actions.push_back(
            {o.key, {o.key}, "an event record older than --events-max-age", o.size, false,
             std::nullopt});
      }
    }
    for (const auto& o : orphan_use_markers(m_inv.listing)) {
      collect(o, "a use marker of no save (its save was deleted while it was restored)", false);
    }
    if (young_ones > 0) {
      m_plan.kept.push_back(fmt::format("{} with no manifest, younger than {} (a save may be "
                                        "writing it)",
                                        count(young_ones, "object", "objects"), grace()));
    }
    std::set<std::string> read;
    for (const auto& m : named) {
      read.insert(m.object);
    }
    size_t unreadable = 0;
    for (const auto& o : m_inv.listing) {
      if (parse_key(o.key).kind == KeyKind::manifest && read.count(o.key) == 0) {
        ++unreadable;
      }
    }
    if (unreadable > 0) {
      m_plan.kept.push_back(
          fmt::format("{} that could not be read (a newer format, malformed or out of place), "
                      "with their archives",
                      count(unreadable, "manifest object", "manifest objects")));
    }
  }

  void explain_saves() {
    size_t restorable = 0, spared = 0, within_keep = 0, recent = 0;
    for (const auto& m : m_inv.saves) {
      if (m_gone.count(m.object) != 0) {
        continue;
      }
      auto standing = m_selection.judge(m).standing;
      if (m_spared.count(m.object) != 0) {
        ++spared;
      } else if (m_recent.count(m.object) != 0) {
        ++recent;
      } else if (standing == Standing::superseded) {
        ++within_keep;
      } else {
        ++restorable;
      }
    }
    std::vector<std::string> saves;
    if (restorable > 0) {
      saves.push_back(count(restorable, "restorable save", "restorable saves"));
    }
    if (within_keep > 0) {
      saves.push_back(fmt::format("{} within --keep {}",
                                  count(within_keep, "superseded save", "superseded saves"),
                                  m_options.keep));
    }
    if (spared > 0) {
      saves.push_back(fmt::format("{} younger than {}", count(spared, "save", "saves"), grace()));
    }
    if (recent > 0) {
      saves.push_back(fmt::format("{} superseded less than {} ago (a restore may be reading it)",
                                  count(recent, "save", "saves"), grace()));
    }
    m_plan.kept.insert(m_plan.kept.begin(), saves.begin(), saves.end());
  }

  const GcInventory& m_inv;
  const GcOptions& m_options;
  double m_now;
  Selection m_selection;
  std::map<std::string, Use> m_uses; // of every save, by manifest object
  GcPlan m_plan;
  std::map<std::string, uint64_t> m_listed;
  std::set<std::string> m_named;           // archives some save names
  std::map<std::string, int> m_live_names; // archive -> saves naming it that stay
  std::set<std::string> m_gone;            // manifest objects chosen
  std::set<std::string> m_spared;          // would go, but are in their grace period
  std::set<std::string> m_recent;          // superseded only within the grace period
};

} // namespace

GcPlan plan_gc(const GcInventory& inventory, const GcOptions& options, double now) {
  return Planner(inventory, options, now).run();
}

GcInventory take_inventory(Catalog& catalog) {
  GcInventory inv;
  inv.signing = catalog.signing();
  inv.listing = catalog.backend().list(layout_root());
  if (auto* cleaner = catalog.backend().leftover_cleaner()) {
    inv.leftovers = cleaner->leftovers(layout_root());
  }
  for (auto& m : catalog.list()) {
    auto why = catalog.why_refused(m);
    if (why.empty()) {
      inv.saves.push_back(std::move(m));
    } else {
      inv.refused.push_back({std::move(m), std::move(why)});
    }
  }
  inv.markers = catalog.invalidations();
  return inv;
}

double estimate_store_now(const GcInventory& inventory) {
  double t =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  for (const auto& o : inventory.listing) {
    t = std::max(t, static_cast<double>(o.mtime));
  }
  for (const auto& l : inventory.leftovers) {
    t = std::max(t, static_cast<double>(l.mtime));
  }
  return t;
}

bool carry_out(Catalog& catalog, const GcAction& action) {
  if (action.leftover) {
    auto* cleaner = catalog.backend().leftover_cleaner();
    if (cleaner == nullptr || !valid_key(action.leftover->key)) {
      util::log::warn("not removing {}: not a leftover this store can remove",
                      util::printable(action.subject));
      return false;
    }
    cleaner->remove_leftover(*action.leftover);
    return true;
  }
  if (action.orphan) {
    auto manifest = own_manifest(action.objects.front());
    if (!manifest.empty() && catalog.backend().stat(manifest)) {
      return false;
    }
  }
  for (const auto& key : action.objects) {
    if (!valid_key(key)) {
      util::log::warn("not deleting {}: not a well-formed object key", util::printable(key));
      return false;
    }
  }
  for (const auto& key : action.objects) {
    catalog.backend().remove(key);
  }
  return true;
}

std::string duration_text(double seconds) {
  const std::pair<const char*, double> units[] = {
      {"w", 604800}, {"d", 86400}, {"h", 3600}, {"m", 60}};
  for (const auto& [unit, size] : units) {
    if (seconds >= size) {
      return fmt::format("{:g}{}", seconds / size, unit);
    }
  }
  return fmt::format("{:g}s", seconds);
}

} // namespace ephemera::store
