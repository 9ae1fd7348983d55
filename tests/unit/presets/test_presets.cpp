#include "jobfile/reader.hpp"
#include "presets/expand.hpp"
#include "presets/presets.hpp"
#include "presets/probe.hpp"
#include "rules/rules.hpp"
#include "util/fs.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <sys/stat.h>

using namespace ephemera;
namespace fs = std::filesystem;

namespace {

fs::path put(const fs::path& p, const std::string& content) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << content;
  return p;
}

rules::RuleSet compile(const std::vector<jobfile::Located<std::string>>& located) {
  std::vector<rules::Rule> parsed;
  for (const auto& r : located) {
    parsed.push_back(rules::parse_rule(r.value));
  }
  return rules::RuleSet::compile(std::move(parsed));
}

bool selected(const rules::RuleSet& set, std::string_view rel) {
  return set.selects(rules::Anchor::work, rel).has_value();
}

// PATH set for the life of the object.
struct ScopedPath {
  explicit ScopedPath(const std::string& path) {
    const char* was = std::getenv("PATH");
    m_was = was != nullptr ? was : "";
    ::setenv("PATH", path.c_str(), 1);
  }
  ~ScopedPath() { ::setenv("PATH", m_was.c_str(), 1); }
  std::string m_was;
};

const char* k_lock = R"(version = 3

[[package]]
name = "app"
version = "0.1.0"
dependencies = ["itoa-fmt", "memchr"]

[[package]]
name = "itoa"
version = "1.0.1"
source = "registry+https://github.com/rust-lang/crates.io-index"

[[package]]
name = "itoa-fmt"
version = "0.1.0"

[[package]]
name = "memchr"
version = "2.5.0"
source = "git+https://github.com/BurntSushi/memchr#abc"
)";

} // namespace

TEST_CASE("every preset the issue asks for exists, with rules that parse", "[presets]") {
  for (const char* name : {"cargo-registry", "cargo-deps", "npm", "node-modules", "pnpm", "yarn",
                           "ccache", "go", "pip", "gradle", "maven"}) {
    INFO(name);
    const auto* p = presets::find(name);
    REQUIRE(p != nullptr);
    CHECK(jobfile::valid_stanza_name(p->name));
    bool include = false;
    for (const auto& r : p->rules) {
      include = !rules::parse_rule(r).exclude || include;
    }
    CHECK(include);
    CHECK_FALSE(presets::describe(*p).empty());
  }
  CHECK(presets::find("cargo") == nullptr);
  CHECK(presets::names().size() == presets::all().size());
}

TEST_CASE("a preset fills only the keys a stanza does not write", "[presets]") {
  const auto* p = presets::find("ccache");
  REQUIRE(p != nullptr);
  jobfile::PersistSpec s;
  s.preset = {"ccache", {"job.toml", 4, 10}};
  s.cache_key = {"mine", {}};
  presets::apply(s, *p, {"preset", "epoch", "cache_key"});
  CHECK(s.name.value == "ccache");
  CHECK(s.name.pos.line == 4);
  CHECK(s.cache_key.value == "mine");
  REQUIRE(s.rules.size() == p->rules.size());
  CHECK(s.rules[0].value == "~/.cache/ccache");
  CHECK(s.level == 1);
  CHECK(s.content_addressed);
  CHECK_FALSE(s.derived_rules);

  jobfile::PersistSpec t;
  t.preset = {"cargo-deps", {}};
  t.rules = {{"target", {}}};
  presets::apply(t, *presets::find("cargo-deps"), {"preset", "rules", "epoch"});
  CHECK(t.rules.size() == 1);
  CHECK_FALSE(t.derived_rules); // written rules: nothing is derived on top of them
}

TEST_CASE("a preset stanza is read, overridden and refused as written", "[presets]") {
  util::TempDir dir;
  auto job = put(dir.path() / "job.toml", "name = \"j\"\nvariety = \"v\"\n[[persist]]\n"
                                          "preset = \"npm\"\nepoch = 1\nlevel = 9\n");
  auto spec = jobfile::load_job(job);
  REQUIRE(spec.persist.size() == 1);
  const auto& s = spec.persist[0];
  CHECK(s.name.value == "npm");
  CHECK(s.preset.value == "npm");
  CHECK(s.level == 9);
  CHECK(s.key_files.at(0).value == "package-lock.json");
  CHECK(s.restore_keys.at(0).value == "npm-");

  auto bad = put(dir.path() / "bad.toml",
                 "name = \"j\"\nvariety = \"v\"\n[[persist]]\npreset = \"cargo-dep\"\nepoch = 1\n");
  try {
    jobfile::load_job(bad);
    FAIL("an unknown preset was accepted");
  } catch (const util::InputError& e) {
    REQUIRE(e.diagnostics().size() == 1); // not also "name is required", "rules is required"
    CHECK(e.diagnostics()[0].pos.line == 4);
    CHECK_THAT(e.diagnostics()[0].message, Catch::Contains("did you mean 'cargo-deps'"));
  }
  auto two = put(dir.path() / "two.toml", "name = \"j\"\nvariety = \"v\"\n[[persist]]\n"
                                          "preset = \"npm\"\nepoch = 1\n[[persist]]\n"
                                          "preset = \"npm\"\nepoch = 2\n");
  CHECK_THROWS_AS(jobfile::load_job(two), util::InputError); // one name twice
}

TEST_CASE("Cargo.lock's workspace packages are those without a source", "[presets]") {
  CHECK(presets::cargo_workspace_packages(k_lock, "Cargo.lock") ==
        std::vector<std::string>{"app", "itoa-fmt"});
  CHECK(presets::cargo_workspace_packages("", "Cargo.lock").empty());
  CHECK_THROWS_AS(presets::cargo_workspace_packages("[[package]\n", "Cargo.lock"), util::Error);
}

TEST_CASE("cargo-deps keeps registry and git crates' artifacts, not the workspace's", "[presets]") {
  util::TempDir dir;
  put(dir.path() / "work" / "Cargo.lock", k_lock);
  jobfile::PersistSpec s;
  s.preset = {"cargo-deps", {}};
  presets::apply(s, *presets::find("cargo-deps"), {"preset", "epoch"});
  rules::Anchors anchors;
  anchors.root = dir.path();
  anchors.home = "/home";
  anchors.work = "/work";
  auto set = compile(presets::resolve(s, anchors).rules);
  const std::string h = "0fcf5385a3d91b49";
  for (const auto& kept :
       {".fingerprint/itoa-" + h, "build/memchr-" + h + "/out/x", "deps/libitoa-" + h + ".rlib",
        "deps/libitoa-" + h + ".rmeta", "deps/itoa-" + h + ".d", "deps/libmemchr-" + h + ".so"}) {
    INFO(kept);
    CHECK(selected(set, "target/debug/" + kept));
    CHECK(selected(set, "target/x86_64-unknown-linux-gnu/release/" + kept));
  }
  for (const auto& dropped :
       {".fingerprint/itoa-fmt-" + h, ".fingerprint/app-" + h, "build/app-" + h + "/out",
        "deps/libitoa_fmt-" + h + ".rlib", "deps/itoa_fmt-" + h + ".d", "deps/app-" + h,
        "deps/app-" + h + ".d", std::string("incremental/app-x/s"), std::string("app")}) {
    INFO(dropped);
    CHECK_FALSE(selected(set, "target/debug/" + dropped));
  }
  CHECK_FALSE(selected(set, "src/lib.rs"));
}

TEST_CASE("a probe runs a program of the agent's PATH outside the job's directories", "[presets]") {
  util::TempDir dir;
  auto job_bin = dir.path() / "home" / "bin";
  put(job_bin / "rustc", "#!/bin/sh\necho planted\n");
  ::chmod((job_bin / "rustc").c_str(), 0755);
  ScopedPath path(job_bin.string() + ":relative/bin::/usr/bin:/bin");
  auto trusted = presets::trusted_path(std::getenv("PATH"), {dir.path() / "home"});
  CHECK(std::find(trusted.begin(), trusted.end(), job_bin) == trusted.end());
  CHECK(std::find(trusted.begin(), trusted.end(), fs::path("/usr/bin")) != trusted.end());
  CHECK(std::find(trusted.begin(), trusted.end(), fs::path("relative/bin")) == trusted.end());
  CHECK(presets::find_program("rustc", {job_bin}) == job_bin / "rustc");
  CHECK_FALSE(presets::find_program("../home/bin/rustc", {dir.path()}));

  // In the job's home: not run, and the answer says so.
  auto r = presets::run_probe({"rustc", {"-vV"}}, {dir.path() / "home"});
  CHECK(r.output.find("planted") == std::string::npos);

  // A group-writable directory is not the agent's: skipped.
  ::chmod(job_bin.c_str(), 0775);
  CHECK(presets::trusted_path(job_bin.string(), {}).empty());
  ::chmod(job_bin.c_str(), 0755);
  CHECK(presets::trusted_path(job_bin.string(), {}).size() == 1);
}

TEST_CASE("a probe's program runs with a clean environment, in /, bounded in time", "[presets]") {
  ::setenv("EPHEMERA_PROBE_SECRET", "s3cret", 1);
  auto env = presets::run_probe({"env", {}}, {});
  REQUIRE(env.problem.empty());
  CHECK(env.output.find("LC_ALL=C") != std::string::npos);
  CHECK(env.output.find("s3cret") == std::string::npos);
  CHECK(env.output.find("HOME=") == std::string::npos);
  ::unsetenv("EPHEMERA_PROBE_SECRET");
  auto pwd = presets::run_probe({"pwd", {}}, {});
  CHECK(pwd.output == "/\n");
  auto slow = presets::run_probe({"sleep", {"30"}}, {}, 1);
  CHECK(slow.output.empty());
  CHECK_THAT(slow.problem, Catch::Contains("did not answer"));
  auto failing = presets::run_probe({"false", {}}, {});
  CHECK(failing.output.empty());
  CHECK_FALSE(failing.problem.empty());
  auto none = presets::run_probe({"no-such-program-here", {}}, {});
  CHECK_FALSE(none.program);
}

TEST_CASE("a Cargo.lock of too many workspace packages adds no rules", "[presets]") {
  util::TempDir dir;
  std::string lock;
  for (int i = 0; i < 1001; ++i) {
    lock += "[[package]]\nname = \"p" + std::to_string(i) + "\"\nversion = \"0.1.0\"\n";
  }
  put(dir.path() / "work" / "Cargo.lock", lock);
  jobfile::PersistSpec s;
  s.preset = {"cargo-deps", {}};
  presets::apply(s, *presets::find("cargo-deps"), {"preset", "epoch"});
  rules::Anchors anchors;
  anchors.root = dir.path();
  anchors.home = "/home";
  anchors.work = "/work";
  CHECK(presets::resolve(s, anchors).rules.size() == s.rules.size());
  // A planted fifo is refused, never opened: no rules, no hang.
  fs::remove(dir.path() / "work" / "Cargo.lock");
  REQUIRE(::mkfifo((dir.path() / "work" / "Cargo.lock").c_str(), 0644) == 0);
  CHECK(presets::resolve(s, anchors).rules.size() == s.rules.size());
}
