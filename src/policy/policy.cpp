#include "policy/policy.hpp"

#include "jobfile/stanza_check.hpp"
#include "util/sha256.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <csignal>

namespace ephemera::policy {

std::optional<Event> parse_event(std::string_view text) {
  if (text == "push") {
    return Event::push;
  }
  if (text == "pull_request" || text == "pull-request" || text == "pr") {
    return Event::pull_request;
  }
  return std::nullopt;
}

const char* to_string(Event event) {
  switch (event) {
  case Event::push:
    return "push";
  case Event::pull_request:
    return "pull_request";
  case Event::unknown:
    break;
  }
  return "unknown";
}

Outcome outcome_from_status(int status) {
  if (status == 0) {
    return Outcome::success;
  }
  if (status < 0 || status == 128 + SIGINT || status == 128 + SIGTERM || status == 128 + SIGKILL) {
    return Outcome::cancelled;
  }
  return Outcome::failure;
}

const char* to_string(Outcome outcome) {
  switch (outcome) {
  case Outcome::success:
    return "success";
  case Outcome::failure:
    return "failure";
  case Outcome::cancelled:
    return "cancelled";
  }
  return "unknown";
}

std::string normalise_branch(std::string_view branch) {
  constexpr std::string_view heads = "refs/heads/";
  if (branch.substr(0, heads.size()) == heads) {
    branch.remove_prefix(heads.size());
  }
  return std::string(branch);
}

std::optional<bool> parse_switch(std::string_view text) {
  std::string lower;
  for (char c : text) {
    lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (lower == "1" || lower == "true" || lower == "yes") {
    return true;
  }
  if (lower.empty() || lower == "0" || lower == "false" || lower == "no") {
    return false;
  }
  return std::nullopt;
}

bool is_protected(const Context& context) {
  auto branch = normalise_branch(context.branch);
  return std::any_of(context.protected_branches.begin(), context.protected_branches.end(),
                     [&](const std::string& p) { return normalise_branch(p) == branch; });
}

bool context_known(const Context& context) {
  return !context.branch.empty() && context.event != Event::unknown;
}

namespace {

bool protected_push(const Context& context) {
  return context.event == Event::push && is_protected(context);
}

} // namespace

Decision restore_decision(const jobfile::JobSpec& job, const jobfile::PersistSpec& stanza,
                          const Context& context, RestoreBy by) {
  if (!job.enable) {
    return {false, "the job is disabled (enable = false)"};
  }
  if (!stanza.restore && by == RestoreBy::pre) {
    return {false, "restore = false in the stanza: only an in-job `ephemera restore NAME` "
                   "restores it"};
  }
  if (protected_push(context)) {
    if (stanza.restore_on_protected) {
      return {true, fmt::format("push to protected branch '{}' with restore_on_protected = true",
                                context.branch)};
    }
    return {false, fmt::format("push to protected branch '{}' builds from scratch "
                               "(restore_on_protected = true would allow it)",
                               context.branch)};
  }
  if (!context_known(context)) {
    return {true, "context unknown (no branch or event): restoring is safe"};
  }
  return {true, fmt::format("{} on branch '{}'", to_string(context.event), context.branch)};
}

Decision save_decision(const jobfile::JobSpec& job, const jobfile::PersistSpec& stanza,
                       const Context& context, Outcome outcome) {
  if (!job.enable) {
    return {false, "the job is disabled (enable = false)"};
  }
  if (!stanza.save) {
    return {false, "save = false in the stanza"};
  }
  if (outcome != Outcome::success) {
    return {false, fmt::format("the job {}: saves happen only after success",
                               outcome == Outcome::cancelled ? "was cancelled" : "failed")};
  }
  if (!context_known(context)) {
    return {false, fmt::format("context unknown (no {}): a save needs the branch and the event "
                               "(--branch/GITHUB_BRANCH, --event/EPHEMERA_EVENT)",
                               context.branch.empty() ? "branch" : "event")};
  }
  if (protected_push(context)) {
    return {false, fmt::format("push to protected branch '{}': never saved", context.branch)};
  }
  if (!context.trusted && context.origin.empty()) {
    return {false, "untrusted job with no origin: its save could be told apart from no other "
                   "untrusted job's, so it is not saved (the agent gives the fork's repository or "
                   "the pull request with --origin/EPHEMERA_ORIGIN)"};
  }
  return {true,
          fmt::format("{} on branch '{}' succeeded{}", to_string(context.event), context.branch,
                      context.trusted
                          ? ""
                          : fmt::format(" (untrusted: restored only into untrusted jobs of "
                                        "origin '{}')",
                                        context.origin))};
}

void KeyDigest::missing(std::string_view path) {
  // Length-prefixed fields keep ("ab","c") and ("a","bc") apart.
  m_any = true;
  m_sha.update(fmt::format("path {}\n", path.size()));
  m_sha.update(path);
  m_sha.update("\nmissing\n");
}

void KeyDigest::content(std::string_view path, uint64_t size) {
  m_any = true;
  m_sha.update(fmt::format("path {}\n", path.size()));
  m_sha.update(path);
  m_sha.update(fmt::format("\ncontent {}\n", size));
}

std::string KeyDigest::key(std::string_view cache_key) {
  if (!m_any) {
    return std::string(cache_key);
  }
  std::string digest = m_sha.finish_hex().substr(0, 16);
  if (cache_key.empty()) {
    return digest;
  }
  return fmt::format("{}-{}", cache_key, digest);
}

bool possible_key(std::string_view key) {
  if (jobfile::valid_cache_key(key)) {
    return true;
  }
  constexpr size_t k_digest = 16;
  if (key.size() <= k_digest + 1 || key[key.size() - k_digest - 1] != '-') {
    return false;
  }
  auto digest = key.substr(key.size() - k_digest);
  return jobfile::valid_cache_key(key.substr(0, key.size() - k_digest - 1)) &&
         std::all_of(digest.begin(), digest.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string compute_key(std::string_view cache_key, const std::vector<KeyFile>& key_files) {
  KeyDigest d;
  for (const auto& f : key_files) {
    if (f.content) {
      d.content(f.path, f.content->size());
      d.update(*f.content);
    } else {
      d.missing(f.path);
    }
  }
  return d.key(cache_key);
}

std::vector<LookupStep> lookup_steps(const std::string& key,
                                     const std::vector<std::string>& restore_keys) {
  std::vector<LookupStep> steps{{key, false}};
  for (const auto& p : restore_keys) {
    steps.push_back({p, true});
  }
  return steps;
}

} // namespace ephemera::policy
