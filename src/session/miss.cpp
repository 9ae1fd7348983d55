#include "session/miss.hpp"

#include "store/short_id.hpp"
#include "util/log.hpp"

#include <fmt/format.h>

#include <map>

namespace ephemera::session {

namespace {

using store::PassedOver;

// Reasons in the order a reader wants them: what hid a save that would have been chosen
// first, what lies elsewhere last.
const char* words(PassedOver reason) {
  switch (reason) {
  case PassedOver::invalidated:
    return "invalidated";
  case PassedOver::refused:
    return "refused (signature)";
  case PassedOver::untrusted:
    return "untrusted";
  case PassedOver::other_origin:
    return "of another origin";
  case PassedOver::other_branch:
    return "of another branch";
  case PassedOver::other_rules:
    return "saved with other rules";
  case PassedOver::other_key:
    return "of another key";
  case PassedOver::over_limit:
    return "beyond the candidates tried";
  case PassedOver::older_epoch:
    return "of an older epoch";
  case PassedOver::newer_epoch:
    return "of a newer epoch";
  case PassedOver::other_target:
    return "under another target";
  }
  return "passed over";
}

bool elsewhere(PassedOver reason) {
  return reason == PassedOver::older_epoch || reason == PassedOver::newer_epoch ||
         reason == PassedOver::other_target;
}

} // namespace

std::string scope_shown(const store::Scope& s) {
  return fmt::format("{}/{}/{}/e{}", util::printable(s.repository),
                     s.target.empty() ? "-" : util::printable(s.target), util::printable(s.name),
                     s.epoch);
}

MissExplanation explain_miss(const store::LookupResult& result, const std::string& scope) {
  MissExplanation out;
  std::map<PassedOver, std::pair<size_t, std::string>> in_scope, outside;
  for (const auto& p : result.passed_over) {
    auto& slot = (elsewhere(p.reason) ? outside : in_scope)[p.reason];
    if (slot.first++ == 0) {
      slot.second = p.why; // escaped by the selection
    }
    std::string line = fmt::format("{} {} key '{}'", store::short_id(p.object),
                                   scope_shown(p.scope), util::printable(p.key));
    if (p.manifest) {
      line += fmt::format(" created {} by job '{}'", util::printable(p.manifest->created),
                          util::printable(p.manifest->job_id));
    }
    out.details.push_back(line + ": " + (p.why.empty() ? words(p.reason) : p.why));
  }
  auto list = [](const std::map<PassedOver, std::pair<size_t, std::string>>& counts,
                 bool with_why) {
    std::string text;
    for (const auto& [reason, c] : counts) {
      text += text.empty() ? "" : ", ";
      text += fmt::format("{} {}", c.first, words(reason));
      if (with_why && !c.second.empty() && reason != PassedOver::other_key &&
          reason != PassedOver::other_rules) {
        text += fmt::format(" ({})", c.second);
      }
    }
    return text;
  };
  if (in_scope.empty() && outside.empty()) {
    out.summary = fmt::format("searched {}: the store holds no save of this stanza", scope);
  } else if (in_scope.empty()) {
    out.summary =
        fmt::format("searched {}: no save there; elsewhere: {}", scope, list(outside, false));
  } else {
    out.summary = fmt::format("searched {}: passed over {}{}", scope, list(in_scope, true),
                              outside.empty() ? "" : "; elsewhere: " + list(outside, false));
  }
  return out;
}

} // namespace ephemera::session
