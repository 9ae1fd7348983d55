#include "store/selection.hpp"

#include "store/keys.hpp"
#include "util/log.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <set>

namespace ephemera::store {

namespace {

// A narrowed marker says what it narrowed to, so a miss shows why this save and not its
// neighbours of other keys or branches was passed over.
std::string invalidated_why(const Invalidation& inv) {
  return fmt::format("invalidated at {}{}{}{}", util::printable(inv.created),
                     inv.key.empty() ? "" : " for key '" + util::printable(inv.key) + "'",
                     inv.branch.empty() ? "" : " for branch '" + util::printable(inv.branch) + "'",
                     inv.reason.empty() ? "" : ": " + util::printable(inv.reason));
}

} // namespace

std::vector<ObjectInfo> orphan_archives(const std::vector<ObjectInfo>& listing,
                                        const std::vector<Manifest>& named) {
  std::set<std::string> keys;
  for (const auto& o : listing) {
    keys.insert(o.key);
  }
  for (const auto& m : named) {
    keys.insert(own_manifest(m.archive)); // as if its own manifest were there
  }
  std::vector<ObjectInfo> out;
  for (const auto& o : listing) {
    auto manifest = own_manifest(o.key);
    if (!manifest.empty() && keys.count(manifest) == 0) {
      out.push_back(o);
    }
  }
  return out;
}

Selection::Selection(const std::vector<Manifest>& saves, const std::vector<Invalidation>& markers)
    : m_markers(markers) {
  for (const auto& m : saves) {
    if (m.trusted) {
      auto [it, fresh] = m_trusted_epoch.emplace(Stanza{m.repository, m.target, m.name}, m.epoch);
      it->second = fresh ? m.epoch : std::max(it->second, m.epoch);
    } else {
      auto [it, fresh] =
          m_untrusted_epoch.emplace(std::tuple{m.repository, m.target, m.name, m.origin}, m.epoch);
      it->second = fresh ? m.epoch : std::max(it->second, m.epoch);
    }
    if (hidden_by(m) == nullptr) {
      m_groups[Group{m.repository, m.target, m.name, m.epoch, m.key, m.branch, m.trusted, m.origin}]
          .push_back(&m);
    }
  }
  for (auto& [_, group] : m_groups) {
    std::sort(group.begin(), group.end(),
              [](const Manifest* a, const Manifest* b) { return a->later_than(*b); });
    for (size_t i = 0; i < group.size(); ++i) {
      m_rank.emplace(group[i]->object, std::pair{&group, i});
    }
  }
}

const Invalidation* Selection::hidden_by(const Manifest& m) const {
  for (const auto& inv : m_markers) {
    if (inv.covers(m)) {
      return &inv;
    }
  }
  return nullptr;
}

const Manifest* Selection::newer(const Manifest& m, size_t n) const {
  auto it = m_rank.find(m.object);
  if (it == m_rank.end() || n == 0 || n > it->second.second) {
    return nullptr;
  }
  return (*it->second.first)[it->second.second - n];
}

Verdict Selection::judge(const Manifest& m) const {
  Verdict v;
  if (const auto* inv = hidden_by(m)) {
    v.standing = Standing::invalidated;
    v.marker = inv;
    v.why = invalidated_why(*inv);
    return v;
  }
  int64_t current = m.epoch;
  if (auto it = m_trusted_epoch.find(Stanza{m.repository, m.target, m.name});
      it != m_trusted_epoch.end()) {
    current = std::max(current, it->second);
  }
  if (!m.trusted) {
    auto it = m_untrusted_epoch.find(std::tuple{m.repository, m.target, m.name, m.origin});
    if (it != m_untrusted_epoch.end()) {
      current = std::max(current, it->second);
    }
  }
  if (current > m.epoch) {
    v.standing = Standing::old_epoch;
    v.current_epoch = current;
    v.why = fmt::format("old epoch: e{} is current for this stanza", current);
    return v;
  }
  if (auto it = m_rank.find(m.object); it != m_rank.end() && it->second.second > 0) {
    v.standing = Standing::superseded;
    v.by = it->second.first->front();
    v.newer = it->second.second;
    v.why = fmt::format("superseded by the save of {} (job '{}')", util::printable(v.by->created),
                        util::printable(v.by->job_id));
  }
  return v;
}

bool same_rules(const Manifest& m, const LookupRequest& r) {
  if (r.rules_digest.empty()) {
    return true;
  }
  if (!m.rules_digest.empty()) {
    return m.rules_digest == r.rules_digest;
  }
  std::set<std::string> saved(m.rules.begin(), m.rules.end());
  std::set<std::string> wanted(r.rules.begin(), r.rules.end());
  return saved == wanted;
}

std::optional<PassedOver> ineligible(const Manifest& m, const LookupRequest& r) {
  if (!m.trusted && r.trusted) {
    return PassedOver::untrusted;
  }
  if (!m.trusted && (m.origin.empty() || m.origin != r.origin)) {
    return PassedOver::other_origin;
  }
  if (r.own_branch_only && m.branch != r.branch) {
    return PassedOver::other_branch;
  }
  if (!same_rules(m, r)) {
    return PassedOver::other_rules;
  }
  return std::nullopt;
}

bool step_matches(const policy::LookupStep& step, const std::string& key) {
  return step.prefix ? key.rfind(step.value, 0) == 0 : key == step.value;
}

bool tried_before(const Manifest& a, const Manifest& b, const std::string& branch) {
  bool a_own = a.branch == branch;
  bool b_own = b.branch == branch;
  return a_own != b_own ? a_own : a.later_than(b);
}

namespace {

std::string why_ineligible(PassedOver reason, const Manifest& m) {
  switch (reason) {
  case PassedOver::untrusted:
    return fmt::format("untrusted (origin '{}'), and this job is trusted",
                       util::printable(m.origin));
  case PassedOver::other_origin:
    return fmt::format("untrusted, of origin '{}', not this job's", util::printable(m.origin));
  case PassedOver::other_branch:
    return fmt::format("saved from branch '{}', and the stanza shares only its own branch",
                       util::printable(m.branch));
  case PassedOver::other_rules:
    return "saved with other rules: bump the stanza's epoch, or the next save replaces it";
  default:
    return "";
  }
}

PassedOverSave passed(PassedOver reason, const Manifest& m, std::string why) {
  Scope scope{m.repository, m.target, m.name, m.epoch};
  return PassedOverSave{reason, m.object, std::move(scope), m.key, m, std::move(why)};
}

} // namespace

LookupResult choose(const LookupRequest& r, const std::vector<Manifest>& saves,
                    const std::vector<Invalidation>& markers) {
  const Scope scope{r.repository, r.target, r.name, r.epoch};
  Selection selection(saves, markers);
  LookupResult out;
  std::vector<const Manifest*> usable;
  for (const auto& m : saves) {
    // The manifest's own (signed) scope, not only where it was found.
    if (Scope{m.repository, m.target, m.name, m.epoch} != scope) {
      continue;
    }
    if (const auto* inv = selection.hidden_by(m)) {
      out.passed_over.push_back(passed(PassedOver::invalidated, m, invalidated_why(*inv)));
    } else if (auto reason = ineligible(m, r)) {
      out.passed_over.push_back(passed(*reason, m, why_ineligible(*reason, m)));
    } else {
      usable.push_back(&m);
    }
  }
  std::stable_sort(usable.begin(), usable.end(), [&](const Manifest* a, const Manifest* b) {
    return tried_before(*a, *b, r.branch);
  });
  std::set<std::string> taken;
  for (const auto& step : r.steps) {
    for (const Manifest* m : usable) {
      if (out.candidates.size() < r.max_candidates && step_matches(step, m->key) &&
          taken.insert(m->object).second) {
        out.candidates.push_back(Candidate{*m, step, m->branch == r.branch});
      }
    }
  }
  for (const Manifest* m : usable) {
    if (taken.count(m->object) != 0) {
      continue;
    }
    bool wanted = std::any_of(r.steps.begin(), r.steps.end(),
                              [&](const auto& step) { return step_matches(step, m->key); });
    out.passed_over.push_back(
        wanted ? passed(PassedOver::over_limit, *m,
                        fmt::format("beyond the {} candidates a restore tries", r.max_candidates))
               : passed(PassedOver::other_key, *m,
                        fmt::format("key '{}' is not one looked for", util::printable(m->key))));
  }
  std::stable_sort(out.passed_over.begin(), out.passed_over.end(),
                   [](const auto& a, const auto& b) { return a.object < b.object; });
  return out;
}

std::vector<PassedOverSave> survey(const LookupRequest& r, const std::vector<ObjectInfo>& listing) {
  std::vector<PassedOverSave> out;
  for (const auto& o : listing) {
    auto placed = parse_key(o.key);
    if (placed.kind != KeyKind::manifest || !placed.scope ||
        placed.scope->repository != r.repository || placed.scope->name != r.name) {
      continue;
    }
    const Scope& s = *placed.scope;
    PassedOverSave p{PassedOver::other_target, o.key, s, placed.key, std::nullopt, ""};
    if (s.target != r.target) {
      p.why = fmt::format("saved under target '{}'", util::printable(s.target));
    } else if (s.epoch < r.epoch) {
      p.reason = PassedOver::older_epoch;
      p.why = fmt::format("of epoch {}, older than the e{} looked for", s.epoch, r.epoch);
    } else if (s.epoch > r.epoch) {
      p.reason = PassedOver::newer_epoch;
      p.why = fmt::format("of epoch {}, newer than the e{} looked for", s.epoch, r.epoch);
    } else {
      continue; // the scope searched
    }
    out.push_back(std::move(p));
  }
  return out;
}

} // namespace ephemera::store
