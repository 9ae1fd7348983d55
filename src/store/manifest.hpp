// What the catalog writes and reads besides archives: a save's manifest and an operator's
// invalidation marker, to and from JSON, each checked against where it lies (keys.hpp).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ephemera::store {

inline constexpr const char* k_manifest_format = "ephemera-manifest/1";
inline constexpr const char* k_invalidation_format = "ephemera-invalidation/1";
inline constexpr const char* k_content_cas = "cas1";

struct Manifest {
  std::string format = k_manifest_format;
  std::string repository;
  std::string target;
  std::string name;
  int64_t epoch = 0;
  std::string key;
  std::string archive; // object key of the archive
  uint64_t compressed_size = 0;
  std::string sha256;
  uint64_t unpacked_bytes = 0;
  uint64_t files = 0;
  std::string created; // RFC 3339 UTC, microseconds
  std::string job_id;
  std::string commit;
  std::string branch;
  std::string event;
  bool trusted = true;
  // The untrusted job's origin (fork repository or pull request, as the agent named it); only
  // untrusted jobs of the same origin restore an untrusted save. In the JSON (and so in what
  // is signed) only when not empty, so manifests written before it still verify.
  std::string origin;
  std::vector<std::string> rules;
  // rules::rules_digest of the rules it was saved with: what they admit, however written.
  // In the JSON (and so signed) only when not empty: manifests written before it have none.
  std::string rules_digest;
  std::string tool_version;
  // How the save is stored: "" a single archive (archive is <stamp>.tar.zst beside the
  // manifest); k_content_cas, content-addressed (archive is the index object,
  // cas_index_key of the manifest's own scope and sha256, which are the index's; its packs
  // lie beside it). In the JSON (and so in what is signed) only when not empty.
  std::string content;
  std::string signature; // HMAC-SHA256 hex or "ed25519:" hex when signing is on
  std::string object;    // where this manifest was read from (not stored)
  int64_t stored = 0;    // the store's own time of that object, seconds (not stored)

  // Saved after other, by the store's clock first: writers' clocks may disagree, the
  // store's is one clock. `created` (the writer's) breaks ties within a second.
  bool later_than(const Manifest& other) const {
    return stored != other.stored ? stored > other.stored : created > other.created;
  }

  nlohmann::json to_json(bool with_signature = true) const;
  // The manifest read from the object key it lies at, which becomes its `object`. Throws
  // util::StoreError(permanent) naming what is wrong: a missing or mistyped field, a number
  // that is negative, fractional or out of range, a compressed_size of 0, or a manifest not
  // valid where it lies (its repository, target, name, epoch and key are not those of its
  // object path, or its archive is not its own object name: <stamp>.json -> <stamp>.tar.zst,
  // or for a content-addressed save its scope's index of its sha256), or an unknown content.
  static Manifest from_json(const nlohmann::json& j, const std::string& object);
};

struct Invalidation {
  std::string repository;
  std::string target; // "" : every target
  std::string name;   // "" : every stanza
  std::string reason;
  std::string created;
  std::string object;
  int64_t stored = 0; // the store's time of the marker (0: unknown)
  // Narrower than a stanza: only saves of this key, or of this branch ("" : any). In the
  // JSON (and so signed) only when not empty, so markers written before them still verify.
  std::string key = {};
  std::string branch = {};
  // Of the scope (and key and branch, where given), and saved before the marker, by the
  // store's clock where both are known.
  bool covers(const Manifest& m) const;

  nlohmann::json to_json(const std::string& signature) const;
  // The marker read from the object key it lies at (with the store's time of it), and its
  // signature ("" when it has none); nullopt, with why set, when it is not a JSON object of
  // string fields or does not lie where it says (marker_in_place).
  static std::optional<std::pair<Invalidation, std::string>>
  from_json(const nlohmann::json& j, const std::string& object, int64_t stored, std::string& why);
};

// What a manifest's signature covers, and a marker's (every field it is read by, and its
// format, so that no other signed object can pass for one).
std::string manifest_payload(const Manifest& m);
std::string marker_payload(const Invalidation& inv);

// Whether a marker read from the store counts: a repository, a well-formed time, and its
// object directly below v1/_invalidations/<its own repository, sanitised>/, so a marker filed
// under one repository can never hide another's saves.
bool marker_in_place(const Invalidation& inv);

// RFC 3339 UTC with microseconds, e.g. 2026-11-24T16:40:00.123456Z.
std::string rfc3339_now();
// Seconds since the epoch of an RFC 3339 UTC time made by rfc3339_now; nullopt if malformed.
std::optional<double> parse_rfc3339(const std::string& text);

} // namespace ephemera::store
