#include "store/selection.hpp"

#include "util/log.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <set>

namespace ephemera::store {

namespace {

constexpr std::string_view k_json = ".json";
constexpr std::string_view k_archive = ".tar.zst";
constexpr std::string_view k_markers = "v1/_invalidations/";

bool ends_with(std::string_view s, std::string_view tail) {
  return s.size() > tail.size() && s.substr(s.size() - tail.size()) == tail;
}

bool starts_with(std::string_view s, std::string_view head) {
  return s.substr(0, head.size()) == head;
}

// The last component of key below folder, or "" when key is not directly below it.
std::string_view leaf_below(std::string_view key, std::string_view folder) {
  if (!starts_with(key, folder)) {
    return {};
  }
  auto leaf = key.substr(folder.size());
  return leaf.find('/') == std::string_view::npos ? leaf : std::string_view{};
}

} // namespace

std::string own_archive(const std::string& manifest_object) {
  if (!ends_with(manifest_object, k_json)) {
    return "";
  }
  return manifest_object.substr(0, manifest_object.size() - k_json.size()) + std::string(k_archive);
}

std::string own_manifest(const std::string& archive_object) {
  if (!ends_with(archive_object, k_archive)) {
    return "";
  }
  return archive_object.substr(0, archive_object.size() - k_archive.size()) + std::string(k_json);
}

bool marker_in_place(const Invalidation& inv) {
  if (inv.repository.empty() || !parse_rfc3339(inv.created) || !valid_key(inv.object)) {
    return false;
  }
  auto leaf = leaf_below(inv.object, std::string(k_markers) + sanitise(inv.repository) + "/");
  return ends_with(leaf, k_json);
}

std::vector<ObjectInfo> orphan_archives(const std::vector<ObjectInfo>& listing,
                                        const std::vector<Manifest>& named) {
  std::set<std::string> keys;
  for (const auto& o : listing) {
    keys.insert(o.key);
  }
  for (const auto& m : named) {
    keys.insert(own_manifest(m.archive)); // as if its own manifest were there
  }
  std::vector<ObjectInfo> out;
  for (const auto& o : listing) {
    auto manifest = own_manifest(o.key);
    if (!manifest.empty() && keys.count(manifest) == 0) {
      out.push_back(o);
    }
  }
  return out;
}

Selection::Selection(const std::vector<Manifest>& saves, const std::vector<Invalidation>& markers)
    : m_markers(markers) {
  for (const auto& m : saves) {
    if (m.trusted) {
      auto [it, fresh] = m_trusted_epoch.emplace(Stanza{m.repository, m.target, m.name}, m.epoch);
      it->second = fresh ? m.epoch : std::max(it->second, m.epoch);
    } else {
      auto [it, fresh] =
          m_untrusted_epoch.emplace(std::tuple{m.repository, m.target, m.name, m.origin}, m.epoch);
      it->second = fresh ? m.epoch : std::max(it->second, m.epoch);
    }
    if (hidden_by(m) == nullptr) {
      m_groups[Group{m.repository, m.target, m.name, m.epoch, m.key, m.branch, m.trusted, m.origin}]
          .push_back(&m);
    }
  }
  for (auto& [_, group] : m_groups) {
    std::sort(group.begin(), group.end(),
              [](const Manifest* a, const Manifest* b) { return a->later_than(*b); });
    for (size_t i = 0; i < group.size(); ++i) {
      m_rank.emplace(group[i]->object, std::pair{&group, i});
    }
  }
}

const Invalidation* Selection::hidden_by(const Manifest& m) const {
  for (const auto& inv : m_markers) {
    if (inv.covers(m)) {
      return &inv;
    }
  }
  return nullptr;
}

const Manifest* Selection::newer(const Manifest& m, size_t n) const {
  auto it = m_rank.find(m.object);
  if (it == m_rank.end() || n == 0 || n > it->second.second) {
    return nullptr;
  }
  return (*it->second.first)[it->second.second - n];
}

Verdict Selection::judge(const Manifest& m) const {
  Verdict v;
  if (const auto* inv = hidden_by(m)) {
    v.standing = Standing::invalidated;
    v.marker = inv;
    v.why = fmt::format("invalidated at {}{}", util::printable(inv->created),
                        inv->reason.empty() ? "" : ": " + util::printable(inv->reason));
    return v;
  }
  int64_t current = m.epoch;
  if (auto it = m_trusted_epoch.find(Stanza{m.repository, m.target, m.name});
      it != m_trusted_epoch.end()) {
    current = std::max(current, it->second);
  }
  if (!m.trusted) {
    auto it = m_untrusted_epoch.find(std::tuple{m.repository, m.target, m.name, m.origin});
    if (it != m_untrusted_epoch.end()) {
      current = std::max(current, it->second);
    }
  }
  if (current > m.epoch) {
    v.standing = Standing::old_epoch;
    v.current_epoch = current;
    v.why = fmt::format("old epoch: e{} is current for this stanza", current);
    return v;
  }
  if (auto it = m_rank.find(m.object); it != m_rank.end() && it->second.second > 0) {
    v.standing = Standing::superseded;
    v.by = it->second.first->front();
    v.newer = it->second.second;
    v.why = fmt::format("superseded by the save of {} (job '{}')", util::printable(v.by->created),
                        util::printable(v.by->job_id));
  }
  return v;
}

} // namespace ephemera::store
