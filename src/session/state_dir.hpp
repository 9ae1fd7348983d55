#pragma once

#include "report/report.hpp"
#include "session/stanza.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ephemera::session {

// The state dir of one job when none is given: /tmp/ephemera-state/<job id, made a safe
// file name, or a digest of the workdir> under root.
std::filesystem::path default_state_dir(const std::filesystem::path& root,
                                        const std::string& job_id, const std::string& workdir);

// Where pre, persist, restore and post of one job share what the job did: fingerprints/,
// nominated/, staging/ (restore journals), tmp/ and report.json. The state dir is exported
// into the job, which can write anything there: every file in it is read with type and
// size checks and without following symlinks, and a bookkeeping failure is a cache
// problem, handed to the problem callback (which warns), never an exception.
class StateDir {
public:
  using Problem = std::function<void(const std::string&)>;

  StateDir(std::filesystem::path path, Problem problem)
      : m_path(std::move(path)), m_problem(std::move(problem)) {}

  const std::filesystem::path& path() const { return m_path; }

  // Where a save or restore stages its archive: tmp/, refused when it is a symlink or no
  // directory (then the system's temporary directory).
  std::filesystem::path scratch();
  // The journal of a restore of this stanza (its parent is made by the caller).
  std::filesystem::path journal(const std::string& stanza) const;

  // What pre restored of a stanza, for post's "nothing changed".
  void save_fingerprint(const std::string& name, const std::string& key,
                        const std::string& fingerprint);
  // (key, fingerprint), or nullopt when none was recorded or it is not one ephemera wrote.
  std::optional<std::pair<std::string, std::string>> load_fingerprint(const std::string& name);

  // What a content-addressed restore of a stanza left for its save (cas/): the index it
  // restored, which becomes the save's base, and the record of the files it wrote
  // (cas::SeenFiles, encoded), so the save reads only files changed since.
  struct CasBase {
    std::string scope; // the index's scope id
    std::string key;
    std::string sha256;
    uint64_t size = 0;
    std::string seen;
  };
  void save_cas_base(const std::string& name, const CasBase& base);
  // nullopt when none was recorded or it is not one ephemera wrote (a problem, then).
  std::optional<CasBase> load_cas_base(const std::string& name);

  // What a content-addressed restore of a stanza refused for its content: the save's index,
  // why, and the pack whose stored bytes were not the index's (hex), when it was one. A save
  // of the stanza builds on none of these (cas_transfer.hpp).
  struct CasRefusal {
    std::string scope; // the index's scope id
    std::string key;   // the index's key
    std::string pack;  // hex SHA-256 of the pack refused, or empty
    std::string reason;
  };
  // Adds one to those recorded (the latest k_max_cas_refusals are kept).
  void add_cas_refusal(const std::string& name, const CasRefusal& refusal);
  // Those recorded; an entry not as ephemera writes them is left out (a problem, then).
  std::vector<CasRefusal> cas_refusals(const std::string& name);
  static constexpr size_t k_max_cas_refusals = 64;

  // Records an in-job nomination; on failure reports the problem and returns why.
  std::optional<std::string> nominate(const Stanza& stanza);
  // The nominations, each checked as a stanza; a bad one is skipped with a problem naming
  // its file, the others are kept.
  std::vector<Stanza> nominated();

  // Appends to report.json; on failure reports the problem and the results stand.
  void append_report(const nlohmann::json& job, const std::string& store,
                     const std::vector<report::Entry>& entries);

private:
  std::filesystem::path m_path;
  Problem m_problem;
};

} // namespace ephemera::session
