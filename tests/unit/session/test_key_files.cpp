// session::compute_key: key_files as patterns of the rules language, matched in a scratch
// tree, sorted, bounded, with warnings for patterns that match nothing.
#include "policy/policy.hpp"
#include "session/key_files.hpp"
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

jobfile::PersistSpec spec_of(const std::vector<std::string>& key_files) {
  jobfile::PersistSpec s;
  s.name.value = "deps";
  s.cache_key.value = "deps";
  int line = 1;
  for (const auto& f : key_files) {
    s.key_files.push_back({f, util::Position{"job.toml", line++, 13}});
  }
  return s;
}

struct Tree {
  util::TempDir dir;
  rules::Anchors anchors;
  Tree() {
    anchors.root = dir.path();
    anchors.home = "/home/build";
    anchors.work = "/work/job";
    fs::create_directories(dir.path() / "work/job");
  }
  fs::path work(const std::string& rel) const { return dir.path() / "work/job" / rel; }
};

} // namespace

TEST_CASE("key_files globs match at any depth, sorted, each with its path", "[session]") {
  Tree t;
  write(t.work("b/package-lock.json"), "b");
  write(t.work("a/x/package-lock.json"), "a");
  write(t.work("package-lock.json"), "top");
  auto k = session::compute_key(spec_of({"**/package-lock.json"}), t.anchors);
  CHECK(k.files == std::vector<std::string>{"a/x/package-lock.json", "b/package-lock.json",
                                            "package-lock.json"});
  CHECK(k.bytes == 5);
  CHECK(k.warnings.empty());
  // The same files named one by one, in another order, give the same key: the order is the
  // digest's, not the author's.
  auto listed = session::compute_key(
      spec_of({"package-lock.json", "b/package-lock.json", "a/x/package-lock.json"}), t.anchors);
  CHECK(listed.key == k.key);
  // A plain path hashes as it did before patterns: path and bytes, as compute_key does.
  auto plain = session::compute_key(spec_of({"package-lock.json"}), t.anchors);
  CHECK(plain.key == policy::compute_key("deps", {{"package-lock.json", "top"}}));
  // The path is part of the digest: moving a file changes the key.
  fs::rename(t.work("b"), t.work("c"));
  CHECK(session::compute_key(spec_of({"**/package-lock.json"}), t.anchors).key != k.key);
}

TEST_CASE("a key file matching nothing is a warning at its position and a marker", "[session]") {
  Tree t;
  write(t.work("Cargo.lock"), "x");
  auto k = session::compute_key(spec_of({"Cargo.lock", "Carg.lock"}), t.anchors);
  REQUIRE(k.warnings.size() == 1);
  CHECK(k.warnings[0].severity == util::Severity::warning);
  CHECK(k.warnings[0].pos.line == 2);
  CHECK(k.warnings[0].message.find("'Carg.lock' matches nothing in /work/job") !=
        std::string::npos);
  auto before = k.key;
  write(t.work("Carg.lock"), "");
  CHECK(session::compute_key(spec_of({"Cargo.lock", "Carg.lock"}), t.anchors).key != before);
}

TEST_CASE("a preset's key files warn only when none is there", "[session]") {
  Tree t;
  auto s = spec_of({"Cargo.lock", "rust-toolchain.toml"});
  s.preset_key_files = true;
  s.preset.value = "cargo-deps";
  CHECK(session::compute_key(s, t.anchors).warnings.size() == 1);
  write(t.work("Cargo.lock"), "x");
  CHECK(session::compute_key(s, t.anchors).warnings.empty());
}

TEST_CASE("key files are bounded in number", "[session]") {
  Tree t;
  for (size_t i = 0; i <= session::k_max_key_files; ++i) {
    write(t.work("many/f" + std::to_string(i)), "");
  }
  CHECK_THROWS_WITH(session::compute_key(spec_of({"many/*"}), t.anchors),
                    Catch::Contains("more than the 10000 a key may hash"));
}
