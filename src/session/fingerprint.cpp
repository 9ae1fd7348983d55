#include "session/fingerprint.hpp"

#include "session/layout.hpp"
#include "util/sha256.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <sys/stat.h>
#include <unordered_map>

namespace ephemera::session {

std::string fingerprint(const rules::WalkResult& walked, bool content_addressed) {
  util::Sha256 h;
  const bool mtimes = !content_addressed;
  for (const auto& e : walked.entries) {
    if (content_addressed && e.type == rules::EntryType::directory) {
      continue;
    }
    h.update(fmt::format("{}\t{}\t{}\t{}\t{}\t{}\t{}\n", rules::folder(e.anchor), e.rel.size(),
                         static_cast<int>(e.type), e.size, mtimes ? e.mtime_ns : 0, e.mode,
                         e.link_target.size()));
    h.update(e.rel);
    h.update(e.link_target);
  }
  return h.finish_hex();
}

bool starts_absent(const rules::RuleSet& rules, const rules::Anchors& anchors) {
  for (const auto& [anchor, rel] : rules.starts()) {
    struct stat st {};
    if (::lstat(anchors.host_path(anchor, rel).c_str(), &st) == 0 || errno != ENOENT) {
      return false;
    }
  }
  return true;
}

std::optional<rules::WalkResult> WrittenSet::finish() {
  if (!m_links.empty()) {
    std::unordered_map<std::string, size_t> files;
    for (size_t i = 0; i < m_out.entries.size(); ++i) {
      const auto& e = m_out.entries[i];
      if (e.type == rules::EntryType::file) {
        files.emplace(entry_name(e.anchor, e.rel), i);
      }
    }
    for (const auto& [at, target] : m_links) {
      auto it = files.find(target);
      if (it == files.end()) {
        return std::nullopt;
      }
      auto& link = m_out.entries[at];
      const auto& file = m_out.entries[it->second];
      link.size = file.size;
      link.mode = file.mode;
      link.mtime_ns = file.mtime_ns;
    }
  }
  rules::sort_entries(m_out.entries, m_anchors);
  return std::move(m_out);
}

void WrittenSet::add(const archive::Written& w) {
  auto where = split_entry_name(w.name);
  if (!where) {
    return; // never admitted by the restore's confinement
  }
  auto& [anchor, rel] = *where;
  // A walk reports the directories the rules select, not the parents they pass through.
  if (w.type == archive::EntryType::directory && !m_rules.selects(anchor, rel)) {
    return;
  }
  if (!w.hardlink.empty()) {
    m_links.emplace_back(m_out.entries.size(), std::string(w.hardlink));
  }
  rules::Entry e;
  e.anchor = anchor;
  e.rel = std::move(rel);
  e.type = w.type;
  e.size = w.size;
  e.mode = w.mode;
  e.mtime_ns = w.mtime_ns;
  e.link_target = std::string(w.link_target);
  m_out.entries.push_back(std::move(e));
}

} // namespace ephemera::session
