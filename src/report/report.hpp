#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// The job's report (README "Report"): what every stanza did, with the archive it used or made.
namespace ephemera::report {

inline constexpr const char* k_format = "ephemera-report/1";

// The archive a stanza restored or saved.
struct ArchiveInfo {
  std::string link;      // file:// URL or the S3 object URL
  std::string presigned; // time-limited HTTPS link (S3), else empty
  std::string sha256;
  uint64_t compressed_bytes = 0;
  uint64_t unpacked_bytes = 0;
  uint64_t files = 0;
  std::string key;
  std::string created; // RFC 3339 UTC
  std::string job_id;  // the job that created it
  std::string commit;
  std::string branch;
  bool trusted = true;
};

// Which command made an entry: the hooks, or the in-job commands.
enum class Phase { pre, post, restore, persist };
// What became of the stanza.
enum class Result { hit, miss, saved, unchanged, skipped, too_large, failed, disabled, nominated };
// Which lookup step a restore hit: none on a miss, the exact key, or a restore_keys prefix.
enum class Step { none, exact, prefix };

// The words of the report's JSON ("pre", "too_large", "" for Step::none), and back: nullopt
// for a word the report format does not have.
const char* to_string(Phase phase);
const char* to_string(Result result);
const char* to_string(Step step);
std::optional<Phase> parse_phase(std::string_view text);
std::optional<Result> parse_result(std::string_view text);
std::optional<Step> parse_step(std::string_view text);

// One stanza in one phase.
struct Entry {
  Phase phase = Phase::pre;
  std::string name;
  bool acted = false; // the policy allowed the restore or save
  std::string reason; // why (policy), in words
  Result result = Result::skipped;
  std::string key_wanted;
  std::vector<std::string> looked_for; // exact key, then prefixes (on a miss: what was tried)
  Step step = Step::none;
  std::string prefix;       // the restore_keys prefix that hit
  std::string branch_match; // "own" or "other" branch
  std::optional<ArchiveInfo> archive;
  double seconds = 0;
  std::vector<std::string> warnings;
  std::string error; // the cache problem, when there was one
  bool budget = false; // a restore the time budget stopped (not in the JSON: the reason says it)
  // Compressed bytes a hit fetched (the archive, or the index and the packs it read) or a save
  // uploaded (the archive, or the new packs and the index): what the phase's summary line and
  // event record count as moved. Not in the JSON (archive.compressed_bytes is the object's
  // size, which for a content-addressed save is its index's alone).
  uint64_t moved_bytes = 0;
};

struct Report {
  std::string format = k_format;
  nlohmann::json job = nlohmann::json::object(); // file, name, variety, repository, ...
  std::string store;                             // store URL, never with credentials
  std::vector<Entry> entries;
};

nlohmann::json to_json(const ArchiveInfo& a);
nlohmann::json to_json(const Entry& e);
nlohmann::json to_json(const Report& r);
// Throws util::Error naming the entry when a phase, result or step is not one of the
// format's words.
Report report_from_json(const nlohmann::json& j);

// Reads the report in dir ("report.json"); an empty report when there is none. The job
// can write the state dir: a report.json that is a symlink, not a regular file, too large
// or not a report is an Error naming the file (its content escaped).
Report load(const std::filesystem::path& dir);
// Where load() and append() keep the report of the job whose state dir is dir.
std::filesystem::path file_in(const std::filesystem::path& dir);
// Appends entries (and refreshes the job and store fields) atomically, never writing
// through a symlink. A report.json that load() refuses is replaced by a new report: the
// returned warning says so. Throws Error when dir cannot be used.
std::optional<std::string> append(const std::filesystem::path& dir, const nlohmann::json& job,
                                  const std::string& store, const std::vector<Entry>& entries);

// A human table: one block per entry, for the job log.
std::string render(const Report& r);

// The one line that ends pre and post: "pre: 2 hits, 1 miss, 0 saves; 41.0 MiB (12.3 MiB
// compressed) in 3.20 s" over the entries of that run (seconds: the run's own).
std::string summary_line(const char* phase, const std::vector<Entry>& entries, double seconds);

// Whether link names a content-addressed save's index (".../cas1/.../index/<sha256>.idx"):
// no one object of such a save is an archive a person could download and unpack.
bool content_addressed_link(std::string_view link);
// The command that writes the save `save` names (a link, an id) from the store `store` as a
// plain tar.zst, each argument quoted for a POSIX shell: what a person runs to get what a job
// used when its save is content-addressed.
std::string export_command(std::string_view store, std::string_view save, std::string_view out);

// "1.2 GiB", "512 B": sizes for people.
std::string human_bytes(uint64_t bytes);

} // namespace ephemera::report
