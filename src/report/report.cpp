#include "report/report.hpp"

#include "util/error.hpp"
#include "util/fs.hpp"

#include <fmt/format.h>

namespace ephemera::report {

using nlohmann::json;

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
  json j{{"phase", e.phase},
         {"name", e.name},
         {"acted", e.acted},
         {"reason", e.reason},
         {"result", e.result},
         {"key_wanted", e.key_wanted},
         {"looked_for", e.looked_for},
         {"step", e.step},
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

Entry entry_from_json(const json& j) {
  Entry e;
  e.phase = j.value("phase", "");
  e.name = j.value("name", "");
  e.acted = j.value("acted", false);
  e.reason = j.value("reason", "");
  e.result = j.value("result", "");
  e.key_wanted = j.value("key_wanted", "");
  e.looked_for = j.value("looked_for", std::vector<std::string>{});
  e.step = j.value("step", "");
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
  for (const auto& e : j.value("entries", json::array())) {
    r.entries.push_back(entry_from_json(e));
  }
  return r;
}

Report load(const std::filesystem::path& dir) {
  auto path = dir / "report.json";
  auto text = util::read_file_if_exists(path);
  if (!text) {
    return {};
  }
  try {
    return report_from_json(json::parse(*text));
  } catch (const json::exception& e) {
    throw util::Error(fmt::format("{}: not a valid report: {}", path.string(), e.what()));
  }
}

void append(const std::filesystem::path& dir, const json& job, const std::string& store,
            const std::vector<Entry>& entries) {
  std::filesystem::create_directories(dir);
  Report r = load(dir);
  r.job = job;
  r.store = store;
  r.entries.insert(r.entries.end(), entries.begin(), entries.end());
  util::write_file_atomic(dir / "report.json", to_json(r).dump(2) + "\n");
}

std::string human_bytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", v, units[u]);
}

namespace {

std::string render_entry(const Entry& e) {
  std::string out = fmt::format("{:<8} {:<24} {}", e.phase, e.name, e.result);
  if (!e.step.empty()) {
    out += e.step == "prefix" ? fmt::format(" (prefix '{}'", e.prefix) : " (exact key";
    out += e.branch_match.empty() ? ")" : fmt::format(", {} branch)", e.branch_match);
  }
  out += fmt::format("  {:.2f} s\n", e.seconds);
  out += fmt::format("         why: {}\n", e.reason);
  if (!e.key_wanted.empty() || !e.looked_for.empty()) {
    out += fmt::format("         key wanted: '{}'", e.key_wanted);
    if (e.result == "miss" && e.looked_for.size() > 1) {
      out += ", then prefixes";
      for (size_t i = 1; i < e.looked_for.size(); ++i) {
        out += fmt::format(" '{}'", e.looked_for[i]);
      }
    }
    out += "\n";
  }
  if (e.archive) {
    const auto& a = *e.archive;
    out += fmt::format("         archive: key '{}', {} compressed, {} unpacked, {} files\n", a.key,
                       human_bytes(a.compressed_bytes), human_bytes(a.unpacked_bytes), a.files);
    out += fmt::format("         sha256: {}\n", a.sha256);
    out += fmt::format("         created {} by job '{}' (commit {}, branch '{}'{})\n", a.created,
                       a.job_id, a.commit.empty() ? "unknown" : a.commit, a.branch,
                       a.trusted ? "" : ", untrusted");
    out += fmt::format("         link: {}\n", a.link);
    if (!a.presigned.empty()) {
      out += fmt::format("         download: {}\n", a.presigned);
    }
  }
  for (const auto& w : e.warnings) {
    out += fmt::format("         warning: {}\n", w);
  }
  if (!e.error.empty()) {
    out += fmt::format("         problem: {}\n", e.error);
  }
  return out;
}

} // namespace

std::string render(const Report& r) {
  std::string out;
  if (r.job.contains("name")) {
    out += fmt::format("job '{}' ({})\n", r.job.value("name", ""), r.job.value("file", ""));
  }
  if (!r.store.empty()) {
    out += fmt::format("store: {}\n", r.store);
  }
  if (r.entries.empty()) {
    out += "nothing restored or saved yet\n";
  }
  for (const auto& e : r.entries) {
    out += render_entry(e);
  }
  return out;
}

} // namespace ephemera::report
