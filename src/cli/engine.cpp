#include "cli/engine.hpp"

#include "archive/archive.hpp"
#include "jobfile/reader.hpp"
#include "presets/expand.hpp"
#include "rules/walk.hpp"
#include "store/catalog.hpp"
#include "store/open.hpp"
#include "store/url.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/log.hpp"
#include "util/sha256.hpp"

#include "ephemera_config.hpp"

#include <fmt/format.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sys/stat.h>
#include <unistd.h>
#include <unordered_map>

namespace ephemera::cli {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Progress of a long save or restore: a live line on a terminal, a line every five
// seconds in a log. finish() clears the live line before the summary line is printed.
class ProgressLine {
public:
  explicit ProgressLine(std::string what) : m_what(std::move(what)), m_tty(::isatty(2) == 1) {}
  ~ProgressLine() { finish(); }

  archive::ProgressFn fn() {
    return [this](const archive::Progress& p) { show(p); };
  }

  void finish() {
    if (m_live) {
      std::fprintf(stderr, "\r\033[K");
      m_live = false;
    }
  }

private:
  void show(const archive::Progress& p) {
    if (util::log::level() < util::log::Level::normal) {
      return;
    }
    double mbs = p.seconds > 0 ? static_cast<double>(p.bytes) / 1e6 / p.seconds : 0;
    std::string line = fmt::format("ephemera: {}: {} files, {:.1f} MB, {:.1f} MB/s", m_what, p.files,
                                   static_cast<double>(p.bytes) / 1e6, mbs);
    if (m_tty) {
      std::fprintf(stderr, "\r%s\033[K", line.c_str());
      m_live = true;
    } else if (p.seconds - m_last_logged >= 5) {
      m_last_logged = p.seconds;
      std::fprintf(stderr, "%s\n", line.c_str());
    }
  }

  std::string m_what;
  bool m_tty;
  bool m_live = false;
  double m_last_logged = 0;
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

rules::RuleSet compile(const jobfile::PersistSpec& stanza) {
  std::vector<rules::Rule> parsed;
  for (const auto& r : stanza.rules) {
    try {
      parsed.push_back(rules::parse_rule(r.value));
    } catch (const rules::RuleError& e) {
      throw util::InputError(r.pos, fmt::format("persist '{}': rule '{}': {} (at offset {})",
                                                stanza.name.value, e.rule(), e.reason(),
                                                e.offset()));
    }
  }
  return rules::RuleSet::compile(std::move(parsed));
}

// Paths, types, sizes, mtimes, modes and link targets of a stanza's file set.
// For a content-addressed stanza (PersistSpec::content_addressed) without mtimes and
// directories.
std::string fingerprint(const rules::WalkResult& walked, bool content_addressed = false) {
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

std::vector<archive::PackItem> pack_items(const rules::WalkResult& walked,
                                          const rules::RuleSet& rules,
                                          const rules::Anchors& anchors) {
  std::array<std::string, 3> base; // each anchor's host directory, with a trailing '/'
  for (auto a : {rules::Anchor::root, rules::Anchor::home, rules::Anchor::work}) {
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
    item.name = fmt::format("{}/{}", rules::folder(e.anchor), e.rel);
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

std::optional<rules::Anchor> anchor_of_folder(std::string_view folder) {
  for (auto a : {rules::Anchor::root, rules::Anchor::home, rules::Anchor::work}) {
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

// An archive entry's anchor and anchor-relative path ("work/a/b/" -> work, "a/b"), or
// nullopt when it names no anchor or is not a plain relative path below one.
std::optional<std::pair<rules::Anchor, std::string>> split_name(std::string_view name) {
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

// The journal's file name for a stanza: its name (a stanza name is a plain file name),
// or a digest of anything that is not.
std::string journal_name(const std::string& stanza) {
  bool plain = !stanza.empty() && stanza != "." && stanza != ".." &&
               stanza.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789._-") == std::string::npos;
  return plain ? stanza : util::sha256_hex(stanza).substr(0, 16);
}

// Whether nothing is where the rules' walk starts: then all the stanza holds after a
// restore is what the restore wrote.
bool starts_absent(const rules::RuleSet& rules, const rules::Anchors& anchors) {
  for (const auto& [anchor, rel] : rules.starts()) {
    struct stat st {};
    if (::lstat(anchors.host_path(anchor, rel).c_str(), &st) == 0 || errno != ENOENT) {
      return false;
    }
  }
  return true;
}

// The entries a restore wrote, as a walk of them would find them once it is committed.
class WrittenSet {
public:
  WrittenSet(const rules::RuleSet& rules, const rules::Anchors& anchors)
      : m_rules(rules), m_anchors(anchors) {}

  archive::WrittenFn fn() {
    return [this](const archive::Written& w) { add(w); };
  }

  // Sorted as a walk sorts, hard links carrying the size, mode and time of their file;
  // nullopt if a link names no file written (the unpack refuses those: walk then).
  std::optional<rules::WalkResult> finish() {
    if (!m_links.empty()) {
      std::unordered_map<std::string, size_t> files;
      for (size_t i = 0; i < m_out.entries.size(); ++i) {
        const auto& e = m_out.entries[i];
        if (e.type == rules::EntryType::file) {
          files.emplace(fmt::format("{}/{}", rules::folder(e.anchor), e.rel), i);
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

private:
  void add(const archive::Written& w) {
    auto where = split_name(w.name);
    if (!where) {
      return; // never admitted by the restore's resolver
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

  const rules::RuleSet& m_rules;
  const rules::Anchors& m_anchors;
  rules::WalkResult m_out;
  std::vector<std::pair<size_t, std::string>> m_links; // entry, the archive name it links to
};

// Whether a restore that failed on one candidate tries the next: its archive was missing,
// corrupt or refused, and the next save may be sound. Not when the store is unreachable or
// this machine is failing: the next would fail the same way, only later.
bool worth_another(const std::exception& e) {
  if (const auto* s = dynamic_cast<const util::StoreError*>(&e)) {
    return s->kind() == util::StoreErrorKind::not_found ||
           s->kind() == util::StoreErrorKind::permanent;
  }
  return dynamic_cast<const util::ArchiveError*>(&e) != nullptr;
}

// The warning for a candidate a restore passed over: which save, and why.
std::string passed_over(const store::Catalog& catalog, const store::Manifest& m,
                        const std::exception& e) {
  return fmt::format("passed over {} (saved {} on branch '{}'): {}", catalog.link(m), m.created,
                     util::printable(m.branch), e.what());
}

report::ArchiveInfo archive_info(const store::Catalog& catalog, const store::Manifest& m) {
  report::ArchiveInfo a;
  a.link = catalog.link(m);
  a.presigned = catalog.presigned_link(m).value_or("");
  a.sha256 = m.sha256;
  a.compressed_bytes = m.compressed_size;
  a.unpacked_bytes = m.unpacked_bytes;
  a.files = m.files;
  a.key = m.key;
  a.created = m.created;
  a.job_id = m.job_id;
  a.commit = m.commit;
  a.branch = m.branch;
  a.trusted = m.trusted;
  return a;
}

} // namespace

std::string cost_line(uint64_t files, uint64_t bytes, uint64_t compressed, double seconds) {
  double rate = seconds > 0 ? static_cast<double>(bytes) / 1e6 / seconds : 0;
  return fmt::format("{} files, {}, {} compressed, {:.2f} s, {:.1f} MB/s", files,
                     report::human_bytes(bytes), report::human_bytes(compressed), seconds, rate);
}

Session::Session(const Globals& globals, const ContextOptions& options)
    : m_globals(globals), m_options(options), m_context(make_context(options)) {
  m_anchors.root = globals.root.empty() ? fs::path("/") : fs::path(globals.root);
  m_anchors.home = home_of(options);
  m_anchors.work = workdir_of(options);
  m_state_dir = state_dir_of(globals, options);
  if (m_context.repository.empty()) {
    m_context.repository = "default";
  }
}

Session::~Session() = default;

const jobfile::JobSpec& Session::load_job() {
  if (m_options.job.empty()) {
    throw util::InputError("no job file: give --job FILE (or set EPHEMERA_JOB)");
  }
  std::optional<fs::path> persist;
  if (!m_options.persist.empty()) {
    persist = m_options.persist;
  }
  m_job = jobfile::load_job(m_options.job, persist);
  for (const auto& w : m_job.warnings) {
    util::log::write("", w.str());
  }
  for (auto& stanza : m_job.persist) {
    stanza = presets::resolve(std::move(stanza), m_anchors); // before anything is restored
  }
  for (const auto& stanza : m_job.persist) {
    compile(stanza); // a malformed rule is the author's error: exit 2 before anything runs
  }
  m_loaded = true;
  return m_job;
}

std::string Session::store_url() const {
  return m_globals.store.empty() ? store::default_store_url() : m_globals.store;
}

store::Catalog& Session::catalog() {
  if (!m_catalog) {
    m_catalog = store::open_catalog(store_url());
  }
  return *m_catalog;
}

std::string Session::key_of(const jobfile::PersistSpec& stanza) const {
  // Key files are in the job's tree, so the job decides what they are: only a regular file
  // is read (a symlink to one is followed, as a repository may hold), streamed through the
  // digest in chunks; a fifo or device is never opened, and is an error naming the path.
  policy::KeyDigest digest;
  for (const auto& f : stanza.key_files) {
    fs::path visible = f.value;
    if (f.value.rfind("~/", 0) == 0) {
      visible = fs::path(m_anchors.home) / f.value.substr(2);
    } else if (visible.is_relative()) {
      visible = fs::path(m_anchors.work) / visible;
    }
    fs::path host = util::rebase(m_anchors.root, visible.lexically_normal());
    std::string shown = util::printable(visible.string());
    int fd = -1;
    try {
      fd = util::open_regular(host, true);
    } catch (const util::Error& e) {
      throw util::Error(fmt::format("key file '{}': {}", shown, util::printable(e.what())));
    }
    if (fd < 0) {
      digest.missing(f.value);
      continue;
    }
    util::Fd closer(fd);
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      throw util::Error(fmt::format("key file '{}': {}", shown, std::strerror(errno)));
    }
    digest.content(f.value, static_cast<uint64_t>(st.st_size));
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
      if (read > static_cast<uint64_t>(st.st_size)) {
        break;
      }
      digest.update(std::string_view(buf.data(), static_cast<size_t>(n)));
    }
    if (read != static_cast<uint64_t>(st.st_size)) {
      throw util::Error(fmt::format("key file '{}' changed while it was read", shown));
    }
  }
  for (const auto& [command, output] : stanza.probe_outputs) {
    digest.content(command, output.size());
    digest.update(output);
  }
  return digest.key(stanza.cache_key.value);
}

report::Entry Session::fail(report::Entry entry, const std::string& what, const std::exception& e) {
  m_problem = true;
  entry.result = "failed";
  entry.error = e.what();
  util::log::warn("{} '{}': {} (the job goes on {})", what, entry.name, e.what(),
                  entry.phase == "post" || entry.phase == "persist" ? "without this save"
                                                                     : "cold");
  return entry;
}

report::Entry Session::restore(const jobfile::PersistSpec& stanza, const std::string& phase,
                               const std::optional<std::string>& key_override) {
  auto start = std::chrono::steady_clock::now();
  report::Entry entry;
  entry.phase = phase;
  entry.name = stanza.name.value;
  entry.acted = true;
  try {
    auto rules = compile(stanza);
    entry.key_wanted = key_override ? *key_override : key_of(stanza);
    std::vector<std::string> prefixes;
    for (const auto& p : stanza.restore_keys) {
      prefixes.push_back(p.value);
    }
    for (const auto& step : policy::lookup_steps(entry.key_wanted, prefixes)) {
      entry.looked_for.push_back(step.value);
    }
    store::LookupRequest request;
    request.repository = m_context.repository;
    request.target = m_job.target.value_or("");
    request.name = stanza.name.value;
    request.epoch = stanza.epoch.value;
    request.key = entry.key_wanted;
    request.restore_keys = prefixes;
    request.branch = m_context.branch;
    request.own_branch_only = stanza.share == jobfile::Share::branch;
    request.trusted = m_context.trusted;
    request.origin = m_context.origin;
    auto candidates = catalog().lookup(request);
    if (candidates.empty()) {
      entry.result = "miss";
      entry.seconds = seconds_since(start);
      util::log::info("restore '{}': miss (looked for key '{}'{})", entry.name, entry.key_wanted,
                      prefixes.empty() ? "" : fmt::format(", then {} prefix(es)", prefixes.size()));
      return entry;
    }
    // What a restore of this stanza killed before its commit or rollback staged, as its
    // journal lists it (never a file of the job's that merely looks like a temporary one),
    // within the directories these rules reach; then this restore's own journal.
    fs::path journal = m_state_dir / "staging" / (journal_name(stanza.name.value) + ".journal");
    auto admit = [&](const std::string& base, const std::string& rel) {
      for (auto a : {rules::Anchor::root, rules::Anchor::home, rules::Anchor::work}) {
        std::string host = m_anchors.host(a).string();
        while (host.size() > 1 && host.back() == '/') {
          host.pop_back();
        }
        if (host == base && rules.may_contain(a, rel)) {
          return true;
        }
      }
      return false;
    };
    if (size_t swept = archive::sweep_staged(journal, admit); swept > 0) {
      util::log::info("restore '{}': removed {} name(s) an interrupted restore had staged",
                      entry.name, swept);
    }
    fs::create_directories(journal.parent_path());
    // The fingerprint post compares with: when nothing was where the rules start, the
    // entries as the restore wrote them; otherwise (files were already there, a restore
    // inside a job) a walk of the restored set. A failed candidate's unpack removes all it
    // wrote, so this holds for each.
    bool absent = starts_absent(rules, m_anchors);
    std::optional<WrittenSet> written;
    // Fetches and unpacks one candidate, recording it as the entry's archive.
    auto attempt = [&](const store::LookupResult& found) -> archive::UnpackResult {
      const auto& m = found.manifest;
      entry.step = found.step.rfind("prefix", 0) == 0 ? "prefix" : "exact";
      entry.prefix = entry.step == "prefix" ? found.step.substr(found.step.find(':') + 1) : "";
      entry.branch_match = found.own_branch ? "own" : "other";
      entry.archive = archive_info(catalog(), m);

      // A store on this machine is unpacked where it lies; any other is downloaded (hashing
      // on the way, so a bad download is a clean miss) into the state dir first. Either way
      // the unpack hashes what it reads: the job can write the state dir, and a store writer
      // the store's directory.
      std::optional<util::TempDir> tmp;
      fs::path file;
      int local = catalog().open_verified(m);
      util::Fd closer(local);
      if (local < 0) {
        tmp.emplace(scratch_dir(), "restore");
        file = tmp->path() / "archive.tar.zst";
        catalog().download(m, file);
      }
      archive::UnpackOptions opts;
      opts.expected_sha256 = m.sha256; // checked on the bytes the unpack reads, before its commit
      opts.expected_size = m.compressed_size;
      opts.max_unpacked_bytes = m.unpacked_bytes;
      opts.journal = journal;
      // Each anchor's host directory, computed once rather than for each of the entries.
      std::array<fs::path, 3> hosts;
      for (auto a : {rules::Anchor::root, rules::Anchor::home, rules::Anchor::work}) {
        hosts.at(static_cast<size_t>(a)) = m_anchors.host(a);
      }
      opts.resolve = [&](std::string_view name,
                         archive::EntryType /*type*/) -> std::optional<archive::Destination> {
        auto where = split_name(name);
        if (!where) {
          return std::nullopt;
        }
        auto& [anchor, rel] = *where;
        // Directories too only where the rules select them: an entry for a directory the
        // rules merely pass through (/tmp for '/tmp/**/*.txt', ~/.cargo for
        // '~/.cargo/registry') would have its mode and times set on a directory the stanza
        // does not own. The parents a selected entry needs are made by the unpack with a
        // default mode, and existing ones are left as they are. save never archives them.
        if (!rules.selects(anchor, rel)) {
          return std::nullopt;
        }
        return archive::Destination{hosts.at(static_cast<size_t>(anchor)), std::move(rel)};
      };
      if (absent) { // a fresh set for each candidate
        written.emplace(rules, m_anchors);
        opts.written = written->fn();
      }
      ProgressLine progress(fmt::format("restoring '{}'", entry.name));
      opts.progress = progress.fn();
      auto unpacked = local >= 0 ? archive::unpack_fd(local, opts) : archive::unpack(file, opts);
      progress.finish();
      return unpacked;
    };
    const store::Manifest* chosen = nullptr;
    archive::UnpackResult unpacked;
    for (size_t i = 0; chosen == nullptr; ++i) {
      try {
        unpacked = attempt(candidates[i]);
        chosen = &candidates[i].manifest;
      } catch (const std::exception& e) {
        if (i + 1 == candidates.size() || !worth_another(e)) {
          throw;
        }
        entry.warnings.push_back(passed_over(catalog(), candidates[i].manifest, e));
        util::log::warn("restore '{}': {}; trying the next candidate", entry.name,
                        entry.warnings.back());
      }
    }
    const auto& m = *chosen;
    entry.seconds = seconds_since(start);
    // An archive that wrote no file and no link (an empty set, saved before save refused
    // them, or a store writer's) warms nothing: a miss, so the job builds cold.
    if (unpacked.files + unpacked.symlinks == 0) {
      entry.result = "miss";
      entry.step.clear(); // no step hit; the archive stays, to say which one was empty
      entry.prefix.clear();
      entry.branch_match.clear();
      entry.reason += "; the archive found holds no file or symlink: nothing was restored";
      entry.warnings.push_back(fmt::format("{} holds no file or symlink: counted as a miss",
                                           entry.archive->link));
      util::log::info("restore '{}': miss: {}", entry.name, entry.warnings.back());
      return entry;
    }
    entry.result = "hit";
    util::log::info("restored '{}' ({} key '{}', {} branch '{}'{}): {}, {}", entry.name,
                    entry.step == "exact" ? "exact" : "prefix '" + entry.prefix + "' ->",
                    util::printable(m.key), entry.branch_match, util::printable(m.branch),
                    entry.warnings.empty()
                        ? ""
                        : fmt::format(", after passing over {} candidate(s)", entry.warnings.size()),
                    cost_line(unpacked.files, unpacked.bytes, m.compressed_size, entry.seconds),
                    entry.archive->link);
    std::optional<rules::WalkResult> restored;
    if (written) {
      restored = written->finish();
    }
    if (!restored) {
      restored = rules::walk(rules, m_anchors);
    }
    save_fingerprint(stanza.name.value, entry.key_wanted,
                     fingerprint(*restored, stanza.content_addressed));
  } catch (const util::InputError&) {
    throw;
  } catch (const std::exception& e) {
    entry = fail(std::move(entry), "unable to restore", e);
    entry.seconds = seconds_since(start);
  }
  return entry;
}

report::Entry Session::save(const jobfile::PersistSpec& stanza, const std::string& phase) {
  auto start = std::chrono::steady_clock::now();
  report::Entry entry;
  entry.phase = phase;
  entry.name = stanza.name.value;
  entry.acted = true;
  try {
    auto rules = compile(stanza);
    entry.key_wanted = key_of(stanza);
    auto walked = rules::walk(rules, m_anchors);
    for (const auto& w : walked.warnings) {
      entry.warnings.push_back(w);
      util::log::warn("save '{}': {}", entry.name, w);
    }
    for (size_t i = 0; i < rules.rules().size(); ++i) {
      const auto& rule = rules.rules()[i];
      if (rule.must_match && walked.rule_hits.at(i) == 0) {
        throw util::Error(fmt::format("rule '{}' must match at least one file ('=') and matched "
                                      "none", rule.text));
      }
    }
    auto print = fingerprint(walked, stanza.content_addressed);
    if (auto previous = load_fingerprint(stanza.name.value);
        previous && previous->first == entry.key_wanted && previous->second == print) {
      entry.result = "unchanged";
      entry.reason += "; nothing changed since the restore (same key, same files): save skipped";
      entry.seconds = seconds_since(start);
      util::log::info("save '{}': skipped, nothing changed since the restore of key '{}'",
                      entry.name, entry.key_wanted);
      return entry;
    }
    util::TempDir tmp(scratch_dir(), "save");
    fs::path file = tmp.path() / "archive.tar.zst";
    archive::PackOptions opts;
    opts.level = stanza.level.value_or(3);
    ProgressLine progress(fmt::format("saving '{}'", entry.name));
    opts.progress = progress.fn();
    auto packed = archive::pack(pack_items(walked, rules, m_anchors), file, opts);
    progress.finish();
    // An archive of no file and no link would be restored as a hit, so a job's `if ephemera
    // restore X` would call the cache warm for ever: nothing is saved (as actions/cache
    // does for a path that matches nothing). The report has no result of its own for this
    // (its schema is versioned): skipped, with the reason.
    if (packed.files + packed.symlinks == 0) {
      entry.result = "skipped";
      entry.reason += "; the rules matched no file or symlink: nothing to save";
      entry.warnings.push_back(
          fmt::format("the rules matched no file or symlink{}: not saved (an empty archive "
                      "would be restored as a hit)",
                      packed.directories > 0
                          ? fmt::format(" (only {} empty directories)", packed.directories)
                          : ""));
      util::log::warn("save '{}': {}", entry.name, entry.warnings.back());
      entry.seconds = seconds_since(start);
      return entry;
    }
    if (stanza.max_size && packed.compressed_bytes > *stanza.max_size) {
      entry.result = "too_large";
      entry.warnings.push_back(fmt::format("the archive is {} compressed, over max_size {}: not saved",
                                           report::human_bytes(packed.compressed_bytes),
                                           report::human_bytes(*stanza.max_size)));
      util::log::warn("save '{}': {}", entry.name, entry.warnings.back());
      entry.seconds = seconds_since(start);
      return entry;
    }
    store::Manifest partial;
    partial.repository = m_context.repository;
    partial.target = m_job.target.value_or("");
    partial.name = stanza.name.value;
    partial.epoch = stanza.epoch.value;
    partial.key = entry.key_wanted;
    partial.sha256 = packed.sha256;
    partial.compressed_size = packed.compressed_bytes;
    partial.unpacked_bytes = packed.unpacked_bytes;
    partial.files = packed.files;
    partial.job_id = m_context.job_id;
    partial.commit = m_context.commit;
    partial.branch = m_context.branch;
    partial.event = policy::to_string(m_context.event);
    partial.trusted = m_context.trusted;
    partial.origin = m_context.origin;
    for (const auto& r : stanza.rules) {
      partial.rules.push_back(r.value);
    }
    partial.tool_version = EPHEMERA_VERSION;
    auto m = catalog().publish(partial, file);
    entry.result = "saved";
    entry.archive = archive_info(catalog(), m);
    entry.seconds = seconds_since(start);
    util::log::info("saved '{}' key '{}': {}, {}", entry.name, m.key,
                    cost_line(packed.files, packed.unpacked_bytes, packed.compressed_bytes,
                              entry.seconds),
                    entry.archive->link);
  } catch (const util::InputError&) {
    throw;
  } catch (const std::exception& e) {
    entry = fail(std::move(entry), "unable to save", e);
    entry.seconds = seconds_since(start);
  }
  return entry;
}

namespace {

// A file of the state dir is a few hundred bytes (a report some kilobytes per stanza):
// these bound what a hostile job can make pre and post read.
constexpr uint64_t k_max_state_file_bytes = 1 << 20;

// A state-dir file name for a stanza (names are checked, but nominations come from the
// job: never let one name a path).
std::string state_file_name(const std::string& name) {
  return jobfile::valid_stanza_name(name) ? name + ".json"
                                           : "_" + util::sha256_hex(name).substr(0, 16) + ".json";
}

// A nomination as nominate() wrote it, or why it is not one.
std::optional<jobfile::PersistSpec> nomination_from_json(const std::string& text,
                                                         const std::string& file_name,
                                                         std::string& why) {
  auto j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    why = "not a JSON object";
    return std::nullopt;
  }
  jobfile::PersistSpec s;
  s.source_file = "ephemera persist";
  for (const auto& [key, v] : j.items()) {
    if (key == "name" && v.is_string()) {
      s.name.value = v.get<std::string>();
    } else if (key == "rules" && v.is_array()) {
      for (const auto& r : v) {
        if (!r.is_string()) {
          why = "rules must be strings";
          return std::nullopt;
        }
        s.rules.push_back({r.get<std::string>(), {"ephemera persist", 0, 0}});
      }
    } else if (key == "epoch" && v.is_number_integer()) {
      s.epoch.value = v.is_number_unsigned() && v.get<uint64_t>() > INT64_MAX ? -1
                                                                               : v.get<int64_t>();
    } else if (key == "cache_key" && v.is_string()) {
      s.cache_key.value = v.get<std::string>();
    } else {
      bool known = key == "name" || key == "rules" || key == "epoch" || key == "cache_key";
      why = known ? fmt::format("'{}' has the wrong type", key)
                  : fmt::format("'{}' is not a field of a nomination", key);
      return std::nullopt;
    }
  }
  if (!j.contains("name") || !j.contains("rules") || !j.contains("epoch")) {
    why = "name, rules and epoch are required";
    return std::nullopt;
  }
  auto problems = jobfile::stanza_problems(s);
  if (!problems.empty()) {
    why = problems.front();
    return std::nullopt;
  }
  if (state_file_name(s.name.value) != file_name) {
    why = fmt::format("it names '{}', not the stanza its file is named after", s.name.value);
    return std::nullopt;
  }
  return s;
}

} // namespace

void Session::bookkeeping_problem(const std::string& what) {
  m_problem = true;
  util::log::warn("{}", what);
}

fs::path Session::scratch_dir() {
  try {
    return util::Dir::open(m_state_dir, true).sub("tmp", true).path();
  } catch (const std::exception& e) {
    bookkeeping_problem(fmt::format("{} (staging in the system's temporary directory instead)",
                                    util::printable(e.what())));
    return fs::temp_directory_path();
  }
}

void Session::save_fingerprint(const std::string& name, const std::string& key,
                               const std::string& print) {
  try {
    util::Dir::open(m_state_dir, true)
        .sub("fingerprints", true)
        .write(state_file_name(name), json{{"key", key}, {"fingerprint", print}}.dump() + "\n");
  } catch (const std::exception& e) {
    bookkeeping_problem(fmt::format("restored '{}', but unable to record what was restored: {}; "
                                    "post will save it even if nothing changed",
                                    name, util::printable(e.what())));
  }
}

std::optional<std::pair<std::string, std::string>>
Session::load_fingerprint(const std::string& name) {
  std::string file = state_file_name(name);
  try {
    auto dir = util::Dir::open_if_exists(m_state_dir);
    auto sub = dir ? dir->sub_if_exists("fingerprints") : std::nullopt;
    auto text = sub ? sub->read(file, k_max_state_file_bytes) : std::nullopt;
    if (!text) {
      return std::nullopt;
    }
    auto j = json::parse(*text, nullptr, false);
    if (j.is_object() && j.contains("key") && j["key"].is_string() && j.contains("fingerprint") &&
        j["fingerprint"].is_string()) {
      return std::make_pair(j["key"].get<std::string>(), j["fingerprint"].get<std::string>());
    }
    bookkeeping_problem(fmt::format("{}: not a fingerprint ephemera wrote: ignored, '{}' is saved "
                                    "as if it changed",
                                    util::printable((sub->path() / file).string()), name));
  } catch (const std::exception& e) {
    bookkeeping_problem(fmt::format("{}: ignored, '{}' is saved as if it changed",
                                    util::printable(e.what()), name));
  }
  return std::nullopt;
}

std::optional<std::string> Session::nominate(const jobfile::PersistSpec& stanza) {
  json rules = json::array();
  for (const auto& r : stanza.rules) {
    rules.push_back(r.value);
  }
  try {
    util::Dir::open(m_state_dir, true)
        .sub("nominated", true)
        .write(state_file_name(stanza.name.value), json{{"name", stanza.name.value},
                                                        {"rules", rules},
                                                        {"epoch", stanza.epoch.value},
                                                        {"cache_key", stanza.cache_key.value}}
                                                           .dump(2) +
                                                       "\n");
  } catch (const std::exception& e) {
    std::string why = util::printable(e.what());
    bookkeeping_problem(fmt::format("persist '{}': unable to record the nomination: {}; post "
                                    "will not save it",
                                    stanza.name.value, why));
    return why;
  }
  return std::nullopt;
}

std::vector<jobfile::PersistSpec> Session::nominated() {
  std::vector<jobfile::PersistSpec> out;
  std::optional<util::Dir> dir;
  std::vector<std::string> names;
  try {
    auto state = util::Dir::open_if_exists(m_state_dir);
    dir = state ? state->sub_if_exists("nominated") : std::nullopt;
    names = dir ? dir->list() : names;
  } catch (const std::exception& e) {
    bookkeeping_problem(fmt::format("nominations not read: {}", util::printable(e.what())));
    return out;
  }
  for (const auto& name : names) {
    if (name.size() < 5 || name.compare(name.size() - 5, 5, ".json") != 0) {
      continue; // not a nomination (one being written has a util::temp_name)
    }
    std::string shown = util::printable((dir->path() / name).string());
    try {
      std::string why;
      auto text = dir->read(name, k_max_state_file_bytes);
      auto s = text ? nomination_from_json(*text, name, why) : std::nullopt;
      if (s) {
        out.push_back(std::move(*s));
      } else if (text) {
        bookkeeping_problem(
            fmt::format("{}: not a valid nomination ({}): skipped", shown, util::printable(why)));
      }
    } catch (const std::exception& e) {
      bookkeeping_problem(fmt::format("{}: nomination skipped", util::printable(e.what())));
    }
  }
  return out;
}

void Session::record(const std::vector<report::Entry>& entries) {
  json job = job_json(m_options, m_context, m_loaded ? m_job.name : "",
                      m_loaded ? m_job.variety : "", m_loaded ? m_job.target : std::nullopt);
  try {
    if (auto discarded = report::append(m_state_dir, job, store::redact_url(store_url()), entries)) {
      bookkeeping_problem(*discarded);
    }
  } catch (const std::exception& e) {
    bookkeeping_problem(fmt::format("unable to update the report: {} (the results above stand)",
                                    util::printable(e.what())));
  }
}

} // namespace ephemera::cli
