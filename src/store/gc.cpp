#include "store/gc.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

namespace ephemera::store {

namespace {

// When the store received it (its clock, as `now` is); the writer's clock if unknown.
double created_at(const Manifest& m) {
  return m.stored > 0 ? static_cast<double>(m.stored) : parse_rfc3339(m.created).value_or(0);
}

std::string days(double seconds) {
  return seconds >= 86400 ? fmt::format("{:.1f} days", seconds / 86400)
                          : fmt::format("{:.1f} hours", seconds / 3600);
}

} // namespace

std::vector<GcAction> plan_gc(const std::vector<Manifest>& all,
                              const std::vector<Invalidation>& invalidations,
                              const std::vector<ObjectInfo>& orphans, const GcOptions& options,
                              double now) {
  std::vector<GcAction> out;
  std::set<std::string> gone; // manifest objects already chosen
  auto drop = [&](const Manifest& m, std::string why) {
    if (gone.insert(m.object).second) {
      out.push_back({m, std::nullopt, std::move(why), m.compressed_size});
    }
  };
  std::vector<const Manifest*> candidates;
  for (const auto& m : all) {
    if (now - created_at(m) >= options.grace) {
      candidates.push_back(&m);
    }
  }
  for (const auto* m : candidates) {
    for (const auto& inv : invalidations) {
      if (inv.covers(*m)) {
        drop(*m, fmt::format("invalidated at {}", inv.created));
        break;
      }
    }
  }
  std::map<std::tuple<std::string, std::string, std::string>, int64_t> newest_epoch;
  for (const auto& m : all) {
    auto& e = newest_epoch[{m.repository, m.target, m.name}];
    e = std::max(e, m.epoch);
  }
  for (const auto* m : candidates) {
    int64_t newest = newest_epoch[{m->repository, m->target, m->name}];
    if (m->epoch < newest) {
      drop(*m, fmt::format("epoch {} is below the stanza's newest, {}", m->epoch, newest));
    }
  }
  if (options.keep) {
    std::map<std::tuple<std::string, std::string, std::string, int64_t, std::string, std::string>,
             std::vector<const Manifest*>>
        groups;
    for (const auto& m : all) {
      groups[{m.repository, m.target, m.name, m.epoch, m.key, m.branch}].push_back(&m);
    }
    for (auto& [_, saves] : groups) {
      std::sort(saves.begin(), saves.end(),
                [](const Manifest* a, const Manifest* b) { return a->later_than(*b); });
      for (size_t i = static_cast<size_t>(std::max(0, *options.keep)); i < saves.size(); ++i) {
        if (now - created_at(*saves[i]) >= options.grace) {
          drop(*saves[i], fmt::format("beyond the newest {} of key '{}' on branch '{}'",
                                      *options.keep, saves[i]->key, saves[i]->branch));
        }
      }
    }
  }
  if (options.max_age) {
    for (const auto* m : candidates) {
      double age = now - created_at(*m);
      if (age > *options.max_age) {
        drop(*m, fmt::format("{} old, over --max-age", days(age)));
      }
    }
  }
  if (options.max_bytes) {
    uint64_t total = 0;
    std::vector<const Manifest*> kept;
    for (const auto& m : all) {
      if (gone.count(m.object) == 0) {
        total += m.compressed_size;
        kept.push_back(&m);
      }
    }
    std::sort(kept.begin(), kept.end(),
              [](const Manifest* a, const Manifest* b) { return b->later_than(*a); });
    for (const auto* m : kept) {
      if (total <= *options.max_bytes) {
        break;
      }
      if (now - created_at(*m) < options.grace) {
        continue;
      }
      drop(*m, fmt::format("oldest while the store is over --max-bytes {}", *options.max_bytes));
      total -= m->compressed_size;
    }
  }
  for (const auto& o : orphans) {
    if (now - static_cast<double>(o.mtime) >= options.grace) {
      out.push_back({std::nullopt, o, "an archive no manifest names (a save that never finished)", o.size});
    }
  }
  return out;
}

} // namespace ephemera::store
