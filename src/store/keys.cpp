// The store's object keys, built and parsed.
#include "store/keys.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <random>
#include <vector>

namespace ephemera::store {

namespace {

constexpr std::string_view k_root = "v1/";
constexpr std::string_view k_markers = "_invalidations";
constexpr std::string_view k_clock = "_clock";
constexpr std::string_view k_json = ".json";
constexpr std::string_view k_archive = ".tar.zst";
constexpr std::string_view k_events = "_events";
constexpr std::string_view k_event = ".event";
constexpr std::string_view k_used = ".used";

bool ends_with(std::string_view s, std::string_view tail) {
  return s.size() > tail.size() && s.substr(s.size() - tail.size()) == tail;
}

// A stem and its tail ("<stem><tail>" with a non-empty stem); "" when s has not that tail.
std::string_view stem(std::string_view s, std::string_view tail) {
  return ends_with(s, tail) ? s.substr(0, s.size() - tail.size()) : std::string_view{};
}

std::vector<std::string_view> components(std::string_view key) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t slash = key.find('/', start);
    out.push_back(key.substr(start, slash == std::string_view::npos ? key.npos : slash - start));
    if (slash == std::string_view::npos) {
      return out;
    }
    start = slash + 1;
  }
}

bool lower_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// The epoch of a folder "e<epoch>" exactly as scope_prefix writes it.
std::optional<int64_t> epoch_folder(std::string_view folder) {
  if (folder.size() < 2 || folder.size() > 20 || folder[0] != 'e') {
    return std::nullopt;
  }
  auto digits = folder.substr(1);
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      (digits.size() > 1 && digits[0] == '0')) {
    return std::nullopt;
  }
  uint64_t value = 0;
  for (char c : digits) {
    if (value > (static_cast<uint64_t>(INT64_MAX) - static_cast<uint64_t>(c - '0')) / 10) {
      return std::nullopt;
    }
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  return static_cast<int64_t>(value);
}

// A UTC day as utc_day writes it, of a plausible date.
bool day_folder(std::string_view day) {
  if (day.size() != 8 ||
      !std::all_of(day.begin(), day.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  int month = std::stoi(std::string(day.substr(4, 2)));
  int mday = std::stoi(std::string(day.substr(6, 2)));
  return day.substr(0, 4) >= "2000" && month >= 1 && month <= 12 && mday >= 1 && mday <= 31;
}

} // namespace

std::string sanitise(std::string_view component) {
  if (component.empty()) {
    return "~";
  }
  std::string out;
  for (size_t i = 0; i < component.size(); ++i) {
    auto c = static_cast<unsigned char>(component[i]);
    bool plain = std::isalnum(c) != 0 || c == '_' || c == '-' || (c == '.' && i > 0);
    out += plain ? std::string(1, static_cast<char>(c)) : fmt::format("~{:02X}", c);
  }
  return out;
}

std::optional<std::string> unsanitise(std::string_view folder) {
  if (folder == "~") {
    return std::string();
  }
  std::string out;
  for (size_t i = 0; i < folder.size(); ++i) {
    if (folder[i] != '~') {
      out += folder[i];
      continue;
    }
    auto hex = folder.substr(i + 1, 2);
    if (hex.size() != 2 || !std::isxdigit(static_cast<unsigned char>(hex[0])) ||
        !std::isxdigit(static_cast<unsigned char>(hex[1]))) {
      return std::nullopt;
    }
    out += static_cast<char>(std::stoi(std::string(hex), nullptr, 16));
    i += 2;
  }
  // Only sanitise()'s own spelling: one folder for each component, so that no two folders
  // hold saves of one scope.
  if (out.empty() || sanitise(out) != folder) {
    return std::nullopt;
  }
  return out;
}

std::string layout_root() {
  return std::string(k_root);
}

std::string new_stamp(const std::string& created) {
  std::string s;
  for (char c : created) {
    if (c != '-' && c != ':') {
      s += c;
    }
  }
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{}-{:08x}", s, static_cast<uint32_t>(rng()));
}

std::string scope_prefix(const Scope& s) {
  return fmt::format("{}{}/{}/{}/e{}/", k_root, sanitise(s.repository), sanitise(s.target),
                     sanitise(s.name), s.epoch);
}

std::string key_folder(const Scope& scope, std::string_view key) {
  return scope_prefix(scope) + sanitise(key) + "/";
}

std::string manifest_key(const Scope& scope, std::string_view key, std::string_view stamp) {
  return key_folder(scope, key) + std::string(stamp) + std::string(k_json);
}

std::string archive_key(const Scope& scope, std::string_view key, std::string_view stamp) {
  return key_folder(scope, key) + std::string(stamp) + std::string(k_archive);
}

std::string saves_prefix(std::string_view repository, std::string_view target,
                         std::string_view name) {
  std::string prefix(k_root);
  if (!repository.empty()) {
    prefix += sanitise(repository) + "/";
    if (!target.empty()) {
      prefix += sanitise(target) + "/";
      if (!name.empty()) {
        prefix += sanitise(name) + "/";
      }
    }
  }
  return prefix;
}

std::string stanza_prefix(std::string_view repository, std::string_view target,
                          std::string_view name) {
  return fmt::format("{}{}/{}/{}/", k_root, sanitise(repository), sanitise(target), sanitise(name));
}

std::string own_archive(std::string_view manifest_object) {
  auto s = stem(manifest_object, k_json);
  return s.empty() ? "" : std::string(s) + std::string(k_archive);
}

std::string own_manifest(std::string_view archive_object) {
  auto s = stem(archive_object, k_archive);
  return s.empty() ? "" : std::string(s) + std::string(k_json);
}

std::string marker_key(std::string_view repository, std::string_view stamp) {
  return markers_prefix(repository) + std::string(stamp) + std::string(k_json);
}

std::string markers_prefix(std::string_view repository) {
  std::string prefix = fmt::format("{}{}/", k_root, k_markers);
  return repository.empty() ? prefix : prefix + sanitise(repository) + "/";
}

std::string clock_probe_key(uint64_t random) {
  return fmt::format("{}{}/{:016x}", k_root, k_clock, random);
}

std::string utc_day(double seconds) {
  auto t = static_cast<std::time_t>(seconds);
  struct tm tm {};
  ::gmtime_r(&t, &tm);
  return fmt::format("{:04}{:02}{:02}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

std::string use_marker_key(std::string_view manifest_object, std::string_view day, bool trusted) {
  auto s = stem(manifest_object, k_json);
  auto p = parse_key(manifest_object);
  if (s.empty() || p.kind != KeyKind::manifest || !p.scope) {
    return "";
  }
  return fmt::format("{}{}/{}{}", s, k_used, day, trusted ? "" : "-u");
}

std::string event_key(std::string_view repository, std::string_view target, std::string_view day,
                      std::string_view stamp) {
  return fmt::format("{}{}", events_prefix(repository),
                     fmt::format("{}/{}/{}{}", sanitise(target), day, stamp, k_event));
}

std::string events_prefix(std::string_view repository) {
  std::string prefix = fmt::format("{}{}/", k_root, k_events);
  return repository.empty() ? prefix : prefix + sanitise(repository) + "/";
}

ParsedKey parse_key(std::string_view key) {
  ParsedKey p;
  auto parts = components(key);
  if (parts.size() < 2 || parts[0] != k_root.substr(0, k_root.size() - 1)) {
    // Outside the layout's root: only the suffix says what it would be.
    p.kind = !stem(key, k_json).empty()      ? KeyKind::manifest
             : !stem(key, k_archive).empty() ? KeyKind::archive
                                             : KeyKind::other;
    return p;
  }
  if (parts[1] == k_markers) {
    if (parts.size() == 4 && !stem(parts[3], k_json).empty()) {
      p.kind = KeyKind::marker;
      p.repository = unsanitise(parts[2]);
      p.stamp = std::string(stem(parts[3], k_json));
    }
    return p; // anything else in the markers' folder is no manifest, archive or marker
  }
  if (parts[1] == k_clock && parts.size() == 3 && parts[2].size() == 16 && lower_hex(parts[2])) {
    p.kind = KeyKind::clock_probe;
    return p;
  }
  if (parts[1] == k_events) {
    if (parts.size() == 6 && day_folder(parts[4]) && !stem(parts[5], k_event).empty()) {
      p.kind = KeyKind::event;
      p.repository = unsanitise(parts[2]);
      auto target = unsanitise(parts[3]);
      p.key = target.value_or("");
      if (!target) {
        p.repository.reset(); // not a folder record_event makes
      }
      p.day = std::string(parts[4]);
      p.stamp = std::string(stem(parts[5], k_event));
    }
    return p; // anything else in the events' folder is no manifest, archive or record
  }
  if (parts.size() == 8 && !stem(parts[6], k_used).empty()) {
    std::string_view leaf = parts[7];
    bool trusted = !ends_with(leaf, "-u");
    std::string_view day = trusted ? leaf : leaf.substr(0, leaf.size() - 2);
    std::string manifest =
        std::string(key.substr(0, key.size() - leaf.size() - k_used.size() - 1)) +
        std::string(k_json);
    auto marked = parse_key(manifest);
    if (day_folder(day) && marked.kind == KeyKind::manifest && marked.scope) {
      p = marked;
      p.kind = KeyKind::use_marker;
      p.manifest = std::move(manifest);
      p.trusted = trusted;
      p.day = std::string(day);
    }
    return p;
  }
  auto leaf = parts.back();
  p.kind = !stem(leaf, k_json).empty()      ? KeyKind::manifest
           : !stem(leaf, k_archive).empty() ? KeyKind::archive
                                            : KeyKind::other;
  if (p.kind == KeyKind::other || parts.size() != 7) {
    return p;
  }
  auto repository = unsanitise(parts[1]), target = unsanitise(parts[2]),
       name = unsanitise(parts[3]), k = unsanitise(parts[5]);
  auto epoch = epoch_folder(parts[4]);
  if (repository && target && name && k && epoch) {
    p.scope = Scope{*repository, *target, *name, *epoch};
    p.key = *k;
    p.stamp = std::string(stem(leaf, p.kind == KeyKind::manifest ? k_json : k_archive));
  }
  return p;
}

std::string cas_scope_id(std::string_view repository, std::string_view target,
                         std::string_view name, bool trusted, std::string_view origin) {
  std::string trust = trusted ? "trusted" : "untrusted/" + sanitise(origin);
  return sanitise(repository) + "/" + sanitise(target) + "/" + sanitise(name) + "/" + trust;
}

std::string cas_prefix(std::string_view scope_id) {
  return "cas1/" + std::string(scope_id) + "/";
}

std::string cas_index_key(std::string_view scope_id, std::string_view sha256) {
  return cas_prefix(scope_id) + "index/" + std::string(sha256) + ".idx";
}

std::string cas_root() {
  return "cas1/";
}

std::optional<CasKey> parse_cas_key(std::string_view key) {
  auto parts = components(key);
  // cas1 / repo / target / name / trusted | untrusted / origin / packs|index / leaf
  if (parts.size() != 7 && parts.size() != 8) {
    return std::nullopt;
  }
  if (parts[0] != "cas1") {
    return std::nullopt;
  }
  bool trusted = parts.size() == 7;
  if (parts[4] != (trusted ? "trusted" : "untrusted")) {
    return std::nullopt;
  }
  auto repository = unsanitise(parts[1]);
  auto target = unsanitise(parts[2]);
  auto name = unsanitise(parts[3]);
  std::optional<std::string> origin =
      trusted ? std::optional<std::string>("") : unsanitise(parts[5]);
  if (!repository || !target || !name || !origin) {
    return std::nullopt;
  }
  std::string_view folder = parts[parts.size() - 2];
  std::string_view leaf = parts.back();
  CasKey k;
  k.index = folder == "index";
  std::string_view tail = k.index ? ".idx" : ".pack";
  if ((!k.index && folder != "packs") || leaf.size() != 64 + tail.size() ||
      leaf.substr(64) != tail || !lower_hex(leaf.substr(0, 64))) {
    return std::nullopt;
  }
  k.scope_id = cas_scope_id(*repository, *target, *name, trusted, *origin);
  if (key.substr(0, cas_prefix(k.scope_id).size()) != cas_prefix(k.scope_id)) {
    return std::nullopt;
  }
  k.repository = std::move(*repository);
  k.target = std::move(*target);
  k.name = std::move(*name);
  k.trusted = trusted;
  k.origin = std::move(*origin);
  k.sha256 = std::string(leaf.substr(0, 64));
  return k;
}

} // namespace ephemera::store
