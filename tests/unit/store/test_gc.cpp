// The selection rules (selection.hpp) and the gc plans built on them: forged manifests,
// signatures, markers, supersession, epochs, budgets and the grace period.
#include "store/catalog.hpp"
#include "store/gc.hpp"
#include "store/selection.hpp"
#include "store/url.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/sha256.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <fstream>
#include <set>

using namespace ephemera;
namespace fs = std::filesystem;

namespace {

constexpr int64_t k_now = 1795000000; // the store's clock in these tables
constexpr int64_t k_hour = 3600;

std::string rfc3339(int64_t t) {
  struct tm tm {};
  time_t tt = t;
  ::gmtime_r(&tt, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000000Z", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

// A save as publish writes it: in its own folder, naming its own archive.
store::Manifest save(const std::string& repository, int64_t epoch, const std::string& key,
                     const std::string& branch, int64_t stored, bool trusted = true) {
  static int serial = 0;
  store::Manifest m;
  m.repository = repository;
  m.name = "deps";
  m.epoch = epoch;
  m.key = key;
  m.branch = branch;
  m.trusted = trusted;
  m.created = rfc3339(stored);
  m.stored = stored;
  m.sha256 = std::string(64, 'a');
  m.compressed_size = 100;
  m.job_id = fmt::format("job-{}", ++serial);
  m.object = fmt::format("v1/{}/~/deps/e{}/{}/{}-{:08x}.json", store::sanitise(repository), epoch,
                         store::sanitise(key), m.created, serial);
  m.archive = store::own_archive(m.object);
  return m;
}

// What take_inventory would find: each manifest and its archive listed (archives of 100
// bytes whatever a manifest claims), the manifests themselves split as the catalog splits them.
struct Store {
  store::GcInventory inv;

  void add(const store::Manifest& m) {
    inv.saves.push_back(m);
    list(m);
  }
  void add_refused(const store::Manifest& m, const std::string& why, bool with_archive = true) {
    inv.refused.push_back({m, why});
    inv.listing.push_back({m.object, 1, m.stored});
    if (with_archive) {
      inv.listing.push_back({store::own_archive(m.object), 100, m.stored});
    }
  }
  void list(const store::Manifest& m) {
    inv.listing.push_back({m.object, 1, m.stored});
    inv.listing.push_back({m.archive, 100, m.stored});
  }
  std::set<std::string> deleted(const store::GcOptions& o) const {
    std::set<std::string> out;
    for (const auto& a : store::plan_gc(inv, o, k_now).actions) {
      out.insert(a.objects.begin(), a.objects.end());
    }
    return out;
  }
};

store::GcOptions grace(double seconds) {
  store::GcOptions o;
  o.grace = seconds;
  return o;
}

bool untouched(const std::set<std::string>& deleted, const store::Manifest& m) {
  return deleted.count(m.object) == 0 && deleted.count(m.archive) == 0;
}

} // namespace

TEST_CASE("markers count only below their own repository's folder", "[store][gc]") {
  store::Invalidation inv{"acme/widget", "", "", "", rfc3339(k_now), "", k_now};
  struct Case {
    std::string object;
    bool counts;
  };
  const Case cases[] = {
      {"v1/_invalidations/acme~2Fwidget/20261124T000000.000000Z-0a1b2c3d.json", true},
      {"v1/_invalidations/other~2Frepo/20261124T000000.000000Z-0a1b2c3d.json", false},
      {"v1/_invalidations/acme~2Fwidget/deeper/x.json", false},
      {"v1/_invalidations/acme~2Fwidget/x.txt", false},
      {"v1/_invalidations/acme/widget/x.json", false},
      {"v1/acme~2Fwidget/x.json", false},
  };
  for (const auto& c : cases) {
    INFO(c.object);
    inv.object = c.object;
    CHECK(store::marker_in_place(inv) == c.counts);
  }
  inv.object = cases[0].object;
  inv.created = "yesterday";
  CHECK_FALSE(store::marker_in_place(inv));
  inv.created = rfc3339(k_now);
  inv.repository.clear();
  CHECK_FALSE(store::marker_in_place(inv));
}

TEST_CASE("selection: invalidated, old epoch, superseded per key, branch and trust",
          "[store][gc]") {
  auto old_epoch = save("r/a", 1, "k", "main", k_now - 9 * k_hour);
  auto older = save("r/a", 2, "k", "main", k_now - 8 * k_hour);
  auto newest = save("r/a", 2, "k", "main", k_now - 7 * k_hour);
  auto other_branch = save("r/a", 2, "k", "pr", k_now - 9 * k_hour);
  auto other_key = save("r/a", 2, "j", "main", k_now - 9 * k_hour);
  auto fork_old = save("r/a", 2, "k", "fork", k_now - 9 * k_hour, false);
  auto fork_99 = save("r/a", 99, "k", "fork", k_now - 8 * k_hour, false); // a fork's own epoch
  auto other_repo = save("r/b", 1, "k", "main", k_now - 9 * k_hour);
  std::vector<store::Manifest> all = {old_epoch, older,    newest,  other_branch,
                                      other_key, fork_old, fork_99, other_repo};
  store::Invalidation marker{"r/b",
                             "",
                             "",
                             "poisoned",
                             rfc3339(k_now - 8 * k_hour),
                             "v1/_invalidations/r~2Fb/x.json",
                             k_now - 8 * k_hour};
  std::vector<store::Invalidation> markers = {marker};
  store::Selection sel(all, markers);
  struct Case {
    const store::Manifest* m;
    store::Standing standing;
    const char* why;
  };
  const Case cases[] = {
      {&old_epoch, store::Standing::old_epoch, "e2 is current"},
      {&older, store::Standing::superseded, "superseded by the save of"},
      {&newest, store::Standing::live, ""},
      {&other_branch, store::Standing::live, ""},
      {&other_key, store::Standing::live, ""},
      {&fork_old, store::Standing::old_epoch, "e99 is current"}, // its own branch moved on
      {&fork_99, store::Standing::live, ""},
      {&other_repo, store::Standing::invalidated, "poisoned"},
  };
  for (const auto& c : cases) {
    INFO(c.m->job_id);
    auto v = sel.judge(*c.m);
    CHECK(v.standing == c.standing);
    CHECK_THAT(v.why, Catch::Contains(c.why));
  }
  CHECK(sel.judge(older).by->object == newest.object);
}

TEST_CASE("gc: forgeries never decide and never take another save with them", "[store][gc]") {
  auto victim = save("acme/widget", 1, "k", "main", k_now - 48 * k_hour);
  auto victim2 = save("acme/widget", 1, "j", "main", k_now - 47 * k_hour);
  auto bystander = save("other/repo", 1, "k", "main", k_now - 46 * k_hour);
  Store s;
  s.add(victim);
  s.add(victim2);
  s.add(bystander);

  struct Case {
    const char* what;
    store::Manifest forged;
    std::string why;
  };
  auto claims_archive = save("evil/repo", 1, "k", "main", k_now - 30 * k_hour);
  claims_archive.archive = victim.archive;
  auto epoch_99 = save("evil/repo", 1, "k", "main", k_now - 30 * k_hour);
  epoch_99.repository = "acme/widget";
  epoch_99.epoch = 99;
  auto huge = save("acme/widget", 1, "k", "main", k_now - 2 * k_hour);
  huge.compressed_size = uint64_t{1} << 62;
  auto bad_signature = save("acme/widget", 1, "k", "main", k_now - 2 * k_hour);
  bad_signature.signature = std::string(64, 'f');
  const Case cases[] = {
      {"names another save's archive", claims_archive, "unsigned, and signing is on"},
      {"claims another repository at epoch 99", epoch_99, "unsigned, and signing is on"},
      {"claims a huge size, unsigned", huge, "unsigned, and signing is on"},
      {"newer, with a bad signature", bad_signature, "bad signature"},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    REQUIRE_FALSE(c.why.empty());
    Store t = s;
    t.inv.signing = true;
    t.add_refused(c.forged, c.why);
    auto o = grace(0);
    o.max_bytes = 303; // the three real saves fit, whatever a forgery claims
    auto deleted = t.deleted(o);
    CHECK(untouched(deleted, victim));
    CHECK(untouched(deleted, victim2));
    CHECK(untouched(deleted, bystander));
    // The forgery itself goes, past the grace period, with nothing but its own archive.
    CHECK(deleted.count(c.forged.object) == 1);
    CHECK(deleted.size() == (c.forged.archive == store::own_archive(c.forged.object) ? 2 : 1));
    // Within the grace period it stays, and gc says so.
    auto plan = store::plan_gc(t.inv, grace(100 * k_hour), k_now);
    CHECK(plan.actions.empty());
    CHECK_THAT(plan.kept.back(), Catch::Contains("take no part"));
  }
}

TEST_CASE("gc: with no manifest verifying, the key is suspect and refused ones stay",
          "[store][gc]") {
  Store s;
  s.inv.signing = true;
  auto unsigned_save = save("acme/widget", 1, "k", "main", k_now - 48 * k_hour);
  s.add_refused(unsigned_save, "unsigned, and signing is on");
  auto plan = store::plan_gc(s.inv, grace(0), k_now);
  CHECK(plan.actions.empty());
  REQUIRE(plan.kept.size() == 1);
  CHECK_THAT(plan.kept[0], Catch::Contains("not one manifest verifies"));
}

TEST_CASE("gc: an archive whose manifest object exists is never an orphan", "[store][gc]") {
  auto unreadable = save("acme/widget", 1, "k", "main", k_now - 48 * k_hour);
  Store s;
  s.list(unreadable); // listed, but it could not be read: a newer format, a wrong type
  store::ObjectInfo orphan{"v1/acme~2Fwidget/~/deps/e1/k/crashed.tar.zst", 100,
                           k_now - 48 * k_hour};
  store::ObjectInfo young{"v1/acme~2Fwidget/~/deps/e1/k/writing.tar.zst", 100, k_now - 60};
  s.inv.listing.push_back(orphan);
  s.inv.listing.push_back(young);
  auto plan = store::plan_gc(s.inv, grace(k_hour), k_now);
  REQUIRE(plan.actions.size() == 1);
  CHECK(plan.actions[0].objects == std::vector<std::string>{orphan.key});
  CHECK(plan.actions[0].orphan);
  std::string kept = fmt::format("{}", fmt::join(plan.kept, "; "));
  CHECK_THAT(kept, Catch::Contains("1 object with no manifest, younger than --grace 1h"));
  CHECK_THAT(kept, Catch::Contains("1 manifest object that could not be read"));
}

TEST_CASE("gc: superseded saves go past the grace period, and gc says what it kept",
          "[store][gc]") {
  Store s;
  auto first = save("acme/widget", 1, "k", "main", k_now - 30 * k_hour);
  auto second = save("acme/widget", 1, "k", "main", k_now - 20 * k_hour);
  auto third = save("acme/widget", 1, "k", "main", k_now - 10 * k_hour);
  auto fourth = save("acme/widget", 1, "k", "main", k_now - 60);
  for (const auto& m : {first, second, third, fourth}) {
    s.add(m);
  }
  // A save goes once it has been superseded (beyond the newest `keep`) for the grace period.
  const std::string reading = " ago (a restore may be reading it)";
  struct Case {
    double grace;
    int keep;
    std::set<const store::Manifest*> gone;
    std::vector<std::string> kept;
  };
  const Case cases[] = {
      {0, 1, {&first, &second, &third}, {"1 restorable save"}},
      {k_hour,
       1,
       {&first, &second},
       {"1 restorable save", "1 save superseded less than --grace 1h" + reading}},
      {k_hour,
       2,
       {&first},
       {"1 restorable save", "1 superseded save within --keep 2",
        "1 save superseded less than --grace 1h" + reading}},
      {15 * k_hour,
       1,
       {&first},
       {"1 restorable save", "2 saves superseded less than --grace 15h" + reading}},
      {48 * k_hour,
       1,
       {},
       {"1 restorable save", "3 saves superseded less than --grace 2d" + reading}},
  };
  for (const auto& c : cases) {
    INFO("grace " << c.grace << " keep " << c.keep);
    auto o = grace(c.grace);
    o.keep = c.keep;
    auto plan = store::plan_gc(s.inv, o, k_now);
    std::set<std::string> expected;
    for (const auto* m : c.gone) {
      expected.insert(m->object);
      expected.insert(m->archive);
    }
    std::set<std::string> got;
    for (const auto& a : plan.actions) {
      got.insert(a.objects.begin(), a.objects.end());
      CHECK_THAT(a.why, Catch::Contains("superseded by the save of"));
      CHECK(a.bytes == 101);
    }
    CHECK(got == expected);
    CHECK(plan.kept == c.kept);
  }
}

TEST_CASE("gc: epochs, markers, age and budget decide only among valid saves", "[store][gc]") {
  Store s;
  auto e1 = save("acme/widget", 1, "k", "main", k_now - 30 * k_hour);
  auto e2 = save("acme/widget", 2, "k", "main", k_now - 29 * k_hour);
  auto fork = save("acme/widget", 7, "k", "fork", k_now - 28 * k_hour, false);
  auto old = save("other/repo", 1, "k", "main", k_now - 20 * 24 * k_hour);
  auto hidden = save("third/repo", 1, "k", "main", k_now - 20 * k_hour);
  auto young = save("fourth/repo", 1, "k", "main", k_now - 60);
  for (const auto& m : {e1, e2, fork, old, hidden, young}) {
    s.add(m);
  }
  store::Invalidation marker{"third/repo",
                             "",
                             "",
                             "",
                             rfc3339(k_now - 10 * k_hour),
                             "v1/_invalidations/third~2Frepo/x.json",
                             k_now - 10 * k_hour};
  s.inv.markers.push_back(marker);
  auto o = grace(k_hour);
  auto deleted = s.deleted(o);
  // An untrusted fork at epoch 7 retires nothing of the trusted saves.
  CHECK(deleted == std::set<std::string>{e1.object, e1.archive, hidden.object, hidden.archive});

  o.max_age = 7 * 24 * k_hour;
  deleted = s.deleted(o);
  CHECK(deleted.count(old.object) == 1);
  CHECK(untouched(deleted, e2));

  // The budget counts what the listing holds (101 bytes a save), the oldest going first,
  // never one in its grace period.
  o.max_age.reset();
  o.max_bytes = 202;
  deleted = s.deleted(o);
  CHECK(untouched(deleted, young));
  CHECK(untouched(deleted, fork));
  CHECK(deleted.count(old.object) == 1);
  CHECK(deleted.count(e2.object) == 1);
}

TEST_CASE("gc: clock probes and leftovers of interrupted writes go after the grace period",
          "[store][gc]") {
  Store s;
  s.inv.listing.push_back({"v1/_clock/0123456789abcdef", 18, k_now - 2 * k_hour});
  s.inv.listing.push_back({"v1/_clock/fedcba9876543210", 18, k_now - 10});
  s.inv.listing.push_back({"v1/_clock/passwd", 18, k_now - 2 * k_hour}); // not a probe
  s.inv.leftovers.push_back({"v1/a/.x.tar.zst.tmp.1", "", 5, k_now - 2 * k_hour});
  s.inv.leftovers.push_back({"v1/a/b.tar.zst", "up-1", 0, k_now - 10}); // young: kept
  auto deleted = s.deleted(grace(k_hour));
  CHECK(deleted == std::set<std::string>{"v1/_clock/0123456789abcdef", "v1/a/.x.tar.zst.tmp.1"});
}

TEST_CASE("gc against a store: forged markers and manifests with signing on", "[store][gc]") {
  util::TempDir dir;
  auto url = (dir.path() / "store").string();
  auto archive = dir.path() / "a";
  std::ofstream(archive) << "archive bytes";
  auto partial = [&](const std::string& repository) {
    store::Manifest m;
    m.repository = repository;
    m.name = "deps";
    m.epoch = 1;
    m.key = "k";
    m.branch = "main";
    m.compressed_size = fs::file_size(archive);
    m.sha256 = util::sha256_file_hex(archive);
    return m;
  };
  store::Catalog signer(store::open_backend(url), std::string("s3cret"));
  auto live = signer.publish(partial("acme/widget"), archive);

  // A store writer without the key: a marker in its own folder naming acme/widget, an
  // unsigned marker in acme/widget's folder, and an unsigned manifest naming acme's archive.
  store::Catalog forger(store::open_backend(url), std::nullopt);
  auto theirs = forger.invalidate("evil/repo", "", "", "");
  auto from = fs::path(url) / theirs.object;
  auto text = util::read_file(from);
  text.replace(text.find("evil/repo"), 9, "acme/widget");
  std::ofstream(from) << text;
  forger.invalidate("acme/widget", "", "", "unsigned");
  auto unsigned_save = forger.publish(partial("evil/repo"), archive);
  auto forged = forger.publish(partial("evil/repo"), archive);
  auto j = forged.to_json();
  j["archive"] = live.archive;
  std::ofstream(fs::path(url) / forged.object) << j.dump();

  // Without signing, only the marker in its own repository's folder counts; with signing,
  // neither (both unsigned).
  auto unsigned_markers = forger.invalidations();
  REQUIRE(unsigned_markers.size() == 1);
  CHECK(unsigned_markers[0].reason == "unsigned");
  CHECK(signer.invalidations().empty());

  // The unsigned save is refused and removed; the one naming another's archive cannot be
  // read (it does not lie where it says), so it stays, and so does its own archive.
  auto inventory = store::take_inventory(signer);
  REQUIRE(inventory.saves.size() == 1);
  REQUIRE(inventory.refused.size() == 1);
  CHECK(inventory.refused[0].why == "unsigned, and signing is on");
  store::GcOptions o;
  o.grace = 0;
  auto plan = store::plan_gc(inventory, o, signer.store_now());
  for (const auto& a : plan.actions) {
    store::carry_out(signer, a);
  }
  auto exists = [&](const std::string& key) { return fs::exists(fs::path(url) / key); };
  CHECK(exists(live.object));
  CHECK(exists(live.archive));
  CHECK_FALSE(exists(unsigned_save.object));
  CHECK_FALSE(exists(unsigned_save.archive));
  CHECK(exists(forged.object));
  CHECK(exists(forged.archive));
  CHECK_THAT(plan.kept.back(), Catch::Contains("1 manifest object that could not be read"));

  // A signed marker counts.
  signer.invalidate("acme/widget", "", "", "signed");
  auto markers = signer.invalidations("acme/widget");
  REQUIRE(markers.size() == 1);
  CHECK(markers[0].reason == "signed");
  CHECK_THROWS_AS(signer.invalidate("", "", "", ""), util::Error);
}

TEST_CASE("removing an object never follows a folder swapped for a symlink", "[store][gc]") {
  util::TempDir dir;
  auto root = dir.path() / "store";
  auto backend = store::open_backend(root.string());
  store::StringSource bytes("x");
  backend->put("v1/_clock/0123456789abcdef", bytes);
  backend->put("v1/a/b/one.json", bytes);
  backend->put("v1/a/b/two.json", bytes);
  // After the listing, a store writer swaps v1/_clock for a link to a folder outside.
  fs::create_directories(dir.path() / "outside");
  std::ofstream(dir.path() / "outside" / "0123456789abcdef") << "precious";
  fs::remove_all(root / "v1" / "_clock");
  fs::create_directory_symlink(dir.path() / "outside", root / "v1" / "_clock");
  CHECK_THROWS_AS(backend->remove("v1/_clock/0123456789abcdef"), util::StoreError);
  CHECK(fs::exists(dir.path() / "outside" / "0123456789abcdef"));
  // Without a symlink, folders left empty go, up to the root.
  backend->remove("v1/a/b/one.json");
  CHECK(fs::exists(root / "v1" / "a" / "b" / "two.json"));
  backend->remove("v1/a/b/two.json");
  CHECK_FALSE(fs::exists(root / "v1" / "a"));
  backend->remove("v1/a/b/two.json"); // a missing object is not an error
}
