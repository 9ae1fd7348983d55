#include "session/layout.hpp"

#include <fmt/format.h>

#include <array>

namespace ephemera::session {

namespace {

constexpr std::array<rules::Anchor, 3> k_anchors = {rules::Anchor::root, rules::Anchor::home,
                                                    rules::Anchor::work};

std::optional<rules::Anchor> anchor_of_folder(std::string_view folder) {
  for (auto a : k_anchors) {
    if (folder == rules::folder(a)) {
      return a;
    }
  }
  return std::nullopt;
}

bool safe_relative(std::string_view rel) {
  if (rel.empty() || rel.front() == '/') {
    return false;
  }
  size_t start = 0;
  while (start <= rel.size()) {
    size_t end = rel.find('/', start);
    auto part = rel.substr(start, end == std::string_view::npos ? rel.npos : end - start);
    if (part.empty() || part == "." || part == "..") {
      return false;
    }
    if (end == std::string_view::npos) {
      break;
    }
    start = end + 1;
  }
  return true;
}

} // namespace

std::string entry_name(rules::Anchor anchor, std::string_view rel) {
  return fmt::format("{}/{}", rules::folder(anchor), rel);
}

std::optional<std::pair<rules::Anchor, std::string>> split_entry_name(std::string_view name) {
  auto slash = name.find('/');
  if (slash == std::string_view::npos) {
    return std::nullopt;
  }
  auto anchor = anchor_of_folder(name.substr(0, slash));
  std::string rel(name.substr(slash + 1));
  while (!rel.empty() && rel.back() == '/') {
    rel.pop_back();
  }
  if (!anchor || !safe_relative(rel)) {
    return std::nullopt;
  }
  return std::make_pair(*anchor, std::move(rel));
}

std::vector<archive::PackItem> pack_items(const rules::WalkResult& walked,
                                          const rules::RuleSet& rules,
                                          const rules::Anchors& anchors) {
  std::array<std::string, 3> base; // each anchor's host directory, with a trailing '/'
  for (auto a : k_anchors) {
    auto& b = base.at(static_cast<size_t>(a));
    b = anchors.host_path(a, "");
    if (b.empty() || b.back() != '/') {
      b += '/';
    }
  }
  std::vector<archive::PackItem> items;
  items.reserve(walked.entries.size());
  for (const auto& e : walked.entries) {
    if (e.rel.empty()) {
      continue; // the anchor itself is never an entry
    }
    archive::PackItem item;
    item.name = entry_name(e.anchor, e.rel);
    item.source = base.at(static_cast<size_t>(e.anchor)) + e.rel;
    item.type = e.type;
    item.size = e.size;
    item.mode = e.mode;
    item.mtime_ns = e.mtime_ns;
    item.dev = e.dev;
    item.ino = e.ino;
    item.nlink = e.nlink;
    item.link_target = e.link_target;
    item.may_change = rules.rules().at(e.rule).may_change;
    items.push_back(std::move(item));
  }
  return items;
}

archive::Resolve confinement(const rules::RuleSet& rules, const rules::Anchors& anchors) {
  // Each anchor's host directory, computed once rather than for each of the entries.
  std::array<std::filesystem::path, 3> hosts;
  for (auto a : k_anchors) {
    hosts.at(static_cast<size_t>(a)) = anchors.host(a);
  }
  return [&rules, hosts](std::string_view name,
                         archive::EntryType /*type*/) -> std::optional<archive::Destination> {
    auto where = split_entry_name(name);
    if (!where) {
      return std::nullopt;
    }
    auto& [anchor, rel] = *where;
    // The parents a selected entry needs are made by the unpack with a default mode, and
    // existing ones are left as they are; save never archives them.
    if (!rules.selects(anchor, rel)) {
      return std::nullopt;
    }
    return archive::Destination{hosts.at(static_cast<size_t>(anchor)), std::move(rel)};
  };
}

bool reaches(const rules::RuleSet& rules, const rules::Anchors& anchors, const std::string& base,
             const std::string& rel) {
  for (auto a : k_anchors) {
    std::string host = anchors.host(a).string();
    while (host.size() > 1 && host.back() == '/') {
      host.pop_back();
    }
    if (host == base && rules.may_contain(a, rel)) {
      return true;
    }
  }
  return false;
}

} // namespace ephemera::session
