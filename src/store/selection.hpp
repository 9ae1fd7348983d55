#pragma once

#include "store/catalog.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

// The selection rules, once: which saves a lookup can still choose, and so which ones ls and
// show call restorable and which ones gc may delete. Pure functions of what was read from the
// store; nothing here does I/O, so they are tested table-driven.
//
// Every rule below takes only valid saves: read by Manifest::from_json, which refuses a
// manifest that does not lie where its fields say, and signed when signing is on
// (Catalog::valid_saves). Any other manifest (a forgery, a copy) never takes part in an epoch,
// a supersession or a total, so it cannot make another save look stale.
namespace ephemera::store {

// Archive objects of the listing that belong to no manifest: their own manifest object is
// not in the listing and no manifest in `named` names them. A manifest object that exists
// protects its archive whether or not it could be read (a newer format, a transient error).
std::vector<ObjectInfo> orphan_archives(const std::vector<ObjectInfo>& listing,
                                        const std::vector<Manifest>& named);

// Why m is passed over by a lookup for r before its key is looked at, or nullopt when it is
// eligible: an untrusted save never reaches a trusted job, and reaches an untrusted one only
// of its own origin (a fork chooses its branch name, but not its origin); with
// own_branch_only, only saves of the job's branch.
std::optional<PassedOver> ineligible(const Manifest& m, const LookupRequest& r);
// Whether a save's key is one the step looks for.
bool step_matches(const policy::LookupStep& step, const std::string& key);
// The order a restore tries the candidates of one step: the job's own branch first, then
// newest first.
bool tried_before(const Manifest& a, const Manifest& b, const std::string& branch);

// A lookup's choice, from what was read: the valid saves of r's scope (in key order) and the
// markers that count. In the order of r's steps, within each by tried_before, each save once,
// at most r.max_candidates. Every other save of the scope is passed over, for the first of:
// invalidated (a marker hides it), ineligible, other_key, over_limit. `scope` is left empty.
LookupResult choose(const LookupRequest& r, const std::vector<Manifest>& saves,
                    const std::vector<Invalidation>& markers);
// The saves of r's stanza (repository and name) in the listing that lie outside r's scope,
// known by their manifest objects' names only: other_target, older_epoch or newer_epoch.
std::vector<PassedOverSave> survey(const LookupRequest& r, const std::vector<ObjectInfo>& listing);

enum class Standing {
  live,        // a lookup of its scope and key can choose it
  invalidated, // an operator's marker hides it
  old_epoch,   // its stanza has moved to a newer epoch
  superseded,  // a later save of the same scope, key, branch, trust and origin wins every lookup
};

struct Verdict {
  Standing standing = Standing::live;
  const Invalidation* marker = nullptr; // invalidated: the marker
  const Manifest* by = nullptr;         // superseded: the newest save that wins instead
  int64_t current_epoch = 0;            // old_epoch: the stanza's current one
  size_t newer = 0;                     // later saves of its group that are not hidden
  std::string why;                      // for people: "" when live
};

// The saves of a store (each valid where it lies) and the markers that count, indexed once,
// so that judging every save costs O(n log n), not O(n^2). `saves` must outlive it.
class Selection {
public:
  Selection(const std::vector<Manifest>& saves, const std::vector<Invalidation>& markers);

  // m's standing; m must be one of the saves given (compared by object). In order: a marker
  // that hides it; an older epoch than its stanza's current one (over trusted saves, and for
  // an untrusted save also its own origin's untrusted ones: a fork chooses its own epoch, so
  // it can never retire a trusted save); a later save not hidden of the same scope, key,
  // branch, trust and origin (a lookup from any branch then chooses that one).
  Verdict judge(const Manifest& m) const;

  // The marker that hides m, or nullptr.
  const Invalidation* hidden_by(const Manifest& m) const;
  // The n-th save of m's group newer than m (1: the one just newer), or nullptr. From when
  // that one arrived, m has had n newer saves: what a retention of the newest n measures by.
  const Manifest* newer(const Manifest& m, size_t n) const;

private:
  using Stanza = std::tuple<std::string, std::string, std::string>;
  using Group = std::tuple<std::string, std::string, std::string, int64_t, std::string, std::string,
                           bool, std::string>; // ..., branch, trusted, origin

  std::vector<Invalidation> m_markers;
  std::map<Stanza, int64_t> m_trusted_epoch;
  std::map<std::tuple<std::string, std::string, std::string, std::string>, int64_t>
      m_untrusted_epoch;                                  // per stanza and origin
  std::map<Group, std::vector<const Manifest*>> m_groups; // not hidden, newest first
  // Object -> (its group, newest first; how many of it are newer).
  std::map<std::string, std::pair<const std::vector<const Manifest*>*, size_t>> m_rank;
};

} // namespace ephemera::store
