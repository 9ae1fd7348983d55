// Short ids of saves: unique per manifest object, prefixes accepted, an ambiguous one an
// error that lists every save it names.
#include "store/short_id.hpp"
#include "util/error.hpp"

#include <catch2/catch.hpp>

#include <map>

using namespace ephemera;

namespace {

store::Manifest at(const std::string& object) {
  store::Manifest m;
  m.repository = "acme/widget";
  m.name = "deps";
  m.key = "k";
  m.object = object;
  m.archive = object.substr(0, object.size() - 5) + ".tar.zst";
  m.sha256 = std::string(64, 'a');
  m.created = "2026-12-01T00:00:00.000000Z";
  return m;
}

} // namespace

TEST_CASE("short ids name one save, by a prefix of 4 hex or more", "[store]") {
  std::vector<store::Manifest> all{at("v1/a/~/deps/e1/k/1.json"), at("v1/a/~/deps/e1/k/2.json")};
  auto id = store::short_id(all[1]);
  CHECK(id.size() == store::k_short_id_length);
  CHECK(id != store::short_id(all[0]));
  CHECK(&store::one_save(all, id, "the store") == &all[1]);
  CHECK(&store::one_save(all, store::long_id(all[1]).substr(0, 20), "the store") == &all[1]);
  CHECK(store::find_saves(all, id.substr(0, 3)).empty()); // too short to mean an id
  CHECK(&store::one_save(all, all[0].object, "the store") == &all[0]);
  CHECK_THROWS_WITH(store::one_save(all, "0123456789", "the store"),
                    Catch::Contains("no save '0123456789' in the store"));
  // The archive's digest is the same for both (the same bytes saved twice): ambiguous.
  CHECK_THROWS_WITH(store::one_save(all, "aaaaaaaa", "the store"),
                    Catch::Contains("names 2 saves"));
}

TEST_CASE("an id prefix that two saves share is an error listing both", "[store]") {
  // Find two object keys whose ids share their first 4 hex (a few hundred tries suffice).
  std::map<std::string, std::string> seen;
  std::vector<store::Manifest> all;
  for (int i = 0; all.empty(); ++i) {
    auto m = at("v1/a/~/deps/e1/k/" + std::to_string(i) + ".json");
    auto prefix = store::short_id(m).substr(0, 4);
    if (auto it = seen.find(prefix); it != seen.end()) {
      all = {at(it->second), m};
    }
    seen[prefix] = m.object;
  }
  auto prefix = store::short_id(all[0]).substr(0, 4);
  try {
    store::one_save(all, prefix, "the store");
    FAIL("an ambiguous prefix was taken");
  } catch (const util::InputError& e) {
    std::string what = e.what();
    CHECK(what.find("names 2 saves") != std::string::npos);
    CHECK(what.find(store::short_id(all[0])) != std::string::npos);
    CHECK(what.find(store::short_id(all[1])) != std::string::npos);
  }
  CHECK(&store::one_save(all, store::short_id(all[1]), "the store") == &all[1]);
}
