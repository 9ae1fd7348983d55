#include "rules/walk.hpp"

#include "util/fs.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ephemera::rules {

namespace fs = std::filesystem;

std::string Anchors::visible(Anchor a) const {
  switch (a) {
  case Anchor::root:
    return "/";
  case Anchor::home:
    return home;
  case Anchor::work:
    return work;
  }
  return "/";
}

fs::path Anchors::host(Anchor a) const { return util::rebase(root, visible(a)); }

namespace {

std::string join(const std::string& a, const std::string& b) {
  if (a.empty()) {
    return b;
  }
  if (a.back() == '/') {
    return a + b;
  }
  return a + "/" + b;
}

class Walker {
public:
  Walker(const RuleSet& rules, const Anchors& anchors, WalkResult& out)
      : m_rules(rules), m_anchors(anchors), m_out(out) {}

  void start(Anchor anchor, const std::string& rel) {
    m_anchor = anchor;
    m_base = m_anchors.host(anchor).string();
    m_visible_base = m_anchors.visible(anchor);
    std::string host = rel.empty() ? m_base : join(m_base, rel);
    struct stat st {};
    if (::lstat(host.c_str(), &st) != 0) {
      if (errno != ENOENT && errno != ENOTDIR) {
        warn(host, "unable to read", errno);
      }
      return;
    }
    visit(rel, host, st);
  }

private:
  void warn(const std::string& path, const char* what, int err) {
    m_out.warnings.push_back(fmt::format("{} {}: {}", what, path, std::strerror(err)));
  }

  void add(const std::string& rel, const std::string& host, const struct stat& st, EntryType type,
           size_t rule) {
    Entry e;
    e.anchor = m_anchor;
    e.rel = rel;
    e.host = host;
    e.visible = rel.empty() ? m_visible_base : join(m_visible_base, rel);
    e.type = type;
    e.size = type == EntryType::file ? static_cast<uint64_t>(st.st_size) : 0;
    e.mode = st.st_mode & 07777;
    e.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    e.dev = st.st_dev;
    e.ino = st.st_ino;
    e.nlink = st.st_nlink;
    e.rule = rule;
    if (type == EntryType::symlink) {
      std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
      ssize_t n = ::readlink(host.c_str(), target.data(), target.size());
      if (n < 0) {
        warn(host, "unable to read the link", errno);
        return;
      }
      target.resize(static_cast<size_t>(n));
      e.link_target = std::move(target);
    }
    if (type != EntryType::directory) {
      for (size_t r : m_rules.matching_includes(m_anchor, rel)) {
        ++m_out.rule_hits[r];
      }
    }
    m_out.entries.push_back(std::move(e));
  }

  void visit(const std::string& rel, const std::string& host, const struct stat& st) {
    auto selected = m_rules.selects(m_anchor, rel);
    if (S_ISDIR(st.st_mode)) {
      if (selected && !rel.empty()) {
        add(rel, host, st, EntryType::directory, *selected);
      }
      if (m_rules.may_contain(m_anchor, rel)) {
        descend(rel, host);
      }
      return;
    }
    if (!selected) {
      return;
    }
    if (S_ISREG(st.st_mode)) {
      add(rel, host, st, EntryType::file, *selected);
    } else if (S_ISLNK(st.st_mode)) {
      add(rel, host, st, EntryType::symlink, *selected);
    }
    // Sockets, fifos and devices are never persisted.
  }

  void descend(const std::string& rel, const std::string& host) {
    int fd = ::open(host.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      warn(host, "unable to read the directory", errno);
      return;
    }
    DIR* dir = ::fdopendir(fd);
    if (dir == nullptr) {
      ::close(fd);
      warn(host, "unable to read the directory", errno);
      return;
    }
    std::vector<std::string> names;
    while (auto* d = ::readdir(dir)) {
      if (std::strcmp(d->d_name, ".") == 0 || std::strcmp(d->d_name, "..") == 0) {
        continue;
      }
      names.emplace_back(d->d_name);
    }
    std::sort(names.begin(), names.end());
    for (const auto& name : names) {
      struct stat st {};
      if (::fstatat(::dirfd(dir), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        warn(join(host, name), "unable to stat", errno);
        continue;
      }
      visit(join(rel, name), join(host, name), st);
    }
    ::closedir(dir);
  }

  const RuleSet& m_rules;
  const Anchors& m_anchors;
  WalkResult& m_out;
  Anchor m_anchor = Anchor::work;
  std::string m_base;
  std::string m_visible_base;
};

} // namespace

WalkResult walk(const RuleSet& rules, const Anchors& anchors) {
  WalkResult out;
  out.rule_hits.assign(rules.rules().size(), 0);
  Walker walker(rules, anchors, out);
  for (const auto& [anchor, rel] : rules.starts()) {
    walker.start(anchor, rel);
  }
  std::sort(out.entries.begin(), out.entries.end(),
            [](const Entry& a, const Entry& b) { return a.visible < b.visible; });
  // Anchors may overlap (a root rule reaching into $HOME): keep each host path once.
  out.entries.erase(std::unique(out.entries.begin(), out.entries.end(),
                                [](const Entry& a, const Entry& b) {
                                  return a.visible == b.visible && a.anchor == b.anchor;
                                }),
                    out.entries.end());
  return out;
}

} // namespace ephemera::rules
