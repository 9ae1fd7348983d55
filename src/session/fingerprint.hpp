#pragma once

#include "archive/archive.hpp"
#include "rules/rules.hpp"
#include "rules/walk.hpp"

#include <optional>
#include <string>
#include <utility>
#include <vector>

// "Nothing changed" (README "Policy"): pre records a fingerprint of each stanza's file set
// after its restore, post compares it with the set it would save.
namespace ephemera::session {

// A digest of the paths, types, sizes, mtimes, modes and link targets of a walk's entries;
// for a content-addressed stanza (PersistSpec::content_addressed) without mtimes and
// directories.
std::string fingerprint(const rules::WalkResult& walked, bool content_addressed = false);

// Whether nothing is where the rules' walk starts: then all the stanza holds after a
// restore is what the restore wrote, and WrittenSet can stand for a walk.
bool starts_absent(const rules::RuleSet& rules, const rules::Anchors& anchors);

// The entries a restore wrote, as a walk of them would find them once it is committed.
class WrittenSet {
public:
  // rules and anchors must outlive the set.
  WrittenSet(const rules::RuleSet& rules, const rules::Anchors& anchors)
      : m_rules(rules), m_anchors(anchors) {}

  archive::WrittenFn fn() {
    return [this](const archive::Written& w) { add(w); };
  }

  // Sorted as a walk sorts, hard links carrying the size, mode and time of their file;
  // nullopt if a link names no file written (the unpack refuses those: walk then).
  std::optional<rules::WalkResult> finish();

private:
  void add(const archive::Written& w);

  const rules::RuleSet& m_rules;
  const rules::Anchors& m_anchors;
  rules::WalkResult m_out;
  std::vector<std::pair<size_t, std::string>> m_links; // entry, the archive name it links to
};

} // namespace ephemera::session
