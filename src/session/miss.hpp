#pragma once

#include "store/catalog.hpp"

#include <string>
#include <vector>

// Why a restore missed (README "Keys, scope and the store"): what the store holds of the
// stanza and why the lookup passed over each, from the lookup's own result, so that the
// words are the selection's and a miss after `invalidate` says so.
namespace ephemera::session {

struct MissExplanation {
  // One line: the scope searched and, per reason, how many saves were passed over, with
  // the first of each reason's words ("2 invalidated (invalidated at ...: poisoned)").
  std::string summary;
  // One line per save passed over, for -v: its short id, key, created time and job (when
  // its manifest was read) and why.
  std::vector<std::string> details;
};

// scope: the scope searched, for people ("acme/widget/-/deps/e1").
MissExplanation explain_miss(const store::LookupResult& result, const std::string& scope);

// "repository/target/name/e<epoch>", target "-" when there is none: as ls totals name one.
std::string scope_shown(const store::Scope& scope);

} // namespace ephemera::session
