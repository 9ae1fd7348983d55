#include "store/usage.hpp"

#include "util/error.hpp"
#include "util/log.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <set>

namespace ephemera::store {

std::optional<UseMarker> parse_use_marker(std::string_view key) {
  auto p = parse_key(key);
  if (p.kind != KeyKind::use_marker) {
    return std::nullopt;
  }
  return UseMarker{p.manifest, p.day, p.trusted};
}

std::map<std::string, Use> uses_of(const std::vector<Manifest>& saves,
                                   const std::vector<ObjectInfo>& listing) {
  std::map<std::string, Use> out;
  std::map<std::string, bool> trusted; // manifest object -> the save is trusted
  for (const auto& m : saves) {
    out[m.object];
    trusted[m.object] = m.trusted;
  }
  std::map<std::string, std::set<std::string>> days;
  for (const auto& o : listing) {
    auto marker = parse_use_marker(o.key);
    if (!marker) {
      continue;
    }
    auto it = out.find(marker->manifest);
    if (it == out.end()) {
      continue;
    }
    it->second.markers.push_back(o.key);
    bool counts = o.size <= k_max_use_marker &&
                  marker->day <= utc_day(static_cast<double>(o.mtime)) &&
                  (marker->trusted || !trusted[marker->manifest]);
    if (counts) {
      it->second.last = std::max(it->second.last, static_cast<double>(o.mtime));
      days[marker->manifest].insert(marker->day);
    }
  }
  for (auto& [object, use] : out) {
    use.days = days[object].size();
  }
  return out;
}

std::vector<ObjectInfo> orphan_use_markers(const std::vector<ObjectInfo>& listing) {
  std::set<std::string> listed;
  for (const auto& o : listing) {
    listed.insert(o.key);
  }
  std::vector<ObjectInfo> out;
  for (const auto& o : listing) {
    if (auto marker = parse_use_marker(o.key); marker && listed.count(marker->manifest) == 0) {
      out.push_back(o);
    }
  }
  return out;
}

} // namespace ephemera::store
