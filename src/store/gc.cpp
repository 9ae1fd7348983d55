#include "store/gc.hpp"

#include "store/keys.hpp"
#include "store/selection.hpp"
#include "store/usage.hpp"
#include "util/fault.hpp"
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

GcAction action(std::string subject, std::vector<std::string> objects, std::string why,
                uint64_t bytes, GcObject kind) {
  GcAction a;
  a.subject = std::move(subject);
  a.objects = std::move(objects);
  a.why = std::move(why);
  a.bytes = bytes;
  a.kind = kind;
  return a;
}

// The folder below cas1/ of one stanza's content-addressed objects, all trust levels.
std::string cas_stanza_prefix(std::string_view repository, std::string_view target,
                              std::string_view name) {
  return cas_root() + sanitise(repository) + "/" + sanitise(target) + "/" + sanitise(name) + "/";
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
    for (const auto& obj : inv.cas_listing) {
      m_cas_listed.emplace(obj.key, obj.size);
    }
    for (const auto& m : inv.saves) {
      m_named.insert(m.archive);
      m_live_names[m.archive] += 1;
    }
    std::set<std::string> read;
    for (const auto& m : inv.saves) {
      read.insert(m.object);
    }
    for (const auto& r : inv.refused) {
      read.insert(r.manifest.object);
    }
    for (const auto& o : inv.listing) {
      auto p = parse_key(o.key);
      if (p.kind == KeyKind::manifest && read.count(o.key) == 0 && p.scope) {
        m_unread_stanzas.emplace(
            cas_stanza_prefix(p.scope->repository, p.scope->target, p.scope->name), o.key);
      }
    }
  }

  GcPlan run() {
    if (!m_options.only.empty()) {
      named_saves();
      content_objects();
      return std::move(m_plan);
    }
    saves_by_standing();
    if (m_options.max_age) {
      saves_by_age();
    }
    if (m_options.max_bytes) {
      saves_by_budget();
    }
    refused_manifests();
    unnamed_objects();
    content_objects();
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
    GcAction a = action(m.object, {m.object}, std::move(why), size_of(m.object), GcObject::save);
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

  // gc --save: exactly the saves named, refused ones too, whatever their age.
  void named_saves() {
    for (const auto& m : m_inv.saves) {
      if (m_options.only.count(m.object) != 0) {
        drop(m, "named by --save");
      }
    }
    for (const auto& r : m_inv.refused) {
      const auto& m = r.manifest;
      if (m_options.only.count(m.object) == 0 || !listed(m.object)) {
        continue;
      }
      m_refused_gone.insert(m.object);
      GcAction a =
          action(m.object, {m.object}, "named by --save", size_of(m.object), GcObject::save);
      if (m.archive == own_archive(m.object) && listed(m.archive) &&
          m_named.count(m.archive) == 0) {
        a.objects.push_back(m.archive);
        a.bytes += size_of(m.archive);
      }
      m_plan.actions.push_back(std::move(a));
    }
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
  // claims is never believed. A content-addressed save holds its index and the packs the
  // index references; what several saves share counts once, and leaves the total only
  // with the last of them.
  void saves_by_budget() {
    uint64_t total = 0;
    std::vector<const Manifest*> kept;
    std::set<std::string> newest;
    std::map<std::string, size_t> users; // content object -> saves kept that hold it
    for (const auto& m : m_inv.saves) {
      if (m_gone.count(m.object) == 0) {
        total += bytes_of(m);
        for (const auto& key : content_of(m)) {
          if (users[key]++ == 0) {
            total += cas_size_of(key);
          }
        }
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
        for (const auto& key : content_of(*m)) {
          if (--users[key] == 0) {
            total -= cas_size_of(key);
          }
        }
      }
    }
  }

  uint64_t cas_size_of(const std::string& key) const {
    auto it = m_cas_listed.find(key);
    return it == m_cas_listed.end() ? 0 : it->second;
  }

  // The content-addressed objects a save holds, as far as they are listed: its index, and
  // the packs the index references when it could be read.
  std::vector<std::string> content_of(const Manifest& m) const {
    std::vector<std::string> out;
    if (m.content != k_content_cas || m_cas_listed.count(m.archive) == 0) {
      return out;
    }
    out.push_back(m.archive);
    if (auto it = m_inv.indexes.find(m.archive);
        it != m_inv.indexes.end() && it->second.why.empty()) {
      for (const auto& pack : it->second.packs) {
        if (m_cas_listed.count(pack) != 0 && std::find(out.begin(), out.end(), pack) == out.end()) {
          out.push_back(pack);
        }
      }
    }
    return out;
  }

  // Content-addressed objects, once the saves and manifests that go are chosen: an index goes
  // when no manifest that stays names it, a pack when no index that stays references it, each
  // past the grace period. An index stays when a manifest that stays names it, when it is
  // younger than the grace period (a save writes its index before its manifest), and when a
  // manifest object of its stanza could not be read. A pack is proven dead only when every
  // index of its scope that stays was read.
  void content_objects() {
    std::set<std::string> named; // indexes named by a manifest that stays
    std::set<std::string> freed; // indexes of saves this run deletes
    for (const auto& m : m_inv.saves) {
      if (m.content == k_content_cas) {
        (m_gone.count(m.object) == 0 ? named : freed).insert(m.archive);
      }
    }
    for (const auto& r : m_inv.refused) {
      if (r.manifest.content == k_content_cas) {
        (m_refused_gone.count(r.manifest.object) == 0 ? named : freed).insert(r.manifest.archive);
      }
    }
    // gc --save: only the indexes of the saves named go, and only packs they reference; the
    // grace period, which protects what a save in progress has not yet named, does not hold
    // them (a save that builds on them is caught as in a full run, by the store time of an
    // index written again, PackRecheck and the save's own check of its packs).
    bool only = !m_options.only.empty();
    std::set<std::string> candidates; // with only: packs the freed indexes reference
    if (only) {
      for (const auto& key : freed) {
        if (auto c = m_inv.indexes.find(key);
            c != m_inv.indexes.end() && c->second.why.empty() && named.count(key) == 0) {
          candidates.insert(c->second.packs.begin(), c->second.packs.end());
        }
      }
    }
    struct Objects {
      std::vector<const ObjectInfo*> indexes, packs;
    };
    std::map<std::string, Objects> scopes;
    size_t stray = 0;
    for (const auto& o : m_inv.cas_listing) {
      auto k = parse_cas_key(o.key);
      if (!k) {
        ++stray;
        continue;
      }
      auto& s = scopes[k->scope_id];
      (k->index ? s.indexes : s.packs).push_back(&o);
    }
    std::vector<GcAction> packs;
    size_t young_ones = 0;
    for (const auto& [id, s] : scopes) {
      std::string prefix = cas_prefix(id);
      auto unread = std::find_if(m_unread_stanzas.begin(), m_unread_stanzas.end(),
                                 [&](const auto& u) { return prefix.rfind(u.first, 0) == 0; });
      bool stanza_unread = unread != m_unread_stanzas.end();
      std::set<std::string> referenced;
      std::string unproven; // why this scope's packs are not proven dead
      if (stanza_unread) {
        unproven = fmt::format("a manifest object of its stanza, {}, could not be read (it may "
                               "name any index of the stanza)",
                               util::printable(unread->second));
      }
      for (const auto* o : s.indexes) {
        bool young_one = young(static_cast<double>(o->mtime));
        bool chosen = only ? freed.count(o->key) != 0 : !young_one;
        if (named.count(o->key) == 0 && chosen && !stanza_unread) {
          GcAction a = action(o->key, {o->key},
                              freed.count(o->key) != 0
                                  ? "the index of a save deleted above"
                                  : "an index no manifest names (a save that never finished, or "
                                    "one deleted before)",
                              o->size, GcObject::index);
          a.mtime = o->mtime;
          m_plan.actions.push_back(std::move(a));
          continue;
        }
        if (young_one && named.count(o->key) == 0 && !only) {
          ++young_ones;
        }
        auto c = m_inv.indexes.find(o->key);
        if (!unproven.empty()) {
          continue; // the first reason is enough
        }
        if (c == m_inv.indexes.end()) {
          unproven = fmt::format("its index {} was not read", util::printable(o->key));
        } else if (!c->second.why.empty()) {
          unproven = fmt::format("its index {} could not be read: {}", util::printable(o->key),
                                 c->second.why);
        } else {
          referenced.insert(c->second.packs.begin(), c->second.packs.end());
        }
      }
      if (!unproven.empty()) {
        if (!s.packs.empty()) {
          m_plan.kept.push_back(fmt::format("{} of {}: {}", count(s.packs.size(), "pack", "packs"),
                                            util::printable(prefix), unproven));
        }
        continue;
      }
      for (const auto* o : s.packs) {
        if (referenced.count(o->key) != 0 || (only && candidates.count(o->key) == 0)) {
          continue;
        }
        if (!only && young(static_cast<double>(o->mtime))) {
          ++young_ones;
          continue;
        }
        GcAction a = action(o->key, {o->key}, "a pack no index that stays references", o->size,
                            GcObject::pack);
        a.mtime = o->mtime;
        packs.push_back(std::move(a));
      }
    }
    // Every index before any pack: a pack is never gone while an index that names it is there.
    for (auto& a : packs) {
      m_plan.actions.push_back(std::move(a));
    }
    if (young_ones > 0) {
      m_plan.kept.push_back(fmt::format(
          "{} (indexes no manifest names, packs no index "
          "references) younger than {} (a save may be writing "
          "them)",
          count(young_ones, "content-addressed object", "content-addressed objects"), grace()));
    }
    if (stray > 0) {
      m_plan.kept.push_back(fmt::format("{} below {} that are not a pack or an index where a save "
                                        "puts one",
                                        count(stray, "object", "objects"), cas_root()));
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
      m_refused_gone.insert(m.object);
      GcAction a = action(m.object, {m.object}, std::move(why), size_of(m.object), GcObject::save);
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
        GcAction a = action(o.key, {o.key}, why, o.size, GcObject::other);
        a.orphan = orphan;
        m_plan.actions.push_back(std::move(a));
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
      GcAction a =
          action(l.key, {l.key}, "a piece of an interrupted write", l.size, GcObject::other);
      a.leftover = l;
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
        m_plan.actions.push_back(action(o.key, {o.key},
                                        "an event record older than --events-max-age", o.size,
                                        GcObject::other));
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
  std::map<std::string, uint64_t> m_cas_listed;
  // cas1/<stanza>/ of a stanza with a manifest object that was not read -> that object
  std::map<std::string, std::string> m_unread_stanzas;
  std::set<std::string> m_refused_gone;    // refused manifests chosen
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
  inv.cas_listing = catalog.backend().list(cas_root());
  if (auto* cleaner = catalog.backend().leftover_cleaner()) {
    inv.leftovers = cleaner->leftovers(layout_root());
    for (auto& l : cleaner->leftovers(cas_root())) {
      inv.leftovers.push_back(std::move(l));
    }
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
  for (const auto& o : inventory.cas_listing) {
    t = std::max(t, static_cast<double>(o.mtime));
  }
  for (const auto& l : inventory.leftovers) {
    t = std::max(t, static_cast<double>(l.mtime));
  }
  return t;
}

bool carry_out(Catalog& catalog, const GcAction& action, const PackRecheck& recheck) {
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
  if (action.kind == GcObject::index || action.kind == GcObject::pack) {
    auto k = parse_cas_key(action.subject);
    if (!k || k->index != (action.kind == GcObject::index) || action.objects.size() != 1 ||
        action.objects.front() != action.subject) {
      util::log::warn("not deleting {}: not a content-addressed object",
                      util::printable(action.subject));
      return false;
    }
    auto now = catalog.backend().stat(action.subject);
    if (!now) {
      return true; // gone already
    }
    if (now->mtime != action.mtime) {
      return false; // uploaded again since the listing: a save is using it
    }
    if (action.kind == GcObject::pack && recheck && !recheck(action.subject)) {
      return false;
    }
  }
  for (const auto& key : action.objects) {
    catalog.backend().remove(key);
    util::fault_point("gc-removed");
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
