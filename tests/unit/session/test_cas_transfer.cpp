// The base a content-addressed save of the session builds on (session/cas_transfer.hpp): never
// an index this job's restore refused for its content, nor one using a pack it refused; the
// next older save of the scope instead, else a full save whose packs take other names.
#include "../cas/helpers.hpp"
#include "session/cas_transfer.hpp"
#include "store/catalog.hpp"
#include "store/url.hpp"
#include "util/fs.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <vector>

using namespace ephemera;
using test::items_of;
using test::manifest_of;
using test::random_bytes;
using test::write;
namespace fs = std::filesystem;

namespace {

struct Saves {
  util::TempDir tmp;
  fs::path dir = tmp.path() / "store";
  fs::path src = tmp.path() / "src";
  store::Catalog catalog{store::open_backend(dir.string()), std::nullopt};
  cas::Scope scope{"acme/app", "linux", "deps", true, ""};
  std::vector<std::string> problems;
  session::StateDir state{tmp.path() / "state",
                          [this](const std::string& p) { problems.push_back(p); }};

  Saves() { fs::create_directories(src); }

  // Saves src as the session does, publishes it, and makes its manifest `age` seconds old in
  // the store's clock (the newest is the one of least age).
  std::pair<cas::SaveResult, store::Manifest> save(int age, std::vector<std::string>& passed) {
    std::vector<std::string> warnings;
    auto r = session::save_content_addressed(catalog, scope, items_of(src), 3, state, "deps", {},
                                             warnings, passed);
    store::Manifest m = catalog.publish_index(manifest_of(r, scope, "deps"));
    struct timespec t[2] = {{::time(nullptr) - age, 0}, {::time(nullptr) - age, 0}};
    REQUIRE(::utimensat(AT_FDCWD, (dir / m.object).c_str(), t, 0) == 0);
    return {r, m};
  }
  cas::Index load(const cas::SaveResult& r) {
    return cas::load_index(catalog.backend(), scope, r.index_key, r.index_sha256, r.index_bytes);
  }
  std::vector<std::string> packs_of(const cas::SaveResult& r) {
    std::vector<std::string> out;
    for (const auto& p : load(r).packs) {
      out.push_back(cas::hex(p.id));
    }
    return out;
  }
};

bool has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

} // namespace

TEST_CASE("a save builds on no save this job refused, nor on one using a pack it refused",
          "[session]") {
  Saves s;
  std::vector<std::string> passed;
  write(s.src / "a.bin", random_bytes(200 << 10, 1, 64));
  auto [r1, m1] = s.save(100, passed);
  REQUIRE_FALSE(r1.base_used);
  write(s.src / "b.bin", random_bytes(200 << 10, 2, 64));
  auto [r2, m2] = s.save(50, passed); // on r1: its pack and one of its own
  REQUIRE(r2.base_used);
  std::string shared = s.packs_of(r1).at(0);
  REQUIRE(has(s.packs_of(r2), shared));
  write(s.src / "c.bin", "c");
  passed.clear();

  SECTION("nothing refused: the newest save is the base") {
    auto [r3, m3] = s.save(0, passed);
    CHECK(r3.base_used);
    CHECK(passed.empty());
    CHECK(s.packs_of(r3) == std::vector<std::string>{s.packs_of(r2).at(0), s.packs_of(r2).at(1),
                                                     s.packs_of(r3).at(2)});
  }
  SECTION("the newest save refused: the next older is the base") {
    s.state.add_cas_refusal("deps", {s.scope.id(), m2.archive, "", "an entry is refused"});
    auto [r3, m3] = s.save(0, passed);
    CHECK(r3.base_used);
    REQUIRE(passed.size() == 1);
    CHECK_THAT(passed[0],
               Catch::Contains(m2.archive) &&
                   Catch::Contains("its restore was refused here (an entry is refused)"));
    CHECK(has(s.packs_of(r3), shared));
    CHECK(r3.new_bytes == (200 << 10) + 1); // b.bin again, and c
  }
  SECTION("a pack both use refused: a full save, under other pack names") {
    s.state.add_cas_refusal("deps", {s.scope.id(), "cas1/other/index/x.idx", shared, "SHA-256"});
    auto [r3, m3] = s.save(0, passed);
    CHECK_FALSE(r3.base_used);
    REQUIRE(passed.size() == 2);
    CHECK_THAT(passed[0], Catch::Contains(m2.archive) && Catch::Contains("it uses pack " + shared));
    CHECK_THAT(passed[1], Catch::Contains(m1.archive) && Catch::Contains("it uses pack " + shared));
    CHECK_FALSE(has(s.packs_of(r3), shared));
    CHECK(r3.new_bytes == (400 << 10) + 1);
  }
  SECTION("a refusal in another scope is not this one's") {
    s.state.add_cas_refusal("deps", {"acme/app/linux/deps/untrusted/x", m2.archive, shared, "x"});
    auto [r3, m3] = s.save(0, passed);
    CHECK(r3.base_used);
    CHECK(passed.empty());
  }
  CHECK(s.problems.empty());
}

TEST_CASE("the refusals a restore records are read back, a forged entry left out", "[session]") {
  util::TempDir tmp;
  std::vector<std::string> problems;
  session::StateDir state{tmp.path(), [&](const std::string& p) { problems.push_back(p); }};
  CHECK(state.cas_refusals("deps").empty());
  for (size_t i = 0; i < session::StateDir::k_max_cas_refusals + 2; ++i) {
    state.add_cas_refusal("deps", {"s", "k" + std::to_string(i), "p", "r"});
  }
  auto all = state.cas_refusals("deps");
  REQUIRE(all.size() == session::StateDir::k_max_cas_refusals);
  CHECK(all.back().key == "k" + std::to_string(session::StateDir::k_max_cas_refusals + 1));
  CHECK(state.cas_refusals("other").empty());
  CHECK(problems.empty());
  // The job can write its state dir: what is not ephemera's is left out, and said.
  auto file = tmp.path() / "cas" / "deps.json.refused";
  REQUIRE(fs::exists(file));
  write(file, R"([{"scope":"s","key":"k","pack":"p","reason":"r"},{"scope":1},"x"])");
  all = state.cas_refusals("deps");
  REQUIRE(all.size() == 1);
  CHECK(all[0].key == "k");
  CHECK(problems.size() == 1);
  std::string many = "[";
  for (size_t i = 0; i < 1000; ++i) {
    many += fmt::format(R"({}{{"scope":"s","key":"k{}","pack":"p","reason":"r"}})",
                        i == 0 ? "" : ",", i);
  }
  write(file, many + "]");
  all = state.cas_refusals("deps");
  REQUIRE(all.size() == session::StateDir::k_max_cas_refusals);
  CHECK(all.back().key == "k999");
  CHECK(problems.size() == 2);
  write(file, "not json");
  CHECK(state.cas_refusals("deps").empty());
}
