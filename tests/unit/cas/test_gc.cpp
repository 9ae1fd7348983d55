// gc of content-addressed saves as `ephemera gc` runs it (take_inventory, read_indexes,
// plan_gc, carry_out with the pack recheck) on a real local store: what goes, what a save in
// progress keeps, what hostile indexes cannot make it delete, and --max-bytes over shared
// packs.
#include "cas/cas.hpp"
#include "cas/gc.hpp"
#include "store/catalog.hpp"
#include "store/gc.hpp"
#include "store/keys.hpp"
#include "store/url.hpp"
#include "util/fs.hpp"
#include "util/sha256.hpp"

#include "helpers.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <csignal>
#include <fcntl.h>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>
#include <zstd.h>

using namespace ephemera;
using test::items_of;
using test::manifest_of;
using test::random_bytes;
using test::write;
namespace fs = std::filesystem;

namespace {

struct Store {
  util::TempDir tmp;
  fs::path dir = tmp.path() / "store";
  fs::path src = tmp.path() / "src";
  store::Catalog catalog{store::open_backend(dir.string()), std::nullopt};
  cas::Scope scope{"acme/app", "linux", "deps", true, ""};
  cas::SaveOptions options;

  Store() {
    fs::create_directories(src);
    options.pack.temp_dir = tmp.path();
    options.pack.pack_bytes = 1 << 20;
    options.pack.frame_bytes = 128 << 10;
  }

  store::Backend& backend() { return catalog.backend(); }

  cas::SaveResult save(const cas::Index* base, const cas::Scope* other = nullptr) {
    return cas::save(backend(), other ? *other : scope, items_of(src), base, options);
  }
  cas::Index load(const cas::SaveResult& r, const cas::Scope* other = nullptr) {
    return cas::load_index(backend(), other ? *other : scope, r.index_key, r.index_sha256,
                           r.index_bytes);
  }
  store::Manifest publish(const cas::SaveResult& r, const std::string& key,
                          const cas::Scope* other = nullptr) {
    return catalog.publish_index(manifest_of(r, other ? *other : scope, key));
  }
  bool exists(const std::string& key) { return fs::exists(dir / key); }
  std::vector<std::string> keys(const std::string& prefix) {
    std::vector<std::string> out;
    for (const auto& o : backend().list(prefix)) {
      out.push_back(o.key);
    }
    return out;
  }
  std::vector<std::string> packs_of(const cas::Index& i, const cas::Scope* other = nullptr) {
    return cas::pack_keys(other ? *other : scope, i);
  }
  // Every object now in the store dates from `seconds` ago (what time does to a store).
  void age(int64_t seconds) {
    auto t = static_cast<time_t>(::time(nullptr) - seconds);
    for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator();
         ++it) {
      struct timespec ts[2] = {{t, 0}, {t, 0}};
      ::utimensat(AT_FDCWD, it->path().c_str(), ts, AT_SYMLINK_NOFOLLOW);
    }
  }

  struct Run {
    store::GcPlan plan;
    std::set<std::string> deleted;
    bool kept(std::string_view text) const {
      return std::any_of(plan.kept.begin(), plan.kept.end(),
                         [&](const std::string& k) { return k.find(text) != std::string::npos; });
    }
  };
  // `ephemera gc --grace 1h` at the store's time now (plus `later` seconds).
  Run gc(store::GcOptions o = {}, double later = 0) {
    auto inventory = store::take_inventory(catalog);
    double now = catalog.store_now() + later;
    cas::read_indexes(backend(), inventory, now, o.grace);
    Run run{store::plan_gc(inventory, o, now), {}};
    cas::PackRecheck recheck(backend(), inventory);
    for (const auto& a : run.plan.actions) {
      if (store::carry_out(catalog, a, [&](const std::string& k) { return recheck(k); })) {
        run.deleted.insert(a.objects.begin(), a.objects.end());
      }
    }
    return run;
  }
};

} // namespace

TEST_CASE("gc frees a deleted save's index and the packs only it used, in the same run",
          "[cas][gc]") {
  Store s;
  write(s.src / "big.bin", random_bytes(3 << 20, 1));
  write(s.src / "kept.bin", random_bytes(1 << 20, 2));
  auto r1 = s.save(nullptr);
  auto i1 = s.load(r1);
  auto m1 = s.publish(r1, "k");
  write(s.src / "big.bin", random_bytes(3 << 20, 3));
  auto r2 = s.save(&i1);
  auto i2 = s.load(r2);
  auto m2 = s.publish(r2, "k");
  REQUIRE(r2.base_used);
  s.age(7200);

  auto run = s.gc();
  CHECK(run.deleted.count(m1.object) == 1);
  CHECK(run.deleted.count(r1.index_key) == 1);
  CHECK_FALSE(s.exists(r1.index_key));
  size_t dead = 0;
  for (const auto& p : s.packs_of(i1)) {
    auto live = s.packs_of(i2);
    bool shared = std::find(live.begin(), live.end(), p) != live.end();
    CHECK(s.exists(p) == shared);
    dead += shared ? 0 : 1;
  }
  CHECK(dead > 0);
  for (const auto& p : s.packs_of(i2)) {
    CHECK(s.exists(p));
  }
  CHECK(s.exists(m2.object));
  CHECK(s.exists(r2.index_key));
  size_t index_actions = 0, pack_actions = 0;
  for (const auto& a : run.plan.actions) {
    index_actions += a.kind == store::GcObject::index ? 1 : 0;
    pack_actions += a.kind == store::GcObject::pack ? 1 : 0;
    if (a.kind == store::GcObject::index) {
      CHECK_THAT(a.why, Catch::Contains("the index of a save deleted above"));
    }
  }
  CHECK(index_actions == 1);
  CHECK(pack_actions == dead);
  // Manifests first, then indexes, then packs: a crash between them leaves no save whose
  // index or pack is gone.
  std::vector<int> order;
  for (const auto& a : run.plan.actions) {
    order.push_back(static_cast<int>(a.kind));
  }
  CHECK(std::is_sorted(order.begin(), order.end()));
  // Nothing more goes in a second run; state 2 loads and names only present packs.
  CHECK(s.gc().deleted.empty());
  CHECK(s.load(r2).packs.size() == i2.packs.size());
}

TEST_CASE("a save in progress keeps its packs and the old packs it builds on", "[cas][gc]") {
  Store s;
  write(s.src / "a.bin", random_bytes(2 << 20, 4));
  auto r1 = s.save(nullptr);
  auto i1 = s.load(r1);
  auto m1 = s.publish(r1, "k");
  fs::rename(s.src / "a.bin", s.tmp.path() / "a.bin");
  write(s.src / "b.bin", random_bytes(1 << 20, 5));
  auto r1b = s.save(nullptr); // supersedes state 1, sharing no pack with it
  s.publish(r1b, "k");
  s.age(7200);
  // A save on state 1 that has written packs and its index, not yet its manifest.
  fs::rename(s.tmp.path() / "a.bin", s.src / "a.bin");
  write(s.src / "c.bin", random_bytes(1 << 20, 6));
  auto r2 = s.save(&i1);
  REQUIRE(r2.base_used);
  auto i2 = s.load(r2);

  auto run = s.gc();
  CHECK(run.deleted.count(m1.object) == 1);
  CHECK(run.deleted.count(r1.index_key) == 1);
  CHECK(s.exists(r2.index_key));
  for (const auto& p : s.packs_of(i2)) {
    CHECK(s.exists(p)); // state 1's packs too: the young index references them
  }
  CHECK(run.kept("younger than --grace 1h"));
  // The save completes; its state restores whole.
  s.publish(r2, "k");
  CHECK(s.load(r2).entries.size() == i2.entries.size());
}

TEST_CASE("a pack referenced by an index written while gc runs is not deleted", "[cas][gc]") {
  Store s;
  write(s.src / "a.bin", random_bytes(2 << 20, 7));
  auto r1 = s.save(nullptr);
  auto i1 = s.load(r1);
  s.age(7200); // an old state no manifest names: its index and packs are dead
  auto inventory = store::take_inventory(s.catalog);
  double now = s.catalog.store_now();
  cas::read_indexes(s.backend(), inventory, now, 3600);
  auto plan = store::plan_gc(inventory, store::GcOptions{}, now);
  // Meanwhile a save builds on state 1 and writes its index.
  write(s.src / "b", "b");
  auto r2 = s.save(&i1);
  REQUIRE(r2.base_used);
  cas::PackRecheck recheck(s.backend(), inventory);
  size_t packs = 0;
  for (const auto& a : plan.actions) {
    if (a.kind == store::GcObject::pack) {
      ++packs;
      CHECK_FALSE(store::carry_out(s.catalog, a, [&](const std::string& k) { return recheck(k); }));
    }
  }
  CHECK(packs == i1.packs.size());
  for (const auto& p : s.packs_of(s.load(r2))) {
    CHECK(s.exists(p));
  }
}

TEST_CASE("a pack uploaded again while gc runs is not deleted", "[cas][gc]") {
  Store s;
  write(s.src / "a.bin", random_bytes(1 << 20, 8));
  auto r1 = s.save(nullptr);
  auto i1 = s.load(r1);
  s.age(7200);
  auto inventory = store::take_inventory(s.catalog);
  double now = s.catalog.store_now();
  cas::read_indexes(s.backend(), inventory, now, 3600);
  auto plan = store::plan_gc(inventory, store::GcOptions{}, now);
  auto r2 = s.save(nullptr); // the same content, no base: the same pack, written again
  REQUIRE(s.packs_of(s.load(r2)) == s.packs_of(i1));
  for (const auto& a : plan.actions) {
    if (a.kind == store::GcObject::pack || a.kind == store::GcObject::index) {
      CHECK_FALSE(store::carry_out(s.catalog, a));
    }
  }
  CHECK(s.exists(s.packs_of(i1).front()));
  CHECK(s.exists(r2.index_key));
}

TEST_CASE("hostile indexes make gc keep their scope's packs, never delete another's", "[cas][gc]") {
  Store s;
  cas::Scope other{"acme/app", "linux", "deps", false, "fork/app"};
  // A dead pack in each scope.
  write(s.src / "a.bin", random_bytes(1 << 20, 9));
  auto dead_own = s.packs_of(s.load(s.save(nullptr)));
  write(s.src / "a.bin", random_bytes(1 << 20, 10));
  auto ro = s.save(nullptr, &other);
  auto dead_other = s.packs_of(s.load(ro, &other), &other);
  for (const auto& k : s.keys("cas1/")) {
    if (k.find("/index/") != std::string::npos) {
      fs::remove(s.dir / k);
    }
  }
  s.age(7200);
  // Young indexes below the trusted scope: one whose own scope field is the other scope's,
  // one past the size bound, one that is not an index, each named by its SHA-256.
  auto put_index = [&](const std::string& bytes) {
    auto key = store::cas_index_key(s.scope.id(), util::sha256_hex(bytes));
    write(s.dir / key, bytes);
    return key;
  };
  cas::Index forged;
  forged.scope = other.id();
  auto foreign = put_index(cas::encode(forged));
  auto huge = put_index(std::string(cas::k_max_index_object + 1, 'x'));
  auto junk = put_index("not an index");

  auto run = s.gc();
  for (const auto& key : {foreign, huge, junk}) {
    CHECK(s.exists(key));
  }
  for (const auto& p : dead_own) {
    CHECK(s.exists(p)); // not proven dead while those indexes stand
  }
  CHECK(run.kept("could not be read"));
  CHECK(run.kept(s.scope.prefix()));
  for (const auto& p : dead_other) {
    CHECK_FALSE(s.exists(p)); // another scope's dead packs go all the same
  }

  // Past the grace period, the hostile indexes are dead themselves and everything goes.
  auto later = s.gc(store::GcOptions{}, 7200);
  for (const auto& key : {foreign, huge, junk}) {
    CHECK(later.deleted.count(key) == 1);
  }
  for (const auto& p : dead_own) {
    CHECK_FALSE(s.exists(p));
  }
}

TEST_CASE("an index naming another scope's packs keeps none of them", "[cas][gc]") {
  Store s;
  cas::Scope other{"acme/app", "linux", "deps", false, "fork/app"};
  write(s.src / "a.bin", random_bytes(1 << 20, 11));
  auto r_other = s.save(nullptr, &other);
  auto i_other = s.load(r_other, &other);
  // A live manifest of the trusted scope whose index lists the other scope's packs by id.
  cas::Index forged;
  forged.scope = s.scope.id();
  forged.packs = i_other.packs;
  forged.entries = i_other.entries;
  std::string bytes = cas::encode(forged);
  cas::SaveResult r;
  r.index_sha256 = util::sha256_hex(bytes);
  r.index_key = store::cas_index_key(s.scope.id(), r.index_sha256);
  r.index_bytes = bytes.size();
  write(s.dir / r.index_key, bytes);
  s.publish(r, "k");
  for (const auto& k : s.keys(other.prefix() + "index/")) {
    fs::remove(s.dir / k);
  }
  s.age(7200);
  s.gc();
  for (const auto& p : s.packs_of(i_other, &other)) {
    CHECK_FALSE(s.exists(p));
  }
  CHECK(s.exists(r.index_key));
}

TEST_CASE("gc keeps objects below cas1/ that are not where a save puts them", "[cas][gc]") {
  Store s;
  std::string stray[] = {
      "cas1/acme~2Fapp/linux/deps/trusted/packs/x.pack",
      "cas1/acme~2Fapp/linux/deps/trusted/packs/" + std::string(64, 'A') + ".pack",
      "cas1/acme~2Fapp/linux/deps/trusted/other/" + std::string(64, 'a') + ".pack",
      "cas1/acme/app/linux/deps/trusted/index/" + std::string(64, 'a') + ".idx",
      "cas1/acme~2Fapp/linux/deps/trusted/packs/" + std::string(64, 'a') + ".tar.zst",
      "cas1/x.json",
  };
  for (const auto& k : stray) {
    write(s.dir / k, "x");
  }
  s.age(7200);
  auto run = s.gc();
  for (const auto& k : stray) {
    CHECK(s.exists(k));
  }
  CHECK(run.kept("6 objects below cas1/ that are not a pack or an index"));
}

TEST_CASE("a manifest gc cannot read keeps every index and pack of its stanza", "[cas][gc]") {
  Store s;
  write(s.src / "a.bin", random_bytes(1 << 20, 12));
  auto r1 = s.save(nullptr);
  auto m1 = s.publish(r1, "k");
  auto i1 = s.load(r1);
  // The save's manifest becomes unreadable (a newer format, say): its index may be named.
  write(s.dir / m1.object, "{\"format\": 99}");
  s.age(7200);
  auto run = s.gc();
  CHECK(s.exists(r1.index_key));
  for (const auto& p : s.packs_of(i1)) {
    CHECK(s.exists(p));
  }
  CHECK(run.kept("a manifest object of its stanza, " + m1.object + ", could not be read"));
}

TEST_CASE("--max-bytes counts shared packs once and evicting frees what no kept save uses",
          "[cas][gc]") {
  Store s;
  write(s.src / "shared.bin", random_bytes(2 << 20, 13));
  auto r1 = s.save(nullptr);
  auto i1 = s.load(r1);
  write(s.src / "mine.bin", random_bytes(1 << 20, 14));
  auto r2 = s.save(&i1);
  auto i2 = s.load(r2);
  REQUIRE(r2.base_used);
  auto m1 = s.publish(r1, "a"); // two keys: both restorable, state 1 the least recently used
  s.age(7200);
  auto m2 = s.publish(r2, "b");
  s.age(3700);
  uint64_t shared = 0, mine = 0;
  auto p1 = s.packs_of(i1);
  for (const auto& p : s.packs_of(i2)) {
    uint64_t size = fs::file_size(s.dir / p);
    (std::find(p1.begin(), p1.end(), p) != p1.end() ? shared : mine) += size;
  }
  REQUIRE(shared > (1 << 20));
  REQUIRE(mine > 0);
  uint64_t small = fs::file_size(s.dir / m1.object) + fs::file_size(s.dir / m2.object) +
                   r1.index_bytes + r2.index_bytes;
  store::GcOptions o;
  // The store holds the shared packs once: it fits exactly, and nothing goes.
  o.max_bytes = shared + mine + small;
  CHECK(s.gc(o).deleted.empty());
  // One byte less: state 1 (least recently used) goes, with its index, and no pack (state 2
  // uses all of them).
  o.max_bytes = shared + mine + small - 1;
  auto run = s.gc(o);
  CHECK(run.deleted.count(m1.object) == 1);
  CHECK(run.deleted.count(r1.index_key) == 1);
  for (const auto& p : s.packs_of(i2)) {
    CHECK(s.exists(p));
  }
  CHECK(s.exists(m2.object));
}

TEST_CASE("after saves killed at any moment, gc leaves exactly the live state", "[cas][gc]") {
  Store s;
  write(s.src / "big.bin", random_bytes(4 << 20, 15));
  auto r1 = s.save(nullptr);
  auto i1 = s.load(r1);
  s.publish(r1, "k");
  write(s.src / "big.bin", random_bytes(4 << 20, 16));
  auto items = items_of(s.src);
  for (int delay_us : {0, 1000, 5000, 20000, 60000}) {
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      try {
        cas::save(s.backend(), s.scope, items, &i1, s.options);
      } catch (...) {
      }
      ::_exit(0);
    }
    ::usleep(static_cast<useconds_t>(delay_us));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
  }
  s.gc(store::GcOptions{}, 7200);
  CHECK(s.keys(s.scope.prefix() + "index/") == std::vector<std::string>{r1.index_key});
  auto packs = s.keys(s.scope.prefix() + "packs/");
  auto want = s.packs_of(i1);
  std::sort(want.begin(), want.end());
  CHECK(packs == want);
  CHECK(s.backend().leftover_cleaner()->leftovers("cas1/").empty());
}

TEST_CASE("a chain of small changes keeps restore fan-out and store bytes bounded", "[cas][gc]") {
  // Each save changes two 256 KiB files of sixteen; packs hold 1 MiB. Without a new base the
  // newest state would reference ever more half-dead packs, and without gc the store would
  // hold every old version; with should_rebase and gc (keeping the newest save) both stay
  // bounded.
  Store s;
  constexpr size_t k_files = 16, k_size = 256 << 10;
  for (size_t f = 0; f < k_files; ++f) {
    write(s.src / ("f" + std::to_string(f)), random_bytes(k_size, 100 + f));
  }
  auto r = s.save(nullptr);
  s.publish(r, "k");
  uint64_t live = k_files * k_size;
  size_t max_packs = 0, rebases = 0;
  uint64_t max_stored = 0;
  for (int i = 0; i < 30; ++i) {
    auto base = s.load(r);
    // f0 every time, and one other: each new pack is half dead after the next save.
    write(s.src / "f0", random_bytes(k_size, 1000 + i));
    write(s.src / ("f" + std::to_string(1 + i % 15)), random_bytes(k_size, 2000 + i));
    r = s.save(&base);
    rebases += r.rebased ? 1 : 0;
    s.publish(r, "k");
    s.age(7200);
    s.gc();
    auto index = s.load(r);
    max_packs = std::max(max_packs, index.packs.size());
    uint64_t stored = 0;
    for (const auto& o : s.backend().list(s.scope.prefix() + "packs/")) {
      stored += o.size;
    }
    max_stored = std::max(max_stored, stored);
    CHECK(s.keys(s.scope.prefix() + "index/") == std::vector<std::string>{r.index_key});
  }
  WARN("30 saves of two changed files in 16: at most "
       << max_packs << " packs per restore, " << max_stored << " bytes of packs stored for " << live
       << " live, " << rebases << " new bases");
  CHECK(rebases > 0);
  CHECK(max_packs <= 4 + 8 + 1);             // a full save's packs, should_rebase's 8, the new one
  CHECK(max_stored <= 2 * live + (2 << 20)); // at most half dead, plus the packs in flight
}

TEST_CASE("gc reads a bounded number of young indexes no manifest names", "[cas][gc]") {
  Store s;
  write(s.src / "a.bin", random_bytes(1 << 20, 20));
  auto r = s.save(nullptr);
  auto dead = s.packs_of(s.load(r));
  fs::remove(s.dir / r.index_key);
  s.age(7200);
  for (int i = 0; i < 40; ++i) {
    cas::Index planted;
    planted.scope = s.scope.id();
    cas::Entry e;
    e.path = "work/d" + std::to_string(i);
    e.type = archive::EntryType::directory;
    e.mode = 0755;
    planted.entries.push_back(e);
    std::string bytes = cas::encode(planted);
    write(s.dir / store::cas_index_key(s.scope.id(), util::sha256_hex(bytes)), bytes);
  }
  auto run = s.gc();
  for (const auto& p : dead) {
    CHECK(s.exists(p));
  }
  CHECK(run.kept("not read: more than 32 indexes"));
}

TEST_CASE("what saves hold in the store counts a shared pack once, as ls and stats show it",
          "[cas][gc]") {
  Store s;
  write(s.src / "shared.bin", random_bytes(2 << 20, 21));
  auto r1 = s.save(nullptr);
  auto i1 = s.load(r1);
  write(s.src / "mine.bin", random_bytes(1 << 20, 22));
  auto r2 = s.save(&i1);
  REQUIRE(r2.base_used);
  auto m1 = s.publish(r1, "a");
  auto m2 = s.publish(r2, "b");
  // What the store holds: every index and pack below the scope, by the files' own sizes.
  uint64_t in_store = 0;
  for (const auto& key : s.keys(s.scope.prefix())) {
    in_store += fs::file_size(s.dir / key);
  }
  cas::HeldBytes both;
  both.add(cas::held_objects(s.backend(), m1));
  both.add(cas::held_objects(s.backend(), m2));
  CHECK(both.bytes() == in_store);
  cas::HeldBytes second;
  second.add(cas::held_objects(s.backend(), m2));
  // Not the first's index, but the first's pack as well as its own.
  CHECK(second.bytes() < in_store);
  CHECK(second.bytes() > r2.pack_bytes + r2.index_bytes);
  // A single archive holds its one object, at its manifest's size; a forged size saturates.
  store::Manifest archive = m1;
  archive.content = "";
  archive.archive = "v1/x.tar.zst";
  archive.compressed_size = UINT64_MAX - 1;
  auto objects = cas::held_objects(s.backend(), archive);
  REQUIRE(objects.size() == 1);
  CHECK(objects[0].first == "v1/x.tar.zst");
  both.add(objects);
  both.add(objects);
  CHECK(both.bytes() == UINT64_MAX);
}
