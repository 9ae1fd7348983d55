// Manifests and invalidation markers to and from JSON, checked against where they lie.
#include "store/manifest.hpp"

#include "store/backend.hpp"
#include "store/keys.hpp"
#include "util/error.hpp"
#include "util/log.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <sys/time.h>

namespace ephemera::store {

using nlohmann::json;
using util::StoreError;
using util::StoreErrorKind;

std::string rfc3339_now() {
  struct timeval tv {};
  ::gettimeofday(&tv, nullptr);
  struct tm tm {};
  ::gmtime_r(&tv.tv_sec, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, tv.tv_usec);
}

std::optional<double> parse_rfc3339(const std::string& text) {
  struct tm tm {};
  int usec = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%6dZ", &tm.tm_year, &tm.tm_mon,
                  &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &usec) != 7) {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<double>(::timegm(&tm)) + usec / 1e6;
}

namespace {

template <typename T> T field(const json& j, const char* key) {
  if (!j.contains(key)) {
    throw StoreError(StoreErrorKind::permanent, fmt::format("manifest has no '{}'", key));
  }
  try {
    return j.at(key).get<T>();
  } catch (const json::exception&) {
    throw StoreError(StoreErrorKind::permanent,
                     fmt::format("manifest field '{}' has the wrong type", key));
  }
}

// A whole number from 0 to max. nlohmann's get<uint64_t>() wraps -1 to 2^64-1 and truncates
// 1.5 to 1: a store writer must not choose a size or epoch by either.
uint64_t count_field(const json& j, const char* key, uint64_t max = UINT64_MAX) {
  if (!j.contains(key)) {
    throw StoreError(StoreErrorKind::permanent, fmt::format("manifest has no '{}'", key));
  }
  const auto& v = j.at(key);
  bool whole = v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0);
  if (!whole || v.get<uint64_t>() > max) {
    throw StoreError(StoreErrorKind::permanent,
                     fmt::format("manifest field '{}' is {}, not a whole number from 0 to {}", key,
                                 util::printable(v.dump().substr(0, 40)), max));
  }
  return v.get<uint64_t>();
}

bool lower_hex(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// Exactly the shape rfc3339_now() writes, so that times compare as strings.
bool canonical_time(const std::string& text) {
  static const std::string shape = "dddd-dd-ddTdd:dd:dd.ddddddZ";
  if (text.size() != shape.size()) {
    return false;
  }
  for (size_t i = 0; i < shape.size(); ++i) {
    bool digit = text[i] >= '0' && text[i] <= '9';
    if (shape[i] == 'd' ? !digit : text[i] != shape[i]) {
      return false;
    }
  }
  return parse_rfc3339(text).has_value();
}

// Throws unless m lies where publish() puts it: object is <scope>/<key>/<stamp>.json with
// the scope and key of its own fields, and its archive is <scope>/<key>/<stamp>.tar.zst. So a
// manifest copied into another scope is refused, and no manifest can name a file outside the
// store or another save's archive (which gc would then remove with it).
void check_placement(const Manifest& m, const std::string& object) {
  check_key(object, "manifest object");
  auto placed = parse_key(object);
  if (placed.kind != KeyKind::manifest || !placed.scope ||
      *placed.scope != Scope{m.repository, m.target, m.name, m.epoch} || placed.key != m.key) {
    throw StoreError(StoreErrorKind::permanent,
                     fmt::format("its scope and key say it belongs in '{}', not here",
                                 util::printable(key_folder(
                                     Scope{m.repository, m.target, m.name, m.epoch}, m.key))));
  }
  std::string own = m.content == k_content_cas
                        ? cas_index_key(cas_scope_id(m.repository, m.target, m.name, m.trusted,
                                                     m.origin),
                                        m.sha256)
                        : own_archive(object);
  if (m.archive != own) {
    throw StoreError(StoreErrorKind::permanent,
                     fmt::format("its archive '{}' is not its own object '{}'",
                                 util::printable(m.archive.substr(0, 200)), util::printable(own)));
  }
}

} // namespace

json Manifest::to_json(bool with_signature) const {
  json j{{"format", format},
         {"repository", repository},
         {"target", target},
         {"name", name},
         {"epoch", epoch},
         {"key", key},
         {"archive", archive},
         {"compressed_size", compressed_size},
         {"sha256", sha256},
         {"unpacked_bytes", unpacked_bytes},
         {"files", files},
         {"created", created},
         {"job_id", job_id},
         {"commit", commit},
         {"branch", branch},
         {"event", event},
         {"trusted", trusted},
         {"rules", rules},
         {"tool_version", tool_version}};
  if (!origin.empty()) {
    j["origin"] = origin;
  }
  if (!rules_digest.empty()) {
    j["rules_digest"] = rules_digest;
  }
  if (!content.empty()) {
    j["content"] = content;
  }
  if (with_signature && !signature.empty()) {
    j["signature"] = signature;
  }
  return j;
}

Manifest Manifest::from_json(const json& j, const std::string& object) {
  if (!j.is_object()) {
    throw StoreError(StoreErrorKind::permanent, "a manifest must be a JSON object");
  }
  Manifest m;
  m.format = field<std::string>(j, "format");
  if (m.format != k_manifest_format) {
    throw StoreError(
        StoreErrorKind::permanent,
        fmt::format("unknown manifest format '{}'", util::printable(m.format.substr(0, 80))));
  }
  m.repository = field<std::string>(j, "repository");
  m.target = field<std::string>(j, "target");
  m.name = field<std::string>(j, "name");
  m.epoch = static_cast<int64_t>(count_field(j, "epoch", INT64_MAX));
  m.key = field<std::string>(j, "key");
  m.archive = field<std::string>(j, "archive");
  m.compressed_size = count_field(j, "compressed_size");
  m.sha256 = field<std::string>(j, "sha256");
  m.unpacked_bytes = count_field(j, "unpacked_bytes");
  m.files = count_field(j, "files");
  m.created = field<std::string>(j, "created");
  m.job_id = field<std::string>(j, "job_id");
  m.commit = field<std::string>(j, "commit");
  m.branch = field<std::string>(j, "branch");
  m.event = field<std::string>(j, "event");
  m.trusted = field<bool>(j, "trusted");
  m.rules = field<std::vector<std::string>>(j, "rules");
  m.tool_version = field<std::string>(j, "tool_version");
  if (j.contains("signature")) {
    m.signature = field<std::string>(j, "signature"); // optional, but a string when present
  }
  if (j.contains("origin")) {
    m.origin = field<std::string>(j, "origin"); // likewise
  }
  if (j.contains("rules_digest")) {
    m.rules_digest = field<std::string>(j, "rules_digest"); // likewise
    if (m.rules_digest.size() != 64 || !lower_hex(m.rules_digest)) {
      throw StoreError(StoreErrorKind::permanent, "manifest has a malformed rules_digest");
    }
  }
  if (j.contains("content")) {
    m.content = field<std::string>(j, "content");
    if (m.content != k_content_cas) {
      throw StoreError(StoreErrorKind::permanent,
                       fmt::format("unknown content '{}' (this version reads '{}')",
                                   util::printable(m.content.substr(0, 80)), k_content_cas));
    }
  }
  if (m.sha256.size() != 64 || !lower_hex(m.sha256) || !canonical_time(m.created)) {
    throw StoreError(StoreErrorKind::permanent, "manifest has a malformed sha256 or created time");
  }
  // Every archive holds at least the tar's end blocks: a size of 0 is a forgery, and would
  // leave nothing for a download to be held to.
  if (m.compressed_size == 0) {
    throw StoreError(StoreErrorKind::permanent, "manifest field 'compressed_size' is 0");
  }
  check_placement(m, object);
  m.object = object;
  return m;
}

bool Invalidation::covers(const Manifest& m) const {
  return m.repository == repository && (target.empty() || m.target == target) &&
         (name.empty() || m.name == name) && (key.empty() || m.key == key) &&
         (branch.empty() || m.branch == branch) &&
         (stored != 0 && m.stored != 0 && stored != m.stored ? m.stored < stored
                                                             : m.created < created);
}

std::string manifest_payload(const Manifest& m) {
  return m.to_json(false).dump();
}

std::string marker_payload(const Invalidation& inv) {
  return inv.to_json("").dump(); // the marker as it is written, but for its signature
}

json Invalidation::to_json(const std::string& signature) const {
  json j{{"format", k_invalidation_format},
         {"repository", repository},
         {"target", target},
         {"name", name},
         {"reason", reason},
         {"created", created}};
  if (!key.empty()) {
    j["key"] = key;
  }
  if (!branch.empty()) {
    j["branch"] = branch;
  }
  if (!signature.empty()) {
    j["signature"] = signature;
  }
  return j;
}

namespace {

// A string field of a marker, "" when absent; nullopt when it is there but not a string.
std::optional<std::string> marker_field(const json& j, const char* key) {
  if (!j.contains(key)) {
    return std::string();
  }
  if (!j.at(key).is_string()) {
    return std::nullopt;
  }
  return j.at(key).get<std::string>();
}

} // namespace

std::optional<std::pair<Invalidation, std::string>>
Invalidation::from_json(const json& j, const std::string& object, int64_t stored,
                        std::string& why) {
  if (!j.is_object()) {
    why = "not JSON";
    return std::nullopt;
  }
  auto repo = marker_field(j, "repository"), target = marker_field(j, "target"),
       name = marker_field(j, "name"), reason = marker_field(j, "reason"),
       created = marker_field(j, "created"), signature = marker_field(j, "signature"),
       key = marker_field(j, "key"), branch = marker_field(j, "branch");
  if (!repo || !target || !name || !reason || !created || !signature || !key || !branch) {
    why = "a field is not a string";
    return std::nullopt;
  }
  Invalidation inv{*repo, *target, *name, *reason, *created, object, stored, *key, *branch};
  if (!marker_in_place(inv)) {
    why = "its repository is not that of the folder it lies in, or its time is malformed";
    return std::nullopt;
  }
  return std::pair{std::move(inv), std::move(*signature)};
}

bool marker_in_place(const Invalidation& inv) {
  if (inv.repository.empty() || !parse_rfc3339(inv.created) || !valid_key(inv.object)) {
    return false;
  }
  auto placed = parse_key(inv.object);
  return placed.kind == KeyKind::marker && placed.repository == inv.repository;
}

} // namespace ephemera::store
