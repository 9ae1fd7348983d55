#include "session/session.hpp"

#include "jobfile/reader.hpp"
#include "policy/policy.hpp"
#include "presets/expand.hpp"
#include "session/progress.hpp"
#include "session/key_files.hpp"
#include "session/miss.hpp"
#include "store/catalog.hpp"
#include "store/events.hpp"
#include "store/url.hpp"
#include "util/budget.hpp"
#include "util/error.hpp"
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

namespace fs = std::filesystem;

Session::Session(Options options)
    : m_options(std::move(options)),
      m_state(m_options.state_dir, [this](const std::string& what) { problem(what); }) {
  m_anchors.root = m_options.root.empty() ? fs::path("/") : m_options.root;
  m_anchors.home = m_options.home;
  m_anchors.work = m_options.workdir;
  if (m_options.context.repository.empty()) {
    m_options.context.repository = "default";
  }
}

Session::~Session() = default;

const Job& Session::load_job(const fs::path& job_file,
                             const std::optional<fs::path>& persist_file) {
  Job job;
  job.spec = jobfile::load_job(job_file, persist_file);
  for (const auto& w : job.spec.warnings) {
    util::log::write("", w.str());
  }
  for (auto& spec : job.spec.persist) {
    spec = presets::resolve(std::move(spec), m_anchors); // before anything is restored
    auto origin = spec.source_file == job.spec.file ? Origin::job_file : Origin::persist_file;
    try {
      job.stanzas.emplace_back(spec, origin);
    } catch (const util::Error& e) {
      // Rules that parse but are too many or too large to compile together: the author's.
      throw util::InputError(spec.pos, fmt::format("persist '{}': {}", spec.name.value, e.what()));
    }
  }
  m_job = std::move(job);
  return *m_job;
}

const Job& Session::job() const {
  static const Job k_none;
  return m_job ? *m_job : k_none;
}

store::Catalog& Session::catalog() {
  if (!m_catalog) {
    m_catalog = open_catalog(m_options.store);
  }
  return *m_catalog;
}

KeyFiles Session::key_files(const Stanza& stanza) const {
  return compute_key(stanza.spec(), m_anchors);
}

std::string Session::key_of(const Stanza& stanza) const {
  auto k = key_files(stanza);
  for (const auto& w : k.warnings) {
    util::log::write("", w.str());
  }
  return k.key;
}

store::LookupRequest Session::lookup_request(const Stanza& stanza, const std::string& key) const {
  const auto& spec = stanza.spec();
  std::vector<std::string> prefixes;
  for (const auto& p : spec.restore_keys) {
    prefixes.push_back(p.value);
  }
  store::LookupRequest request;
  request.steps = policy::lookup_steps(key, prefixes);
  request.repository = context().repository;
  request.target = job().spec.target.value_or("");
  request.name = stanza.name();
  request.epoch = spec.epoch.value;
  request.branch = context().branch;
  request.own_branch_only = spec.share == jobfile::Share::branch;
  request.trusted = context().trusted;
  request.origin = context().origin;
  request.rules_digest = rules::rules_digest(stanza.rules().rules());
  for (const auto& r : stanza.rules().rules()) {
    request.rules.push_back(r.text);
  }
  return request;
}

void Session::explain(report::Entry& entry, const store::LookupRequest& request) {
  store::LookupRequest surveyed = request;
  surveyed.survey = true;
  const std::string scope =
      scope_shown({request.repository, request.target, request.name, request.epoch});
  try {
    auto why = explain_miss(catalog().lookup(surveyed), scope);
    util::log::info("restore '{}': {}", entry.name, why.summary);
    for (const auto& d : why.details) {
      util::log::debug("restore '{}': passed over {}", entry.name, d);
    }
    entry.reason += "; miss: " + why.summary;
  } catch (const std::exception& e) {
    util::log::debug("restore '{}': unable to say why it missed: {}", entry.name,
                     util::printable(e.what()));
  }
}

void Session::problem(const std::string& what) {
  m_problem = true;
  util::log::warn("{}", what);
}

void Session::guarded(const char* phase, const std::function<void()>& fn) {
  try {
    fn();
  } catch (const util::InputError&) {
    throw;
  } catch (const std::exception& e) {
    problem(fmt::format("{}: {} (the job goes on; what was done above stands)", phase,
                        util::printable(e.what())));
  }
}

report::Entry Session::fail(report::Entry entry, const std::string& what, const std::exception& e) {
  m_problem = true;
  entry.result = report::Result::failed;
  entry.error = e.what();
  util::log::warn("{} '{}': {} (the job goes on {})", what, entry.name, e.what(),
                  entry.phase == Phase::post || entry.phase == Phase::persist ? "without this save"
                                                                              : "cold");
  return entry;
}

report::Entry Session::out_of_budget(report::Entry entry, const std::exception& e) {
  entry.result = report::Result::miss;
  entry.budget = true;
  entry.step = report::Step::none;
  entry.prefix.clear();
  entry.branch_match.clear();
  entry.reason += fmt::format("; budget: {}: nothing was restored, the job goes on cold",
                              util::printable(e.what()));
  entry.warnings.push_back(util::printable(e.what()));
  util::log::warn("restore '{}': {}; nothing was restored, the job goes on cold", entry.name,
                  util::printable(e.what()));
  return entry;
}

report::Entry Session::not_acting(Phase phase, const Stanza& stanza, const policy::Decision& d,
                                  const char* verb) {
  report::Entry e;
  e.phase = phase;
  e.name = stanza.name();
  e.acted = false;
  e.reason = d.reason;
  e.result = report::Result::skipped;
  util::log::info("{} '{}': not {}: {}", report::to_string(phase), stanza.name(), verb, d.reason);
  return e;
}

std::vector<report::Entry> Session::disabled(Phase phase) {
  util::log::info("job '{}' is disabled (enable = false): {} does nothing", job().spec.name,
                  report::to_string(phase));
  std::vector<report::Entry> entries;
  for (const auto& stanza : job().stanzas) {
    report::Entry e;
    e.phase = phase;
    e.name = stanza.name();
    e.reason = "the job is disabled (enable = false)";
    e.result = report::Result::disabled;
    entries.push_back(e);
  }
  return entries;
}

void Session::publish_event(Phase phase, const std::vector<report::Entry>& entries,
                            double seconds) {
  // Nothing looked up or saved is worth no request; nor is a phase whose every stanza failed
  // (the store is likely down: one more request would only wait for it again).
  bool acted = false, any_ok = false;
  for (const auto& e : entries) {
    acted = acted || e.acted;
    any_ok = any_ok || (e.acted && e.result != report::Result::failed);
  }
  if (!acted || !any_ok) {
    return;
  }
  try {
    // A restore the budget stopped is worth counting: the record gets one second of its own.
    if (util::budget::passed()) {
      util::budget::start(1, "the second an event record may take after the budget");
    }
    store::Event e;
    e.phase = report::to_string(phase);
    e.repository = context().repository;
    e.target = job().spec.target.value_or("");
    e.job_id = context().job_id;
    e.branch = context().branch;
    e.trusted = context().trusted;
    e.created = store::rfc3339_now();
    e.seconds = seconds;
    for (const auto& entry : entries) {
      if (!entry.acted) {
        continue;
      }
      store::EventStanza s;
      s.name = entry.name;
      s.result = report::to_string(entry.result);
      s.step = report::to_string(entry.step);
      bool moved = entry.archive && (entry.result == report::Result::hit ||
                                     entry.result == report::Result::saved);
      s.moved = moved ? entry.moved_bytes : 0;
      s.stored = entry.result == report::Result::saved ? entry.moved_bytes : 0;
      s.seconds = entry.seconds;
      s.budget = entry.budget;
      e.stanzas.push_back(std::move(s));
    }
    store::write_event(catalog().backend(), e);
  } catch (const std::exception& ex) {
    util::log::warn("{}: the event record for `ephemera stats` was not written: {}",
                    report::to_string(phase), util::printable(ex.what()));
  }
}

std::vector<report::Entry> Session::run_pre() {
  auto start = std::chrono::steady_clock::now();
  std::vector<report::Entry> entries;
  guarded("pre", [&] {
    if (!job().spec.enable) {
      entries = disabled(Phase::pre);
      return;
    }
    for (const auto& stanza : job().stanzas) {
      auto d = policy::restore_decision(job().spec, stanza.spec(), context());
      if (!d.act) {
        entries.push_back(not_acting(Phase::pre, stanza, d, "restored"));
        continue;
      }
      auto e = restore(stanza, Phase::pre);
      e.reason = d.reason + e.reason;
      entries.push_back(std::move(e));
    }
  });
  guarded("pre", [&] { record(entries); });
  publish_event(Phase::pre, entries, seconds_since(start));
  return entries;
}

std::vector<report::Entry> Session::run_post(policy::Outcome outcome) {
  auto start = std::chrono::steady_clock::now();
  std::vector<report::Entry> entries;
  guarded("post", [&] {
    if (!job().spec.enable) {
      entries = disabled(Phase::post);
      return;
    }
    std::vector<Stanza> stanzas = job().stanzas;
    for (auto& n : m_state.nominated()) {
      bool clash = false;
      for (const auto& st : job().stanzas) {
        clash = clash || st.name() == n.name();
      }
      if (clash) {
        util::log::warn("persist '{}' was nominated in the job but the job file already has a "
                        "stanza of that name: the job file's stanza wins",
                        n.name());
        continue;
      }
      stanzas.push_back(std::move(n));
    }
    for (const auto& stanza : stanzas) {
      Phase phase = stanza.origin() == Origin::in_job ? Phase::persist : Phase::post;
      auto d = policy::save_decision(job().spec, stanza.spec(), context(), outcome);
      if (!d.act) {
        entries.push_back(not_acting(phase, stanza, d, "saved"));
        continue;
      }
      auto e = save(stanza, phase);
      e.reason = d.reason + e.reason;
      entries.push_back(std::move(e));
    }
  });
  guarded("post", [&] { record(entries); });
  publish_event(Phase::post, entries, seconds_since(start));
  return entries;
}

report::Entry Session::run_restore(const Stanza& stanza,
                                   const std::optional<std::string>& key_override) {
  report::Entry e;
  e.phase = Phase::restore;
  e.name = stanza.name();
  e.result = report::Result::failed; // unless the restore, or the policy, says otherwise
  guarded("restore", [&] {
    auto d = policy::restore_decision(job().spec, stanza.spec(), context(), policy::RestoreBy::job);
    if (!d.act) {
      e.reason = d.reason;
      e.result = report::Result::skipped;
      util::log::info("restore '{}': not restored: {}", stanza.name(), d.reason);
      return;
    }
    e = restore(stanza, Phase::restore, key_override);
    e.reason = d.reason + e.reason;
  });
  guarded("restore", [&] { record({e}); });
  publish_event(Phase::restore, {e}, e.seconds);
  return e;
}

report::Entry Session::run_persist(const Stanza& stanza) {
  report::Entry e;
  e.phase = Phase::persist;
  e.result = report::Result::failed; // unless the nomination is recorded
  e.name = stanza.name();
  e.acted = true;
  e.reason = "nominated in the job: post saves it if the job succeeds and the policy allows";
  e.key_wanted = stanza.spec().cache_key.value;
  guarded("persist", [&] {
    auto not_recorded = m_state.nominate(stanza);
    e.result = not_recorded ? report::Result::failed : report::Result::nominated;
    e.error = not_recorded.value_or("");
    if (not_recorded) {
      return;
    }
    auto walked = rules::walk(stanza.rules(), m_anchors);
    uint64_t bytes = 0;
    for (const auto& entry : walked.entries) {
      bytes += entry.size;
    }
    util::log::info("persist '{}': nominated (epoch {}, key '{}'); it matches {} entries, {} now; "
                    "post saves it after success",
                    stanza.name(), stanza.spec().epoch.value, stanza.spec().cache_key.value,
                    walked.entries.size(), report::human_bytes(bytes));
  });
  guarded("persist", [&] { record({e}); });
  return e;
}

void Session::record(const std::vector<report::Entry>& entries) {
  m_state.append_report(job_json(m_options.job_file, context(), m_job ? &m_job->spec : nullptr),
                        store::redact_url(m_options.store.resolved_url()), entries);
}

nlohmann::json job_json(const std::string& job_file, const policy::Context& c,
                        const jobfile::JobSpec* job) {
  return nlohmann::json{
      {"file", job_file},
      {"name", job ? job->name : ""},
      {"variety", job ? job->variety : ""},
      {"target", job && job->target ? nlohmann::json(*job->target) : nlohmann::json(nullptr)},
      {"repository", c.repository},
      {"branch", c.branch},
      {"commit", c.commit},
      {"job_id", c.job_id},
      {"event", policy::to_string(c.event)},
      {"trusted", c.trusted},
      {"origin", c.origin}};
}

} // namespace ephemera::session
