#pragma once

#include "jobfile/job_spec.hpp"
#include "policy/policy.hpp"
#include "report/report.hpp"
#include "rules/walk.hpp"
#include "session/key_files.hpp"
#include "session/stanza.hpp"
#include "session/state_dir.hpp"
#include "session/store_open.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ephemera::store {
class Catalog;
struct LookupRequest;
} // namespace ephemera::store

// One job's cache work: restoring and saving its stanzas against the store, the state dir
// its phases share, and the report. Nothing here parses a command line or chooses an exit
// code (src/cli does); cache problems are caught here, per stanza and once more around each
// phase, and become warnings in the report.
namespace ephemera::session {

// What a session needs to know, already resolved (defaults applied, environment read).
struct Options {
  std::filesystem::path root = "/"; // re-bases every absolute path
  std::string home;                 // the job's $HOME, job-visible absolute
  std::string workdir;              // the job's working directory, job-visible absolute
  std::filesystem::path state_dir;  // see default_state_dir
  StoreOptions store;
  policy::Context context; // a repository "" becomes "default"
  std::string job_file;    // as the agent named it, for the report ("" none)
};

// The job file as the session uses it: its stanzas checked and compiled.
struct Job {
  jobfile::JobSpec spec;
  std::vector<Stanza> stanzas; // job file's first, then its persist file's
};

// A stanza's report entry in a phase.
using report::Phase;

class Session {
public:
  explicit Session(Options options);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const Options& options() const { return m_options; }
  const policy::Context& context() const { return m_options.context; }
  const rules::Anchors& anchors() const { return m_anchors; }
  StateDir& state() { return m_state; }

  // Reads the job file (and the persist file given, else the sibling); logs its lints.
  // Throws util::InputError (the author's error).
  const Job& load_job(const std::filesystem::path& job_file,
                      const std::optional<std::filesystem::path>& persist_file);
  bool has_job() const { return m_job.has_value(); }
  // The loaded job, or an empty one (enabled, no stanzas) when none was loaded.
  const Job& job() const;

  // The store, opened on first use; throws StoreError when it cannot be reached.
  store::Catalog& catalog();

  // The stanza's key (session::compute_key: key_files matched relative to the workdir), its
  // warnings logged (a key file matching nothing). Throws util::Error naming a key file that
  // cannot be read.
  std::string key_of(const Stanza& stanza) const;
  // The same, with the files that went into it and the warnings, for `plan`.
  KeyFiles key_files(const Stanza& stanza) const;

  // What a restore of the stanza under this key asks the store for: its scope, the key then
  // its restore_keys prefixes, the job's branch, trust and origin.
  store::LookupRequest lookup_request(const Stanza& stanza, const std::string& key) const;

  // pre: restores every stanza of the loaded job the policy allows and records the report.
  std::vector<report::Entry> run_pre();
  // post: saves every stanza of the job (if one was loaded) and every in-job nomination the
  // policy allows for this outcome, and records the report.
  std::vector<report::Entry> run_post(policy::Outcome outcome);
  // `ephemera restore`: the one stanza, if the policy allows (key_override: --key).
  report::Entry run_restore(const Stanza& stanza, const std::optional<std::string>& key_override);
  // `ephemera persist`: records the nomination for post, and reports what it matches now.
  report::Entry run_persist(const Stanza& stanza);

  // Restore or save one stanza now (the policy has allowed it).
  report::Entry restore(const Stanza& stanza, Phase phase,
                        const std::optional<std::string>& key_override = std::nullopt);
  report::Entry save(const Stanza& stanza, Phase phase);

  // Appends to the report in the state dir; on failure warns and the results stand.
  void record(const std::vector<report::Entry>& entries);

  // True when some stanza, or the bookkeeping, hit a cache problem (for --strict).
  bool had_problem() const { return m_problem; }

private:
  // After a miss: asks the store again, surveying the repository's folder, and says what it
  // holds of the stanza and why each save was passed over: one line in the log and the
  // entry's reason, and with -v a line per save. Never throws: a miss stays a miss.
  void explain(report::Entry& entry, const store::LookupRequest& request);
  report::Entry fail(report::Entry entry, const std::string& what, const std::exception& e);
  // A restore the time budget stopped: a miss, the reason starting "budget:", and a warning.
  // Not a cache problem (--strict does not fail on it): the operator chose the budget.
  report::Entry out_of_budget(report::Entry entry, const std::exception& e);
  // Appends the phase's event record to the store (store/events.hpp) when some entry acted:
  // after the work, never failing the job (a failure is a warning, not a cache problem).
  void publish_event(Phase phase, const std::vector<report::Entry>& entries, double seconds);
  // A cache problem outside any one stanza: warns and counts, never fails the job.
  void problem(const std::string& what);
  // The phase's catch boundary: runs fn; a cache problem escaping it (not the author's
  // InputError) is warned about and counted, and what was done so far stands.
  void guarded(const char* phase, const std::function<void()>& fn);
  std::vector<report::Entry> disabled(Phase phase);
  report::Entry not_acting(Phase phase, const Stanza& stanza, const policy::Decision& decision,
                           const char* verb);

  Options m_options;
  rules::Anchors m_anchors;
  StateDir m_state;
  std::optional<Job> m_job;
  std::unique_ptr<store::Catalog> m_catalog;
  bool m_problem = false;
};

// The job part of the report.
nlohmann::json job_json(const std::string& job_file, const policy::Context& context,
                        const jobfile::JobSpec* job);

} // namespace ephemera::session
