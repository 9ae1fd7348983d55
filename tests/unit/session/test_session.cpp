// A session driven directly, without the CLI: a job's pre and post against a local store in
// a temporary directory, each "machine" a fresh root with /work/job and /home/build.
#include "session/layout.hpp"
#include "session/session.hpp"
#include "session/stanza.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"

#include <catch2/catch.hpp>

#include <fstream>

using namespace ephemera;
namespace fs = std::filesystem;

namespace {

void write(const fs::path& p, const std::string& content) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << content;
}

// A scratch world: a store and job files shared by the machines made in it.
class World {
public:
  World() { fs::create_directories(m_dir.path() / "store"); }

  // A job file of one stanza 'deps' keeping target/, with extra TOML lines in the stanza.
  fs::path job(const std::string& extra = "", const std::string& name = "job.toml") {
    fs::path file = m_dir.path() / name;
    write(file, "name = \"build\"\nvariety = \"basic\"\n\n[[persist]]\nname = \"deps\"\n"
                "rules = [\"target\"]\nepoch = 1\ncache_key = \"deps\"\n" +
                    extra);
    return file;
  }

  // A fresh machine, its session options for a pull request on branch 'feature'.
  session::Options machine(const std::string& name) {
    fs::path root = m_dir.path() / name;
    fs::create_directories(root / "work/job");
    fs::create_directories(root / "home/build");
    session::Options o;
    o.root = root;
    o.home = "/home/build";
    o.workdir = "/work/job";
    o.state_dir = root / "state";
    o.store.url = (m_dir.path() / "store").string();
    o.context.repository = "acme/widget";
    o.context.branch = "feature";
    o.context.event = policy::Event::pull_request;
    o.context.job_id = "job-" + name;
    o.context.commit = "feedface";
    return o;
  }

private:
  util::TempDir m_dir;
};

std::string result_of(const std::vector<report::Entry>& entries, const std::string& name) {
  for (const auto& e : entries) {
    if (e.name == name) {
      return report::to_string(e.result);
    }
  }
  return "none";
}

// What a phase of a session does on a machine, with the job file loaded.
std::vector<report::Entry> pre(const session::Options& o, const fs::path& job) {
  session::Session s(o);
  s.load_job(job, std::nullopt);
  return s.run_pre();
}

std::vector<report::Entry> post(const session::Options& o, const fs::path& job,
                                policy::Outcome outcome = policy::Outcome::success) {
  session::Session s(o);
  s.load_job(job, std::nullopt);
  return s.run_post(outcome);
}

// The messages of the InputError fn throws.
std::vector<std::string> errors_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const util::InputError& e) {
    std::vector<std::string> out;
    for (const auto& d : e.diagnostics()) {
      out.push_back(d.message);
    }
    return out;
  }
  return {};
}

} // namespace

TEST_CASE("a saved stanza is restored on a fresh machine; another key is a miss", "[session]") {
  World w;
  auto job = w.job();
  auto one = w.machine("one");
  write(one.root / "work/job/target/out", "built");
  auto saved = post(one, job);
  REQUIRE(saved.size() == 1);
  CHECK(saved[0].result == report::Result::saved);
  REQUIRE(saved[0].archive);
  CHECK(saved[0].archive->files == 1);

  auto two = w.machine("two");
  auto restored = pre(two, job);
  REQUIRE(restored.size() == 1);
  CHECK(restored[0].result == report::Result::hit);
  CHECK(restored[0].step == report::Step::exact);
  CHECK(util::read_file(two.root / "work/job/target/out") == "built");
  // The report in the state dir says the same.
  auto r = report::load(two.state_dir);
  REQUIRE(r.entries.size() == 1);
  CHECK(r.entries[0].result == report::Result::hit);

  fs::path changed = w.job("", "changed.toml");
  write(changed, "name = \"build\"\nvariety = \"basic\"\n\n[[persist]]\nname = \"deps\"\n"
                 "rules = [\"target\"]\nepoch = 1\ncache_key = \"other\"\n");
  auto four = w.machine("four");
  auto miss = pre(four, changed);
  CHECK(result_of(miss, "deps") == "miss");
  CHECK_FALSE(fs::exists(four.root / "work/job/target/out"));
}

TEST_CASE("post skips the save of a set unchanged since its restore", "[session]") {
  World w;
  auto job = w.job();
  auto one = w.machine("one");
  write(one.root / "work/job/target/out", "built");
  REQUIRE(result_of(post(one, job), "deps") == "saved");

  auto two = w.machine("two");
  REQUIRE(result_of(pre(two, job), "deps") == "hit");
  CHECK(result_of(post(two, job), "deps") == "unchanged");
  write(two.root / "work/job/target/more", "new");
  CHECK(result_of(post(two, job), "deps") == "saved");
}

TEST_CASE("an untrusted job saves only with an origin and never warms a trusted one", "[session]") {
  World w;
  auto job = w.job();
  auto fork = w.machine("fork");
  fork.context.trusted = false;
  write(fork.root / "work/job/target/out", "poison");
  auto skipped = post(fork, job);
  CHECK(result_of(skipped, "deps") == "skipped");
  CHECK_THAT(skipped[0].reason, Catch::Contains("no origin"));

  fork.context.origin = "pr-7";
  REQUIRE(result_of(post(fork, job), "deps") == "saved");

  auto trusted = w.machine("trusted");
  CHECK(result_of(pre(trusted, job), "deps") == "miss");
  CHECK_FALSE(fs::exists(trusted.root / "work/job/target/out"));

  auto same = w.machine("same");
  same.context.trusted = false;
  same.context.origin = "pr-7";
  CHECK(result_of(pre(same, job), "deps") == "hit");
  auto other = w.machine("other");
  other.context.trusted = false;
  other.context.origin = "pr-8";
  CHECK(result_of(pre(other, job), "deps") == "miss");

  // A push to a protected branch restores nothing and saves nothing.
  auto main = w.machine("main");
  main.context.branch = "main";
  main.context.event = policy::Event::push;
  write(main.root / "work/job/target/out", "release");
  CHECK(result_of(pre(main, job), "deps") == "skipped");
  CHECK(result_of(post(main, job), "deps") == "skipped");
  // Nor does a failed job.
  auto failed = w.machine("failed");
  write(failed.root / "work/job/target/out", "half");
  CHECK(result_of(post(failed, job, policy::Outcome::failure), "deps") == "skipped");
}

TEST_CASE("an in-job nomination is saved by post in the persist phase", "[session]") {
  World w;
  auto one = w.machine("one");
  write(one.root / "home/build/.tools/bin/t", "tool");
  session::InJobArgs args{"persist", "tools", {"~/.tools"}, "RULE", "1", "t1"};
  {
    session::Session s(one);
    CHECK(s.run_persist(session::in_job_stanza(args)).result == report::Result::nominated);
  }
  session::Session s(one);
  auto saved = s.run_post(policy::Outcome::success);
  REQUIRE(saved.size() == 1);
  CHECK(saved[0].phase == report::Phase::persist);
  CHECK(saved[0].result == report::Result::saved);

  auto two = w.machine("two");
  args.command = "restore";
  session::Session r(two);
  CHECK(r.run_restore(session::in_job_stanza(args), std::nullopt).result == report::Result::hit);
  CHECK(util::read_file(two.root / "home/build/.tools/bin/t") == "tool");
}

TEST_CASE("a stanza is refused in the job file and in the job for the same reasons", "[session]") {
  World w;
  auto one = w.machine("one");
  // Each case: the stanza's values in TOML and as in-job arguments, and the label each
  // gives every problem; after the label, the words are the same (an argument, having no
  // column, says at which byte a rule goes wrong).
  struct Case {
    std::string toml;
    session::InJobArgs args;
    std::vector<std::pair<std::string, std::string>> labels;
  };
  std::vector<Case> cases = {
      {"name = \"tools\"\nrules = [\"!x\"]\nepoch = 1\ncache_key = \"a/b c\"\n",
       {"persist", "tools", {"!x"}, "RULE", "1", "a/b c"},
       {{"persist[0].rules", "persist 'tools': RULE"},
        {"persist[0].cache_key", "persist 'tools': --key"}}},
      {"name = \"Tools\"\nrules = [\"x\"]\nepoch = 1\n",
       {"persist", "Tools", {"x"}, "RULE", "1", std::nullopt},
       {{"persist[0].name", "persist NAME"}}},
      {"name = \"tools\"\nrules = [\"a/**b\"]\nepoch = 1\n",
       {"restore", "tools", {"a/**b"}, "--rule", "1", std::nullopt},
       {{"persist[0].rules[0]", "restore 'tools': --rule"}}},
  };
  for (const auto& c : cases) {
    fs::path job = one.root / "stanza.toml";
    write(job, "name = \"build\"\nvariety = \"basic\"\n\n[[persist]]\n" + c.toml);
    session::Session s(one);
    auto from_toml = errors_of([&] { s.load_job(job, std::nullopt); });
    auto in_job = errors_of([&] { session::in_job_stanza(c.args); });
    INFO(c.toml);
    REQUIRE(from_toml.size() == c.labels.size());
    REQUIRE(in_job.size() == c.labels.size());
    for (size_t i = 0; i < c.labels.size(); ++i) {
      const auto& [toml_label, arg_label] = c.labels[i];
      REQUIRE_THAT(from_toml[i], Catch::StartsWith(toml_label + " "));
      REQUIRE_THAT(in_job[i], Catch::StartsWith(arg_label + " "));
      CHECK_THAT(in_job[i].substr(arg_label.size()),
                 Catch::StartsWith(from_toml[i].substr(toml_label.size())));
    }
  }
  // Arguments say which argument is wrong.
  auto problems = errors_of([] {
    session::in_job_stanza({"persist", "tools", {"!x"}, "RULE", "1", "a/b c"});
  });
  REQUIRE(problems.size() == 2);
  CHECK_THAT(problems[0], Catch::StartsWith("persist 'tools': RULE has only '!' rules"));
  CHECK_THAT(problems[1], Catch::StartsWith("persist 'tools': --key 'a/b c' may hold only"));
  CHECK_THAT(errors_of([] {
               session::in_job_stanza({"restore", "tools", {"x"}, "--rule", "-1", std::nullopt});
             }).at(0),
             Catch::Contains("--epoch '-1' must be an integer >= 0"));
}

TEST_CASE("entry names are the anchor's folder and a plain relative path", "[session]") {
  CHECK(session::entry_name(rules::Anchor::home, ".cargo/x") == "home/.cargo/x");
  auto split = session::split_entry_name("work/a/b/");
  REQUIRE(split);
  CHECK(split->first == rules::Anchor::work);
  CHECK(split->second == "a/b");
  for (const char* bad :
       {"work", "work/", "tmp/a", "work/../a", "work/a//b", "root//etc", "home/./x", "/work/a"}) {
    INFO(bad);
    CHECK_FALSE(session::split_entry_name(bad));
  }
}
