#pragma once

#include "util/ed25519.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

// A job's token: the claims a CI server makes about one job, signed with its Ed25519 key, which
// the broker decides every read and write from. The format (README, "Running a broker"):
//
//   eph1.<base64url of the claims' JSON>.<base64url of the Ed25519 signature>
//
// where the signature covers the text before the second '.', "eph1." included, so that
// nothing else signed with the key can pass for a token. The claims are one JSON object
// with exactly these members:
//   "repository" string, the job's repository (an operator token may give "")
//   "target"     string, the job's target ("" when the job has none)
//   "branch"     string, the branch the job builds ("" unknown: the job never saves)
//   "event"      "push", "pull_request" or "" (unknown: the job never saves)
//   "trusted"    bool; false for a fork's pull request
//   "origin"     string, who an untrusted job is (the fork's repository or the pull
//                request); an untrusted job with none never saves
//   "job_id"     string, which every manifest the job writes must carry
//   "role"       "job" or "operator" (the store's operator: ls, gc, invalidate)
//   "audience"   string, the broker deployment the token is for ("" any)
//   "issued"     integer, seconds since the epoch
//   "expires"    integer, seconds since the epoch, after issued
namespace ephemera::broker {

inline constexpr const char* k_token_prefix = "eph1.";
// The longest token accepted: claims are a few hundred bytes.
inline constexpr size_t k_max_token = 8192;

enum class Role { job, operator_ };

struct Claims {
  std::string repository;
  std::string target;
  std::string branch;
  std::string event;
  bool trusted = true;
  std::string origin;
  std::string job_id;
  Role role = Role::job;
  std::string audience;
  int64_t issued = 0;
  int64_t expires = 0;

  std::string to_json() const;
};

// The claims of a token's JSON text, strictly: an object with exactly the members above,
// each of its type, strings without control bytes and of at most 1024 bytes, event one of
// the three, expires after issued. Throws util::Error saying which member is wrong.
Claims parse_claims(std::string_view json_text);

// A token for claims, signed with key (which must be private).
std::string mint(const Claims& claims, const util::Ed25519Key& key);

// The claims of token if key signed it, it has not expired at `now` (seconds since the epoch)
// and it is for `audience` (when audience is not empty). Throws util::StoreError
// (unauthorized): malformed, bad signature, expired, not yet valid (issued more than a minute
// ahead of now), for another audience.
Claims verify(std::string_view token, const util::Ed25519Key& key, int64_t now,
              std::string_view audience = "");

// The claims of token without checking its signature or time: what a client shows of its
// own token. nullopt when it is not one.
std::optional<Claims> peek(std::string_view token);

} // namespace ephemera::broker
