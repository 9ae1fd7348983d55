#include "session/key_files.hpp"

#include "policy/policy.hpp"
#include "rules/rules.hpp"
#include "util/fs.hpp"
#include "util/log.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <sys/stat.h>
#include <unistd.h>

namespace ephemera::session {

namespace {

namespace fs = std::filesystem;

// The name a matched file has in the digest: as a rule naming it would be written, so a
// plain path hashes exactly as it did before key files took patterns.
std::string digest_name(rules::Anchor anchor, const std::string& rel) {
  switch (anchor) {
  case rules::Anchor::root:
    return "/" + rel;
  case rules::Anchor::home:
    return "~/" + rel;
  case rules::Anchor::work:
    break;
  }
  return rel;
}

bool is_literal(const rules::Rule& r) {
  return r.pattern.find_first_of("*?[") == std::string::npos;
}

struct Match {
  std::string name;    // digest_name
  std::string visible; // job-visible absolute, for messages
  fs::path host;
};

class Hasher {
public:
  explicit Hasher(KeyFiles& out) : m_out(out) {}

  // Streams the file at fd through the digest in chunks, bounded by k_max_key_bytes.
  void file(const Match& m, int fd) {
    util::Fd closer(fd);
    std::string shown = util::printable(m.visible);
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      throw util::Error(fmt::format("key file '{}': {}", shown, std::strerror(errno)));
    }
    auto size = static_cast<uint64_t>(st.st_size);
    if (m_out.bytes + size > k_max_key_bytes) {
      throw util::Error(fmt::format(
          "key_files match more than {} GiB of files (at '{}'): the key is not computed; "
          "narrow the patterns to the lock files that decide what the stanza holds",
          k_max_key_bytes >> 30, shown));
    }
    m_digest.content(m.name, size);
    uint64_t read = 0;
    std::array<char, 1 << 16> buf{};
    for (;;) {
      ssize_t n = ::read(fd, buf.data(), buf.size());
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n < 0) {
        throw util::Error(fmt::format("key file '{}': {}", shown, std::strerror(errno)));
      }
      if (n == 0) {
        break;
      }
      read += static_cast<uint64_t>(n);
      if (read > size) {
        break;
      }
      m_digest.update(std::string_view(buf.data(), static_cast<size_t>(n)));
    }
    if (read != size) {
      throw util::Error(fmt::format("key file '{}' changed while it was read", shown));
    }
    m_out.bytes += size;
    m_out.files.push_back(m.name);
  }

  void missing(const std::string& pattern) { m_digest.missing(pattern); }
  void probe(const std::string& command, const std::string& output) {
    m_digest.content(command, output.size());
    m_digest.update(output);
  }
  std::string key(const std::string& cache_key) { return m_digest.key(cache_key); }

private:
  KeyFiles& m_out;
  policy::KeyDigest m_digest;
};

// Opens a matched file for reading: a regular file, or a symlink followed to one; never a
// fifo or a device (which would block or never end). -1 when it does not exist.
int open_match(const Match& m) {
  try {
    return util::open_regular(m.host, true);
  } catch (const util::Error& e) {
    throw util::Error(
        fmt::format("key file '{}': {}", util::printable(m.visible), util::printable(e.what())));
  }
}

std::vector<rules::Rule> parse_patterns(const jobfile::PersistSpec& spec) {
  std::vector<rules::Rule> out;
  for (const auto& f : spec.key_files) {
    try {
      out.push_back(rules::parse_rule(f.value));
    } catch (const rules::RuleError& e) {
      throw util::Error(
          fmt::format("{}: key_files '{}': {}", f.pos.str(), util::printable(f.value), e.reason()));
    }
  }
  return out;
}

std::string unmatched_message(const jobfile::PersistSpec& spec, const std::string& where,
                              const std::vector<std::string>& patterns) {
  std::string list;
  for (const auto& p : patterns) {
    list += (list.empty() ? "'" : ", '") + util::printable(p) + "'";
  }
  if (spec.preset_key_files) {
    return fmt::format("persist '{}': none of preset '{}''s key files ({}) is in {}: the key "
                       "depends on none of them (is the job running from another directory?)",
                       spec.name.value, spec.preset.value, list, util::printable(where));
  }
  return fmt::format("persist '{}': key_files {} matches nothing in {}: the key does not depend "
                     "on it (a typo, or the job running from another directory?)",
                     spec.name.value, list, util::printable(where));
}

} // namespace

KeyFiles compute_key(const jobfile::PersistSpec& spec, const rules::Anchors& anchors) {
  KeyFiles out;
  Hasher hasher(out);
  auto patterns = parse_patterns(spec);
  std::vector<size_t> unmatched; // indexes into spec.key_files
  if (!patterns.empty()) {
    bool any_include = std::any_of(patterns.begin(), patterns.end(),
                                   [](const rules::Rule& r) { return !r.exclude; });
    if (!any_include) {
      throw util::Error(fmt::format("{}: key_files has only '!' patterns: nothing to hash",
                                    spec.key_files.front().pos.str()));
    }
    auto set = rules::RuleSet::compile(patterns);
    auto walked = rules::walk(set, anchors);
    for (const auto& w : walked.warnings) {
      out.warnings.push_back({util::Severity::warning, spec.pos,
                              fmt::format("persist '{}': key_files: {}", spec.name.value, w)});
    }
    std::vector<Match> matches;
    for (const auto& e : walked.entries) {
      if (e.type == rules::EntryType::file || e.type == rules::EntryType::symlink) {
        matches.push_back({digest_name(e.anchor, e.rel), anchors.visible_path(e.anchor, e.rel),
                           anchors.host_path(e.anchor, e.rel)});
      }
    }
    // A plain path the walk did not report may still name something: a fifo (never hashed,
    // an error naming it), or a file below a symlinked directory (followed, as before key
    // files took patterns).
    for (size_t i = 0; i < patterns.size(); ++i) {
      const auto& r = patterns[i];
      if (r.exclude || walked.rule_hits[i] > 0) {
        continue;
      }
      if (is_literal(r) && !r.pattern.empty()) {
        Match m{digest_name(r.anchor, r.pattern), anchors.visible_path(r.anchor, r.pattern),
                anchors.host_path(r.anchor, r.pattern)};
        int fd = open_match(m);
        if (fd >= 0) {
          ::close(fd);
          matches.push_back(std::move(m));
          continue;
        }
      }
      unmatched.push_back(i);
    }
    std::sort(matches.begin(), matches.end(),
              [](const Match& a, const Match& b) { return a.name < b.name; });
    matches.erase(std::unique(matches.begin(), matches.end(),
                              [](const Match& a, const Match& b) { return a.name == b.name; }),
                  matches.end());
    if (matches.size() > k_max_key_files) {
      throw util::Error(fmt::format(
          "key_files match {} files, more than the {} a key may hash: the key is not computed; "
          "narrow the patterns to the lock files that decide what the stanza holds",
          matches.size(), k_max_key_files));
    }
    for (const auto& m : matches) {
      int fd = open_match(m);
      if (fd < 0) {
        throw util::Error(fmt::format("key file '{}' disappeared while the key was computed",
                                      util::printable(m.visible)));
      }
      hasher.file(m, fd);
    }
    for (size_t i : unmatched) {
      hasher.missing(spec.key_files[i].value);
    }
  }
  // A preset's key files are each optional (rust-toolchain.toml is often absent): warn only
  // when none of them is there.
  bool warn = spec.preset_key_files ? out.files.empty() && !unmatched.empty() : !unmatched.empty();
  if (warn) {
    std::vector<std::string> names;
    for (size_t i : unmatched) {
      names.push_back(spec.key_files[i].value);
    }
    const auto& first = spec.key_files[unmatched.front()];
    if (spec.preset_key_files) {
      out.warnings.push_back(
          {util::Severity::warning, first.pos, unmatched_message(spec, anchors.work, names)});
    } else {
      for (size_t i : unmatched) {
        const auto& f = spec.key_files[i];
        out.warnings.push_back(
            {util::Severity::warning, f.pos,
             unmatched_message(spec, anchors.visible(patterns[i].anchor), {f.value})});
      }
    }
  }
  for (const auto& [command, output] : spec.probe_outputs) {
    hasher.probe(command, output);
  }
  out.key = hasher.key(spec.cache_key.value);
  return out;
}

} // namespace ephemera::session
