#pragma once

#include "cli/cli.hpp"
#include "cli/context.hpp"
#include "jobfile/job_spec.hpp"
#include "policy/policy.hpp"
#include "report/report.hpp"
#include "rules/rules.hpp"
#include "rules/walk.hpp"

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ephemera::store {
class Catalog;
}

// What pre, post, restore, persist and plan share: the job, its context, the store, the
// state dir, and restoring or saving one stanza. Cache problems are caught here, per
// stanza, and become warnings in the report (errors with --strict).
namespace ephemera::cli {

class Session {
public:
  Session(const Globals& globals, const ContextOptions& options);
  ~Session();

  const Globals& globals() const { return m_globals; }
  const ContextOptions& options() const { return m_options; }
  const policy::Context& context() const { return m_context; }
  const rules::Anchors& anchors() const { return m_anchors; }
  const std::filesystem::path& state_dir() const { return m_state_dir; }

  // Reads --job (and the persist file); prints the lints. Throws InputError (exit 2).
  const jobfile::JobSpec& load_job();
  const jobfile::JobSpec& job() const { return m_job; }
  bool has_job() const { return m_loaded; }

  // The store, opened on first use; throws StoreError when it cannot be reached.
  store::Catalog& catalog();
  std::string store_url() const;

  // The stanza's key from cache_key and key_files (read relative to the workdir).
  std::string key_of(const jobfile::PersistSpec& stanza) const;

  // Restore one stanza now; the entry says what happened (hit, miss, failed).
  report::Entry restore(const jobfile::PersistSpec& stanza, const std::string& phase,
                        const std::optional<std::string>& key_override = std::nullopt);
  // Save one stanza now (the policy has allowed it).
  report::Entry save(const jobfile::PersistSpec& stanza, const std::string& phase);

  // The state dir is exported into the job, which can write anything there: every file
  // in it is read with type and size checks and without following symlinks, and a
  // bookkeeping failure is a cache problem (a warning naming the file; --strict fails).

  // Stanzas nominated in the job by `ephemera persist`, each validated as a stanza; a bad
  // nomination is skipped with a warning naming its file, the others are kept.
  std::vector<jobfile::PersistSpec> nominated();
  // Records the nomination; on failure warns and returns why.
  std::optional<std::string> nominate(const jobfile::PersistSpec& stanza);

  // Appends to the report in the state dir; on failure warns and the results stand.
  void record(const std::vector<report::Entry>& entries);

  // True when some stanza hit a cache problem (for --strict).
  bool had_problem() const { return m_problem; }

private:
  report::Entry fail(report::Entry entry, const std::string& what, const std::exception& e);
  // A state-dir problem: warns and counts as a cache problem, never fails the stanza.
  void bookkeeping_problem(const std::string& what);
  // Where a save or restore stages its archive: the state dir's tmp/, refused when it is
  // a symlink or no directory (then the system's temporary directory).
  std::filesystem::path scratch_dir();
  void save_fingerprint(const std::string& name, const std::string& key,
                        const std::string& fingerprint);
  std::optional<std::pair<std::string, std::string>> load_fingerprint(const std::string& name);

  Globals m_globals;
  ContextOptions m_options;
  policy::Context m_context;
  rules::Anchors m_anchors;
  std::filesystem::path m_state_dir;
  jobfile::JobSpec m_job;
  bool m_loaded = false;
  std::unique_ptr<store::Catalog> m_catalog;
  bool m_problem = false;
};

// "1234 files, 500.0 MiB, 120.0 MiB compressed, 3.10 s, 161.3 MB/s"
std::string cost_line(uint64_t files, uint64_t bytes, uint64_t compressed, double seconds);

} // namespace ephemera::cli
