#include "rules/walk.hpp"

#include "util/fs.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
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

fs::path Anchors::host(Anchor a) const {
  return util::rebase(root, visible(a));
}

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

// Compares a1 + a2 with b1 + b2 as std::string would, without concatenating.
int compare_joined(std::string_view a1, std::string_view a2, std::string_view b1,
                   std::string_view b2) {
  std::string_view a = a1;
  std::string_view b = b1;
  bool a_last = a2.empty();
  bool b_last = b2.empty();
  while (true) {
    if (a.empty() && !a_last) {
      a = a2;
      a_last = true;
    }
    if (b.empty() && !b_last) {
      b = b2;
      b_last = true;
    }
    if (a.empty() || b.empty()) {
      return a.empty() ? (b.empty() ? 0 : -1) : 1;
    }
    size_t n = std::min(a.size(), b.size());
    if (int c = a.substr(0, n).compare(b.substr(0, n)); c != 0) {
      return c;
    }
    a.remove_prefix(n);
    b.remove_prefix(n);
  }
}

} // namespace

std::string Anchors::host_path(Anchor a, const std::string& rel) const {
  return rel.empty() ? host(a).string() : join(host(a).string(), rel);
}

std::string Anchors::visible_path(Anchor a, const std::string& rel) const {
  return rel.empty() ? visible(a) : join(visible(a), rel);
}

namespace {

class Walker {
public:
  Walker(const RuleSet& rules, const Anchors& anchors, WalkResult& out)
      : m_rules(rules), m_anchors(anchors), m_out(out),
        m_single_include(std::count_if(rules.rules().begin(), rules.rules().end(),
                                       [](const Rule& r) { return !r.exclude; }) == 1),
        m_no_excludes(std::none_of(rules.rules().begin(), rules.rules().end(),
                                   [](const Rule& r) { return r.exclude; })) {}

  // The anchor's directory is opened by its path (the anchors are the agent's
  // configuration: a $HOME that is a symlink it set up is followed); each component of the
  // rule's literal prefix below it is opened by name with O_NOFOLLOW, so a symlink there
  // (target -> /elsewhere for the rule 'target/debug') is a warning, and nothing below it
  // is taken.
  void start(Anchor anchor, const std::string& rel) {
    m_anchor = anchor;
    m_base = m_anchors.host(anchor).string();
    auto selected = m_rules.selects(anchor, rel);
    struct stat st {};
    if (rel.empty()) {
      if (::stat(m_base.c_str(), &st) != 0) {
        if (errno != ENOENT && errno != ENOTDIR) {
          warn(m_base, "unable to read", errno);
        }
        return;
      }
      visit(std::string(rel), "", st, AT_FDCWD, m_base, selected);
      return;
    }
    int fd = ::open(m_base.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
      if (errno != ENOENT && errno != ENOTDIR) {
        warn(m_base, "unable to read", errno);
      }
      return;
    }
    std::string parent_host = m_base;
    size_t start = 0;
    while (true) {
      size_t slash = rel.find('/', start);
      std::string part =
          rel.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
      if (slash == std::string::npos) {
        if (::fstatat(fd, part.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
          visit(std::string(rel), parent_host, st, fd, part, selected);
        } else if (errno != ENOENT && errno != ENOTDIR) {
          warn(join(parent_host, part), "unable to read", errno);
        }
        break;
      }
      start = slash + 1;
      if (!enter(fd, parent_host, part)) {
        break;
      }
    }
    ::close(fd);
  }

private:
  void warn(const std::string& path, const char* what, int err) {
    m_out.warnings.push_back(fmt::format("{} {}: {}", what, path, std::strerror(err)));
  }

  // Replaces fd (a directory at host) by its child part, never through a symlink; false
  // (fd closed, a warning for anything but absence) when that is not a directory.
  bool enter(int& fd, std::string& host, const std::string& part) {
    int next = ::openat(fd, part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int err = errno;
    struct stat st {};
    bool link = next < 0 && ::fstatat(fd, part.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                S_ISLNK(st.st_mode);
    ::close(fd);
    fd = next;
    host = join(host, part);
    if (next >= 0) {
      return true;
    }
    if (link) {
      m_out.warnings.push_back(fmt::format("{} is a symlink in a rule's literal prefix: it is not "
                                           "followed, and nothing below it is saved",
                                           host));
    } else if (err != ENOENT && err != ENOTDIR) {
      warn(host, "unable to read", err);
    }
    return false;
  }

  // parent_fd and name reach the entry without resolving its whole path again; host is
  // the parent's path on the host, for messages only.
  void add(std::string rel, const std::string& host, const struct stat& st, EntryType type,
           size_t rule, int parent_fd, const std::string& name) {
    Entry e;
    e.anchor = m_anchor;
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
        warn(join(host, name), "unable to read the link", errno);
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
    e.rel = std::move(rel);
    m_out.entries.push_back(std::move(e));
  }

  // parent_host is the parent directory's path on the host ("" when name is a whole path).
  void visit(std::string rel, const std::string& parent_host, const struct stat& st, int parent_fd,
             const std::string& name, std::optional<size_t> selected) {
    if (S_ISDIR(st.st_mode)) {
      std::string host = join(parent_host, name);
      if (selected && !rel.empty()) {
        add(rel, parent_host, st, EntryType::directory, *selected, parent_fd, name);
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
      add(std::move(rel), parent_host, st, EntryType::file, *selected, parent_fd, name);
    } else if (S_ISLNK(st.st_mode)) {
      add(std::move(rel), parent_host, st, EntryType::symlink, *selected, parent_fd, name);
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

  void descend(const std::string& rel, const std::string& host, int parent_fd,
               const std::string& name, std::optional<size_t> all_below) {
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
    std::sort(children.begin(), children.end(),
              [](const Child& a, const Child& b) { return a.name < b.name; });
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
      visit(std::move(child_rel), host, st, fd, c.name, selected);
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
};

} // namespace

WalkResult walk(const RuleSet& rules, const Anchors& anchors) {
  WalkResult out;
  out.rule_hits.assign(rules.rules().size(), 0);
  Walker walker(rules, anchors, out);
  for (const auto& [anchor, rel] : rules.starts()) {
    walker.start(anchor, rel);
  }
  sort_entries(out.entries, anchors);
  return out;
}

void sort_entries(std::vector<Entry>& entries, const Anchors& anchors) {
  // By job-visible path (the anchor's visible directory, '/', the relative path), compared
  // without building it: the same anchor compares by relative path alone.
  std::array<std::string, 3> prefix; // each anchor's visible directory with a trailing '/'
  std::array<std::string, 3> self;   // and without it: the anchor's own entry
  for (auto a : {Anchor::root, Anchor::home, Anchor::work}) {
    auto i = static_cast<size_t>(a);
    self.at(i) = anchors.visible(a);
    prefix.at(i) = self.at(i).empty() || self.at(i).back() != '/' ? self.at(i) + "/" : self.at(i);
  }
  auto parts = [&](const Entry& e) {
    auto i = static_cast<size_t>(e.anchor);
    return e.rel.empty() ? std::pair<std::string_view, std::string_view>{self.at(i), {}}
                         : std::pair<std::string_view, std::string_view>{prefix.at(i), e.rel};
  };
  std::sort(entries.begin(), entries.end(), [&](const Entry& a, const Entry& b) {
    if (a.anchor == b.anchor) {
      return a.rel < b.rel; // "" (the anchor itself) first, as its path is a prefix of the rest
    }
    auto [a1, a2] = parts(a);
    auto [b1, b2] = parts(b);
    int c = compare_joined(a1, a2, b1, b2);
    return c != 0 ? c < 0 : a.anchor < b.anchor; // a path under two anchors: in anchor order
  });
  // Start points of one anchor may overlap: keep each path of an anchor once. A path reached
  // from two anchors (a root rule reaching into $HOME) stays under both, as the rules say.
  entries.erase(std::unique(entries.begin(), entries.end(),
                            [](const Entry& a, const Entry& b) {
                              return a.anchor == b.anchor && a.rel == b.rel;
                            }),
                entries.end());
}

} // namespace ephemera::rules
