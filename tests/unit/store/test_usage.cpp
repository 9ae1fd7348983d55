// Retention by use (usage.hpp): use markers, and gc's --max-age and --max-bytes by last use.
#include "store/catalog.hpp"
#include "store/gc.hpp"
#include "store/usage.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <ctime>
#include <set>

using namespace ephemera;

namespace {

constexpr int64_t k_now = 1795000000; // the store's clock in these tables
constexpr int64_t k_day = 86400;

store::Manifest save(const std::string& key, int64_t stored, bool trusted = true) {
  static int serial = 0;
  store::Manifest m;
  m.repository = "acme/widget";
  m.name = "deps";
  m.epoch = 1;
  m.key = key;
  m.branch = "feature";
  m.trusted = trusted;
  m.origin = trusted ? "" : "fork/widget";
  m.created = fmt::format("2026-01-01T00:00:00.{:06}Z", ++serial);
  m.stored = stored;
  m.sha256 = std::string(64, 'a');
  m.compressed_size = 100;
  m.object = fmt::format("v1/acme~2Fwidget/~/deps/e1/{}/2026010{}T000000.000000Z-{:08x}.json", key,
                         serial % 10, serial);
  m.archive = m.object.substr(0, m.object.size() - 5) + ".tar.zst";
  return m;
}

struct Store {
  store::GcInventory inv;
  void add(const store::Manifest& m) {
    inv.saves.push_back(m);
    inv.listing.push_back({m.object, 1, m.stored});
    inv.listing.push_back({m.archive, 100, m.stored});
  }
  // A restore of m at `when` by a job of this trust, as Catalog::mark_used writes it.
  std::string use(const store::Manifest& m, int64_t when, bool trusted = true, uint64_t size = 0) {
    auto key = store::use_marker_key(m.object, store::utc_day(static_cast<double>(when)), trusted);
    inv.listing.push_back({key, size, when});
    return key;
  }
  std::set<std::string> deleted(const store::GcOptions& o) const {
    std::set<std::string> out;
    for (const auto& a : store::plan_gc(inv, o, k_now).actions) {
      out.insert(a.objects.begin(), a.objects.end());
    }
    return out;
  }
};

} // namespace

TEST_CASE("use marker keys lie beside their manifest and parse back", "[usage]") {
  auto key = store::use_marker_key("v1/r/~/deps/e1/k/20260101T000000.000000Z-0000abcd.json",
                                   "20261201", true);
  CHECK(key == "v1/r/~/deps/e1/k/20260101T000000.000000Z-0000abcd.used/20261201");
  auto m = store::parse_use_marker(key);
  REQUIRE(m);
  CHECK(m->manifest == "v1/r/~/deps/e1/k/20260101T000000.000000Z-0000abcd.json");
  CHECK(m->day == "20261201");
  CHECK(m->trusted);
  auto u = store::parse_use_marker(store::use_marker_key(
      "v1/r/~/deps/e1/k/20260101T000000.000000Z-0000abcd.json", "20261201", false));
  REQUIRE(u);
  CHECK_FALSE(u->trusted);
  const std::string folder = "v1/r/~/deps/e1/k/";
  for (const std::string& bad :
       {folder + "s.used/2026120", folder + "s.used/20261301", folder + "s.used/x20261201",
        folder + ".used/20261201", folder + "s.used/20261201-v", folder + "s.json",
        folder + "s.used/20261201/x", std::string("20261201"), std::string("v1/a/b.used/20261201"),
        std::string("v1/r/~/deps/e01/k/s.used/20261201"),
        std::string("v1/r/~7e/deps/e1/k/s.used/20261201")}) {
    CHECK_FALSE(store::parse_use_marker(bad));
  }
  // Only a manifest's key, where publish puts one, has a marker.
  CHECK(store::use_marker_key("v1/a/b.json", "20261201", true).empty());
  CHECK(store::use_marker_key(folder + "s.tar.zst", "20261201", true).empty());
  CHECK(store::utc_day(1795000000) == "20261118");
}

TEST_CASE("gc --max-age keeps a hot save restored today however old; a cold one goes",
          "[usage][gc]") {
  Store s;
  auto hot = save("hot", k_now - 40 * k_day);
  auto cold = save("cold", k_now - 40 * k_day);
  s.add(hot);
  s.add(cold);
  auto marker = s.use(hot, k_now - 3600);
  s.use(cold, k_now - 35 * k_day); // restored, but long ago
  store::GcOptions o;
  o.max_age = 30 * k_day;
  auto gone = s.deleted(o);
  CHECK(gone.count(hot.object) == 0);
  CHECK(gone.count(marker) == 0);
  CHECK(gone.count(cold.object) == 1);
  CHECK(gone.count(cold.archive) == 1);
  // Its markers go with it.
  CHECK(gone.count(store::use_marker_key(cold.object, store::utc_day(k_now - 35 * k_day), true)));
  auto plan = store::plan_gc(s.inv, o, k_now);
  REQUIRE(plan.actions.size() == 1);
  CHECK(plan.actions[0].why == "last restored 35.0 days ago, over --max-age");
}

TEST_CASE("a never restored save goes by its creation time", "[usage][gc]") {
  Store s;
  auto fresh = save("fresh", k_now - 2 * k_day);
  auto old = save("old", k_now - 31 * k_day);
  s.add(fresh);
  s.add(old);
  store::GcOptions o;
  o.max_age = 30 * k_day;
  auto plan = store::plan_gc(s.inv, o, k_now);
  REQUIRE(plan.actions.size() == 1);
  CHECK(plan.actions[0].subject == old.object);
  CHECK(plan.actions[0].why == "31.0 days old and never restored, over --max-age");
}

TEST_CASE("gc --max-bytes evicts the least recently used first", "[usage][gc]") {
  Store s;
  auto a = save("a", k_now - 10 * k_day); // the oldest save, restored an hour ago
  auto b = save("b", k_now - 5 * k_day);  // restored four days ago
  auto c = save("c", k_now - 3 * k_day);  // never restored
  for (const auto* m : {&a, &b, &c}) {
    s.add(*m);
  }
  s.use(a, k_now - 3600);
  s.use(b, k_now - 4 * k_day);
  store::GcOptions o;
  o.max_bytes = 101; // room for one save
  auto gone = s.deleted(o);
  CHECK(gone.count(b.object) == 1);
  CHECK(gone.count(c.object) == 1);
  CHECK(gone.count(a.object) == 0);
  o.max_bytes = 2 * 101 + 1; // room for two: b (used 4 days ago) is the least recently used
  gone = s.deleted(o);
  CHECK(gone.count(b.object) == 1);
  CHECK(gone.count(a.object) == 0);
  CHECK(gone.count(c.object) == 0);
}

TEST_CASE("the newest save of a key outlives a superseded one, however used", "[usage][gc]") {
  Store s;
  auto older = save("k", k_now - 10 * k_day);
  auto newer = save("k", k_now - 5 * k_day);
  s.add(older);
  s.add(newer);
  s.use(older, k_now - 3600); // restored by prefix an hour ago, say
  store::GcOptions o;
  o.keep = 2;
  o.max_bytes = 150;
  auto gone = s.deleted(o);
  CHECK(gone.count(older.object) == 1);
  CHECK(gone.count(newer.object) == 0);
}

TEST_CASE("markers cannot keep what they must not", "[usage][gc]") {
  store::GcOptions o;
  o.max_age = 30 * k_day;
  SECTION("an untrusted job's use does not keep a trusted save alive") {
    Store s;
    auto trusted = save("t", k_now - 40 * k_day);
    s.add(trusted);
    s.use(trusted, k_now - 3600, false);
    CHECK(s.deleted(o).count(trusted.object) == 1);
  }
  SECTION("but keeps an untrusted save its own kind restores") {
    Store s;
    auto untrusted = save("u", k_now - 40 * k_day, false);
    s.add(untrusted);
    s.use(untrusted, k_now - 3600, false);
    CHECK(s.deleted(o).count(untrusted.object) == 0);
  }
  SECTION("a marker named for a later day than the store wrote it, or too large, counts not") {
    Store s;
    auto m = save("f", k_now - 40 * k_day);
    s.add(m);
    auto future = store::use_marker_key(m.object, store::utc_day(k_now + 10 * k_day), true);
    s.inv.listing.push_back({future, 0, k_now - 3600});
    s.use(m, k_now - 7200, true, 4096);
    auto gone = s.deleted(o);
    CHECK(gone.count(m.object) == 1);
    CHECK(gone.count(future) == 1); // deleted with its save
  }
  SECTION("no use brings back an invalidated save") {
    Store s;
    auto m = save("i", k_now - 40 * k_day);
    s.add(m);
    s.use(m, k_now - 3600);
    store::Invalidation inv;
    inv.repository = "acme/widget";
    inv.created = "2026-11-18T00:00:00.000000Z";
    inv.stored = k_now - 2 * k_day;
    inv.object = "v1/_invalidations/acme~2Fwidget/20261118T000000.000000Z-00000001.json";
    s.inv.markers.push_back(inv);
    CHECK(s.deleted(store::GcOptions{}).count(m.object) == 1);
  }
  SECTION("a marker of no save goes once past the grace period") {
    Store s;
    auto m = save("gone", k_now - 40 * k_day);
    auto old = store::use_marker_key(m.object, store::utc_day(k_now - 2 * k_day), true);
    auto young = store::use_marker_key(m.object, store::utc_day(k_now - 60), true);
    s.inv.listing.push_back({old, 0, k_now - 2 * k_day});
    s.inv.listing.push_back({young, 0, k_now - 60});
    auto gone = s.deleted(store::GcOptions{});
    CHECK(gone.count(old) == 1);
    CHECK(gone.count(young) == 0);
  }
}
