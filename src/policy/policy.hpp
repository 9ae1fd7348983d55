#pragma once

#include "jobfile/job_spec.hpp"
#include "util/sha256.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// Restore and save decisions, keys and scope: pure functions of (job, context, outcome).
namespace ephemera::policy {

enum class Event { unknown, push, pull_request };

// Parses "push" / "pull_request" (also "pull-request", "pr"); nullopt for anything else.
std::optional<Event> parse_event(std::string_view text);
const char* to_string(Event event);

// What the agent says about the job (the context flags of README, "Wiring an agent").
struct Context {
  std::string repository;
  std::string branch;
  std::string commit;
  std::string job_id;
  Event event = Event::unknown;
  bool trusted = true;
  // Who an untrusted job is, as the agent names it and a fork cannot choose: the fork's
  // repository or the pull request. Untrusted saves are restored only into untrusted jobs
  // of the same origin; an untrusted job without one saves nothing.
  std::string origin;
  std::vector<std::string> protected_branches{"main", "master"};
};

// The branch name without a "refs/heads/" prefix, so that a ref and a name compare equal.
std::string normalise_branch(std::string_view branch);

// EPHEMERA_UNTRUSTED and the like: true for "1", "true", "yes"; false for "0", "false",
// "no" and ""; nullopt for anything else (the caller refuses it). Case-insensitive.
std::optional<bool> parse_switch(std::string_view text);

// How the job ended, as post learns it.
enum class Outcome { success, failure, cancelled };

// --status N: 0 is success; the shell's 128+SIGINT/SIGTERM/SIGKILL and negative values
// mean the job was cancelled; any other value is a failure.
Outcome outcome_from_status(int status);
const char* to_string(Outcome outcome);

// One decision and why, in words for the job log and the report.
struct Decision {
  bool act = false;
  std::string reason;
};

// Whether the context's branch is protected, comparing normalised names.
bool is_protected(const Context& context);
// The context is unknown when the branch or the event is missing: restore, never save.
bool context_known(const Context& context);

// Who asks for a restore: pre restores every stanza the policy allows; a job asks for one
// stanza by name (`ephemera restore NAME`). `restore = false` keeps a stanza out of pre only,
// so it can be restored on demand; every other rule (a disabled job, a push to a protected
// branch) holds for both.
enum class RestoreBy { pre, job };

Decision restore_decision(const jobfile::JobSpec& job, const jobfile::PersistSpec& stanza,
                          const Context& context, RestoreBy by = RestoreBy::pre);
Decision save_decision(const jobfile::JobSpec& job, const jobfile::PersistSpec& stanza,
                       const Context& context, Outcome outcome);

// One key file as read from disk: its path as written in the stanza, and its bytes
// (nullopt when missing: a marker is hashed instead, so its appearance changes the key).
struct KeyFile {
  std::string path;
  std::optional<std::string> content;
};

// cache_key, or cache_key-<first 16 hex of SHA-256 over each key file's path and bytes>.
std::string compute_key(std::string_view cache_key, const std::vector<KeyFile>& key_files);
// Whether compute_key can make `key` from some valid cache_key and key files: an operator's
// --key is checked against it, so a typo is an error and not a marker that hides nothing.
bool possible_key(std::string_view key);

// compute_key's digest, fed one key file at a time so that a file's bytes can be streamed
// from disk instead of held in memory: for each file in order, missing(path), or
// content(path, size) followed by exactly size bytes through update().
class KeyDigest {
public:
  void missing(std::string_view path);
  void content(std::string_view path, uint64_t size);
  void update(std::string_view bytes) { m_sha.update(bytes); }
  // The key; the digest must not be fed afterwards.
  std::string key(std::string_view cache_key);

private:
  util::Sha256 m_sha;
  bool m_any = false;
};

// Restore order: the exact key, then each restore_keys prefix, in order.
struct LookupStep {
  std::string value;
  bool prefix = false;
};
std::vector<LookupStep> lookup_steps(const std::string& key,
                                     const std::vector<std::string>& restore_keys);

} // namespace ephemera::policy
