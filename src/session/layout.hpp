#pragma once

#include "archive/archive.hpp"
#include "rules/rules.hpp"
#include "rules/walk.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// How a stanza's files become archive entries and back (README "Rules"): each entry lies
// below the top-level folder of its rule's anchor, "root/", "home/" or "work/", relative to
// it, and is re-resolved against the restoring job's anchors. This is the only place that
// names entries, so save, restore, the fingerprint and the bench agree.
namespace ephemera::session {

// "work/a/b" for (work, "a/b").
std::string entry_name(rules::Anchor anchor, std::string_view rel);

// An entry's anchor and anchor-relative path ("work/a/b/" -> work, "a/b"), or nullopt when
// it names no anchor or is not a plain relative path below one (no empty, '.' or '..'
// component, not absolute).
std::optional<std::pair<rules::Anchor, std::string>> split_entry_name(std::string_view name);

// What pack() archives for a walk: every entry but the anchors themselves, read from the
// host, '%' taken from the rule that selected it.
std::vector<archive::PackItem> pack_items(const rules::WalkResult& walked,
                                          const rules::RuleSet& rules,
                                          const rules::Anchors& anchors);

// The confinement of a restore: an entry goes where its name says below the restoring
// job's anchor only when the restoring stanza's rules select it; every other entry refuses
// the archive. Directories too: an entry for a directory the rules merely pass through
// (/tmp for '/tmp/**/*.txt') would set the mode and times of a directory the stanza does
// not own. The rules and anchors must outlive the resolver.
archive::Resolve confinement(const rules::RuleSet& rules, const rules::Anchors& anchors);

// Whether an interrupted restore's staging name below host directory base, at rel, lies
// where these rules reach (for archive::sweep_staged).
bool reaches(const rules::RuleSet& rules, const rules::Anchors& anchors, const std::string& base,
             const std::string& rel);

} // namespace ephemera::session
