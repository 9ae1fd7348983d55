#include "cli/context.hpp"

#include "util/budget.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/log.hpp"
#include "util/units.hpp"

#include <fmt/format.h>

#include <cstdlib>

namespace ephemera::cli {

namespace fs = std::filesystem;

void add_context_options(Command sub, ContextOptions& o, bool with_job) {
  if (with_job) {
    sub.add_option("--job", o.job, "The job file: a buildomat job script or a .toml file")
        .envname("EPHEMERA_JOB");
    sub.add_option("--persist", o.persist,
                   "A file of [[persist]] stanzas other than the sibling persist/<job>.toml");
  }
  sub.add_option("--repository", o.repository, "owner/name of the repository")
      .envname("GITHUB_REPOSITORY");
  sub.add_option("--branch", o.branch, "The branch the job builds").envname("GITHUB_BRANCH");
  sub.add_option("--commit", o.commit, "The commit the job builds").envname("GITHUB_SHA");
  sub.add_option("--job-id", o.job_id, "The job's id").envname("BUILDOMAT_JOB_ID");
  sub.add_option("--event", o.event, "push or pull_request").envname("EPHEMERA_EVENT");
  // No envname: CLI11 would read any value (even "-1") as a flag count or false.
  sub.add_flag("--untrusted", o.untrusted,
               "The job is untrusted, e.g. a pull request from a fork (EPHEMERA_UNTRUSTED=1)");
  sub.add_option("--origin", o.origin,
                 "For an untrusted job: the fork's repository or the pull request, which its "
                 "saves are bound to")
      .envname("EPHEMERA_ORIGIN");
  sub.add_option("--protected-branch", o.protected_branches,
                 "A protected branch besides main and master (repeatable)");
  sub.add_option("--workdir", o.workdir, "The job's working directory (default: current)");
  sub.add_option("--home", o.home, "The job's $HOME (default: $HOME)");
}

void add_budget_option(Command sub, std::string& budget) {
  // No envname: start_budget reads EPHEMERA_BUDGET itself, to name it in an error.
  sub.add_option("--budget", budget,
                 "The most the restores may take (120s, 5m; EPHEMERA_BUDGET): past it a restore "
                 "gives up, leaves nothing and the job goes on cold");
}

void start_budget(const std::string& flag) {
  std::string source = "--budget";
  std::string text = flag;
  if (flag.empty()) {
    const char* env = std::getenv("EPHEMERA_BUDGET");
    if (env == nullptr || *env == '\0') {
      util::budget::clear();
      return;
    }
    source = "EPHEMERA_BUDGET";
    text = env;
  }
  auto seconds = util::parse_duration(text);
  constexpr double k_most = 7 * 86400;
  if (!seconds || *seconds <= 0 || *seconds > k_most) {
    throw util::InputError(fmt::format("{} '{}' is not a time budget: give a duration above 0 "
                                       "and at most 7d, such as 120s or 5m",
                                       source, util::printable(text)));
  }
  util::budget::start(*seconds, fmt::format("{} {}", source, text));
}

policy::Context make_context(const ContextOptions& o) {
  policy::Context c;
  c.repository = o.repository;
  c.branch = policy::normalise_branch(o.branch);
  c.commit = o.commit;
  c.job_id = o.job_id;
  c.origin = o.origin;
  c.trusted = !o.untrusted;
  if (const char* env = std::getenv("EPHEMERA_UNTRUSTED"); env != nullptr && !o.untrusted) {
    auto untrusted = policy::parse_switch(env);
    if (!untrusted) {
      throw util::InputError(fmt::format("EPHEMERA_UNTRUSTED='{}' is not a value ephemera knows: "
                                         "use 1, true or yes (untrusted), or 0, false, no or "
                                         "empty (trusted)",
                                         util::printable(env)));
    }
    c.trusted = !*untrusted;
  }
  if (!o.event.empty()) {
    auto event = policy::parse_event(o.event);
    if (!event) {
      throw util::InputError(fmt::format(
          "--event '{}' is not an event ephemera knows: use push or pull_request", o.event));
    }
    c.event = *event;
  }
  for (const auto& b : o.protected_branches) {
    c.protected_branches.push_back(b);
  }
  return c;
}

std::string workdir_of(const ContextOptions& o) {
  if (!o.workdir.empty()) {
    return o.workdir;
  }
  return fs::current_path().string();
}

std::string home_of(const ContextOptions& o) {
  if (!o.home.empty()) {
    return o.home;
  }
  const char* home = std::getenv("HOME");
  return home != nullptr && *home != '\0' ? home : "/root";
}

fs::path state_dir_of(const Globals& g, const ContextOptions& o) {
  if (!g.state_dir.empty()) {
    return g.state_dir;
  }
  return session::default_state_dir(g.root, o.job_id, workdir_of(o));
}

session::StoreOptions store_options(const Globals& g) {
  session::StoreOptions s;
  s.url = g.store;
  return s;
}

session::Options session_options(const Globals& g, const ContextOptions& o) {
  session::Options s;
  s.root = g.root.empty() ? fs::path("/") : fs::path(g.root);
  s.home = home_of(o);
  s.workdir = workdir_of(o);
  s.state_dir = state_dir_of(g, o);
  s.store = store_options(g);
  s.context = make_context(o);
  s.job_file = o.job;
  return s;
}

std::optional<fs::path> persist_file_of(const ContextOptions& o) {
  if (o.persist.empty()) {
    return std::nullopt;
  }
  return fs::path(o.persist);
}

void load_job(session::Session& session, const ContextOptions& o) {
  if (o.job.empty()) {
    throw util::InputError("no job file: give --job FILE (or set EPHEMERA_JOB)");
  }
  session.load_job(o.job, persist_file_of(o));
}

} // namespace ephemera::cli
