#include "report/report.hpp"

#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/log.hpp"
#include "util/units.hpp"

#include <fmt/format.h>

namespace ephemera::report {

using nlohmann::json;

namespace {

constexpr std::pair<Phase, const char*> k_phases[] = {{Phase::pre, "pre"},
                                                      {Phase::post, "post"},
                                                      {Phase::restore, "restore"},
                                                      {Phase::persist, "persist"}};
constexpr std::pair<Result, const char*> k_results[] = {{Result::hit, "hit"},
                                                        {Result::miss, "miss"},
                                                        {Result::saved, "saved"},
                                                        {Result::unchanged, "unchanged"},
                                                        {Result::skipped, "skipped"},
                                                        {Result::too_large, "too_large"},
                                                        {Result::failed, "failed"},
                                                        {Result::disabled, "disabled"},
                                                        {Result::nominated, "nominated"}};
constexpr std::pair<Step, const char*> k_steps[] = {
    {Step::none, ""}, {Step::exact, "exact"}, {Step::prefix, "prefix"}};

// One table per enum, read both ways, so the words cannot drift apart.
template <typename E, size_t N>
const char* word_of(const std::pair<E, const char*> (&table)[N], E value) {
  for (const auto& [v, word] : table) {
    if (v == value) {
      return word;
    }
  }
  return table[0].second;
}

template <typename E, size_t N>
std::optional<E> value_of(const std::pair<E, const char*> (&table)[N], std::string_view text) {
  for (const auto& [v, word] : table) {
    if (text == word) {
      return v;
    }
  }
  return std::nullopt;
}

} // namespace

const char* to_string(Phase phase) {
  return word_of(k_phases, phase);
}
const char* to_string(Result result) {
  return word_of(k_results, result);
}
const char* to_string(Step step) {
  return word_of(k_steps, step);
}
std::optional<Phase> parse_phase(std::string_view text) {
  return value_of(k_phases, text);
}
std::optional<Result> parse_result(std::string_view text) {
  return value_of(k_results, text);
}
std::optional<Step> parse_step(std::string_view text) {
  return value_of(k_steps, text);
}

json to_json(const ArchiveInfo& a) {
  return json{{"link", a.link},
              {"presigned", a.presigned},
              {"sha256", a.sha256},
              {"compressed_bytes", a.compressed_bytes},
              {"unpacked_bytes", a.unpacked_bytes},
              {"files", a.files},
              {"key", a.key},
              {"created", a.created},
              {"job_id", a.job_id},
              {"commit", a.commit},
              {"branch", a.branch},
              {"trusted", a.trusted}};
}

json to_json(const Entry& e) {
  json j{{"phase", to_string(e.phase)},
         {"name", e.name},
         {"acted", e.acted},
         {"reason", e.reason},
         {"result", to_string(e.result)},
         {"key_wanted", e.key_wanted},
         {"looked_for", e.looked_for},
         {"step", to_string(e.step)},
         {"prefix", e.prefix},
         {"branch_match", e.branch_match},
         {"archive", e.archive ? to_json(*e.archive) : json(nullptr)},
         {"seconds", e.seconds},
         {"warnings", e.warnings},
         {"error", e.error}};
  return j;
}

json to_json(const Report& r) {
  json entries = json::array();
  for (const auto& e : r.entries) {
    entries.push_back(to_json(e));
  }
  return json{{"format", r.format}, {"job", r.job}, {"store", r.store}, {"entries", entries}};
}

namespace {

ArchiveInfo archive_from_json(const json& j) {
  ArchiveInfo a;
  a.link = j.value("link", "");
  a.presigned = j.value("presigned", "");
  a.sha256 = j.value("sha256", "");
  a.compressed_bytes = j.value("compressed_bytes", uint64_t{0});
  a.unpacked_bytes = j.value("unpacked_bytes", uint64_t{0});
  a.files = j.value("files", uint64_t{0});
  a.key = j.value("key", "");
  a.created = j.value("created", "");
  a.job_id = j.value("job_id", "");
  a.commit = j.value("commit", "");
  a.branch = j.value("branch", "");
  a.trusted = j.value("trusted", true);
  return a;
}

// The enum a word of the entry names; throws util::Error saying which field holds what.
template <typename E>
E field(const json& j, const char* key, const char* absent,
        std::optional<E> (*parse)(std::string_view)) {
  std::string word = j.value(key, absent);
  auto v = parse(word);
  if (!v) {
    throw util::Error(
        fmt::format("{} '{}' is not one the report format has", key, util::printable(word)));
  }
  return *v;
}

Entry entry_from_json(const json& j) {
  Entry e;
  e.phase = field(j, "phase", "", parse_phase);
  e.name = j.value("name", "");
  e.acted = j.value("acted", false);
  e.reason = j.value("reason", "");
  e.result = field(j, "result", "", parse_result);
  e.key_wanted = j.value("key_wanted", "");
  e.looked_for = j.value("looked_for", std::vector<std::string>{});
  e.step = field(j, "step", "", parse_step);
  e.prefix = j.value("prefix", "");
  e.branch_match = j.value("branch_match", "");
  if (j.contains("archive") && j["archive"].is_object()) {
    e.archive = archive_from_json(j["archive"]);
  }
  e.seconds = j.value("seconds", 0.0);
  e.warnings = j.value("warnings", std::vector<std::string>{});
  e.error = j.value("error", "");
  return e;
}

} // namespace

Report report_from_json(const json& j) {
  Report r;
  r.format = j.value("format", k_format);
  r.job = j.value("job", json::object());
  r.store = j.value("store", "");
  size_t i = 0;
  for (const auto& e : j.value("entries", json::array())) {
    try {
      r.entries.push_back(entry_from_json(e));
    } catch (const json::exception& x) {
      throw util::Error(fmt::format("entry {}: {}", i, util::printable(x.what())));
    } catch (const util::Error& x) {
      throw util::Error(fmt::format("entry {}: {}", i, x.what()));
    }
    ++i;
  }
  return r;
}

namespace {

// A report grows by a kilobyte or so per stanza and phase.
constexpr uint64_t k_max_report_bytes = 16 << 20;
constexpr const char* k_file = "report.json";

Report parse(const util::Dir& dir) {
  auto path = util::printable((dir.path() / k_file).string());
  auto text = dir.read(k_file, k_max_report_bytes);
  if (!text) {
    return {};
  }
  try {
    auto j = json::parse(*text);
    if (!j.is_object() || !j.value("entries", json::array()).is_array()) {
      throw util::Error("not an object with an array of entries");
    }
    return report_from_json(j);
  } catch (const util::Error& e) {
    throw util::Error(fmt::format("{}: not a valid report: {}", path, e.what()));
  } catch (const json::exception& e) {
    throw util::Error(fmt::format("{}: not a valid report: {}", path, util::printable(e.what())));
  }
}

} // namespace

std::filesystem::path file_in(const std::filesystem::path& dir) {
  return dir / k_file;
}

Report load(const std::filesystem::path& dir) {
  auto d = util::Dir::open_if_exists(dir);
  if (!d) {
    return {};
  }
  return parse(*d);
}

std::optional<std::string> append(const std::filesystem::path& dir, const json& job,
                                  const std::string& store, const std::vector<Entry>& entries) {
  auto d = util::Dir::open(dir, true);
  std::optional<std::string> discarded;
  Report r;
  try {
    r = parse(d);
  } catch (const util::Error& e) {
    discarded = fmt::format("{}; replaced by a new report", e.what());
  }
  r.job = job;
  r.store = store;
  r.entries.insert(r.entries.end(), entries.begin(), entries.end());
  d.write(k_file, to_json(r).dump(2) + "\n");
  return discarded;
}

std::string summary_line(const char* phase, const std::vector<Entry>& entries, double seconds) {
  size_t hits = 0, misses = 0, saves = 0, unchanged = 0, failed = 0;
  uint64_t bytes = 0, compressed = 0;
  for (const auto& e : entries) {
    hits += e.result == Result::hit;
    misses += e.result == Result::miss;
    saves += e.result == Result::saved;
    unchanged += e.result == Result::unchanged;
    failed += e.result == Result::failed;
    if ((e.result == Result::hit || e.result == Result::saved) && e.archive) {
      bytes += e.archive->unpacked_bytes;
      compressed += e.moved_bytes;
    }
  }
  auto n = [](size_t count, const char* one, const char* many) {
    return fmt::format("{} {}", count, count == 1 ? one : many);
  };
  std::string extra;
  if (unchanged > 0) {
    extra += ", " + n(unchanged, "unchanged", "unchanged");
  }
  if (failed > 0) {
    extra += ", " + n(failed, "failed", "failed");
  }
  return fmt::format("{}: {}, {}, {}{}; {} ({} compressed) in {:.2f} s", phase,
                     n(hits, "hit", "hits"), n(misses, "miss", "misses"), n(saves, "save", "saves"),
                     extra, human_bytes(bytes), human_bytes(compressed), seconds);
}

std::string human_bytes(uint64_t bytes) {
  return util::human_bytes(bytes);
}

bool content_addressed_link(std::string_view link) {
  auto ends = [&](std::string_view tail) {
    return link.size() >= tail.size() && link.substr(link.size() - tail.size()) == tail;
  };
  return link.find("/cas1/") != std::string_view::npos && ends(".idx");
}

std::string export_command(std::string_view store, std::string_view save, std::string_view out) {
  // Single quotes keep every byte but the quote itself, which closes, is given in double
  // quotes and reopens: no backslash, which the log's escaping would double.
  auto quoted = [](std::string_view text) {
    std::string q = "'";
    for (char c : text) {
      q += c == '\'' ? std::string("'\"'\"'") : std::string(1, c);
    }
    return q + "'";
  };
  return fmt::format("ephemera export --store {} {} {}", quoted(store), quoted(save), quoted(out));
}

namespace {

// The report is read back from a file the job can write: what it holds is escaped before
// it reaches a terminal.
std::string p(std::string_view text) {
  return util::printable(text);
}

std::string string_field(const json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "";
}

std::string render_entry(const Entry& e, const std::string& store) {
  std::string out =
      fmt::format("{:<8} {:<24} {}", to_string(e.phase), p(e.name), to_string(e.result));
  if (e.step != Step::none) {
    out += e.step == Step::prefix ? fmt::format(" (prefix '{}'", p(e.prefix)) : " (exact key";
    out += e.branch_match.empty() ? ")" : fmt::format(", {} branch)", p(e.branch_match));
  }
  out += fmt::format("  {:.2f} s\n", e.seconds);
  out += fmt::format("         why: {}\n", p(e.reason));
  if (!e.key_wanted.empty() || !e.looked_for.empty()) {
    out += fmt::format("         key wanted: '{}'", p(e.key_wanted));
    if (e.result == Result::miss && e.looked_for.size() > 1) {
      out += ", then prefixes";
      for (size_t i = 1; i < e.looked_for.size(); ++i) {
        out += fmt::format(" '{}'", p(e.looked_for[i]));
      }
    }
    out += "\n";
  }
  if (e.archive) {
    const auto& a = *e.archive;
    out +=
        fmt::format("         archive: key '{}', {} compressed, {} unpacked, {} files\n", p(a.key),
                    human_bytes(a.compressed_bytes), human_bytes(a.unpacked_bytes), a.files);
    out += fmt::format("         sha256: {}\n", p(a.sha256));
    out += fmt::format("         created {} by job '{}' (commit {}, branch '{}'{})\n", p(a.created),
                       p(a.job_id), a.commit.empty() ? "unknown" : p(a.commit), p(a.branch),
                       a.trusted ? "" : ", untrusted");
    out += fmt::format("         link: {}\n", p(a.link));
    if (!a.presigned.empty()) {
      out += fmt::format("         download: {}\n", p(a.presigned));
    }
    if (content_addressed_link(a.link)) {
      // Its link is the index; the export writes what the job used as one tar.zst.
      out += fmt::format("         export: {}\n",
                         p(export_command(store, a.link, e.name + ".tar.zst")));
    }
  }
  for (const auto& w : e.warnings) {
    out += fmt::format("         warning: {}\n", p(w));
  }
  if (!e.error.empty()) {
    out += fmt::format("         problem: {}\n", p(e.error));
  }
  return out;
}

} // namespace

std::string render(const Report& r) {
  std::string out;
  if (r.job.is_object() && r.job.contains("name")) {
    out += fmt::format("job '{}' ({})\n", p(string_field(r.job, "name")),
                       p(string_field(r.job, "file")));
  }
  if (!r.store.empty()) {
    out += fmt::format("store: {}\n", p(r.store));
  }
  if (r.entries.empty()) {
    out += "nothing restored or saved yet\n";
  }
  for (const auto& e : r.entries) {
    out += render_entry(e, r.store);
  }
  return out;
}

} // namespace ephemera::report
