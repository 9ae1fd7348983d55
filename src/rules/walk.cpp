#include "rules/walk.hpp"

#include "util/fs.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
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
      : m_rules(rules), m_anchors(anchors), m_out(out),
        m_single_include(std::count_if(rules.rules().begin(), rules.rules().end(),
                                       [](const Rule& r) { return !r.exclude; }) == 1),
        m_no_excludes(std::none_of(rules.rules().begin(), rules.rules().end(),
                                   [](const Rule& r) { return r.exclude; })) {}

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
    visit(rel, host, st, AT_FDCWD, host, m_rules.selects(anchor, rel));
  }

private:
  void warn(const std::string& path, const char* what, int err) {
    m_out.warnings.push_back(fmt::format("{} {}: {}", what, path, std::strerror(err)));
  }

  void add(const std::string& rel, const std::string& host, const struct stat& st, EntryType type,
           size_t rule, int parent_fd, const std::string& name) {
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
      ssize_t n = ::readlinkat(parent_fd, name.c_str(), target.data(), target.size());
      if (n < 0) {
        warn(host, "unable to read the link", errno);
        return;
      }
      target.resize(static_cast<size_t>(n));
      e.link_target = std::move(target);
    }
    if (type != EntryType::directory) {
      if (m_single_include) { // the rule that selected it is the only one that can match
        ++m_out.rule_hits[rule];
      } else {
        for (size_t r : m_rules.matching_includes(m_anchor, rel)) {
          ++m_out.rule_hits[r];
        }
      }
    }
    m_out.entries.push_back(std::move(e));
  }

  // parent_fd and name reach the entry without resolving its whole path again.
  void visit(const std::string& rel, const std::string& host, const struct stat& st, int parent_fd,
             const std::string& name, std::optional<size_t> selected) {
    if (S_ISDIR(st.st_mode)) {
      if (selected && !rel.empty()) {
        add(rel, host, st, EntryType::directory, *selected, parent_fd, name);
      }
      // Every include rule selects its match and everything below it: with one include
      // rule and no '!', all below a selected directory is selected, no matching needed.
      if (selected && m_single_include && m_no_excludes) {
        descend(rel, host, parent_fd, name, selected);
      } else if (m_rules.may_contain(m_anchor, rel)) {
        descend(rel, host, parent_fd, name, std::nullopt);
      }
      return;
    }
    if (!selected) {
      return;
    }
    if (S_ISREG(st.st_mode)) {
      add(rel, host, st, EntryType::file, *selected, parent_fd, name);
    } else if (S_ISLNK(st.st_mode)) {
      add(rel, host, st, EntryType::symlink, *selected, parent_fd, name);
    }
    // Sockets, fifos and devices are never persisted.
  }

  struct Child {
    std::string name;
    unsigned char type;
  };

  // Every name in the directory with its d_type, read with getdents64 into one buffer.
  bool read_names(int fd, const std::string& host, std::vector<Child>& out) {
    alignas(8) static thread_local char buf[64 * 1024];
    while (true) {
      long n = ::syscall(SYS_getdents64, fd, buf, sizeof buf);
      if (n < 0) {
        warn(host, "unable to read the directory", errno);
        return false;
      }
      if (n == 0) {
        return true;
      }
      for (long pos = 0; pos < n;) {
        struct Dirent64 {
          uint64_t ino;
          int64_t off;
          unsigned short reclen;
          unsigned char type;
          char name[1];
        };
        auto* d = reinterpret_cast<Dirent64*>(buf + pos);
        pos += d->reclen;
        if (std::strcmp(d->name, ".") == 0 || std::strcmp(d->name, "..") == 0) {
          continue;
        }
        out.push_back({d->name, d->type});
      }
    }
  }

  void descend(const std::string& rel, const std::string& host, int parent_fd, const std::string& name,
               std::optional<size_t> all_below) {
    int fd = ::openat(parent_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      warn(host, "unable to read the directory", errno);
      return;
    }
    std::vector<Child> children;
    if (!read_names(fd, host, children)) {
      ::close(fd);
      return;
    }
    std::sort(children.begin(), children.end(), [](const Child& a, const Child& b) { return a.name < b.name; });
    for (const auto& c : children) {
      std::string child_rel = join(rel, c.name);
      auto selected = all_below ? all_below : m_rules.selects(m_anchor, child_rel);
      // A file or link no rule selects needs no stat (d_type says what it is).
      if ((c.type == DT_REG || c.type == DT_LNK) && !selected) {
        continue;
      }
      struct stat st {};
      if (::fstatat(fd, c.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        warn(join(host, c.name), "unable to stat", errno);
        continue;
      }
      visit(child_rel, join(host, c.name), st, fd, c.name, selected);
    }
    ::close(fd);
  }

  const RuleSet& m_rules;
  const Anchors& m_anchors;
  WalkResult& m_out;
  bool m_single_include = false;
  bool m_no_excludes = false;
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
