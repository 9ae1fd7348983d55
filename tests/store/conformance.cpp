// The store conformance suite: the same cases against every backend. STORE_KIND=local
// runs them on a scratch directory, STORE_KIND=s3 against the S3 server tests/run.sh
// started (EPHEMERA_TEST_S3_ENDPOINT, EPHEMERA_TEST_S3_BUCKET, AWS_* credentials).
#include "store/backend.hpp"
#include "store/catalog.hpp"
#include "store/selection.hpp"
#include "store/url.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/sha256.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <random>
#include <thread>
#include <unistd.h>

using namespace ephemera;
namespace fs = std::filesystem;

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

std::string kind() { return env("STORE_KIND").empty() ? "local" : env("STORE_KIND"); }

std::string unique_prefix() {
  std::random_device rd;
  return "conf-" + std::to_string(rd()) + "-" +
         std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
}

// A store URL of the kind under test, fresh for each case.
struct Store {
  util::TempDir dir;
  std::string url;
  Store() {
    if (kind() == "s3") {
      std::string endpoint = env("EPHEMERA_TEST_S3_ENDPOINT"), bucket = env("EPHEMERA_TEST_S3_BUCKET");
      REQUIRE_FALSE(endpoint.empty()); // the S3 server of tests/run.sh must be running
      url = "s3://" + bucket + "/" + unique_prefix() + "?endpoint=" + endpoint;
    } else {
      url = (dir.path() / "store").string();
    }
  }
  std::unique_ptr<store::Backend> open() const { return store::open_backend(url); }
};

std::string get(store::Backend& b, const std::string& key) {
  store::StringSink sink;
  b.get(key, sink);
  return sink.data();
}

void put(store::Backend& b, const std::string& key, std::string data) {
  store::StringSource src(std::move(data));
  b.put(key, src);
}

std::string pattern(size_t size, unsigned seed) {
  std::string s(size, '\0');
  std::mt19937 rng(seed);
  for (auto& c : s) {
    c = static_cast<char>(rng());
  }
  return s;
}

} // namespace

TEST_CASE("put, get, stat, list, remove", "[conformance]") {
  Store s;
  auto b = s.open();
  put(*b, "v1/a/x.json", "{}");
  put(*b, "v1/a/y.tar.zst", "archive");
  put(*b, "v1/b/z.json", "zz");
  put(*b, "v1/empty", "");
  CHECK(get(*b, "v1/a/x.json") == "{}");
  CHECK(get(*b, "v1/empty").empty());
  // A directory here can be read where it lies; a store elsewhere cannot (the caller
  // downloads instead).
  int fd = b->open_local("v1/a/x.json");
  if (kind() == "s3") {
    CHECK(fd == -1);
  } else {
    CHECK(fd >= 0);
    ::close(fd);
  }
  auto st = b->stat("v1/a/y.tar.zst");
  REQUIRE(st);
  CHECK(st->size == 7);
  CHECK(st->mtime > 1700000000);

  auto listed = b->list("v1/a/");
  REQUIRE(listed.size() == 2);
  CHECK(listed[0].key == "v1/a/x.json");
  CHECK(listed[1].key == "v1/a/y.tar.zst");
  CHECK(listed[1].size == 7);
  CHECK(b->list("v1/").size() == 4);
  CHECK(b->list("v1/c").empty());

  b->remove("v1/a/x.json");
  CHECK_FALSE(b->stat("v1/a/x.json"));
  CHECK(b->list("v1/a/").size() == 1);
}

TEST_CASE("missing objects: not found, and removing one is no error", "[conformance]") {
  Store s;
  auto b = s.open();
  CHECK_FALSE(b->stat("v1/nothing"));
  try {
    get(*b, "v1/nothing");
    FAIL("get of a missing object succeeded");
  } catch (const util::StoreError& e) {
    CHECK(e.kind() == util::StoreErrorKind::not_found);
  }
  CHECK_NOTHROW(b->remove("v1/nothing"));
}

TEST_CASE("remove takes exactly the key it is given, whatever the key looks like",
          "[conformance]") {
  Store s;
  auto b = s.open();
  // A cache key may hold '#' and '=': once an S3 remove of such a key aborted an upload of
  // another key instead, and left the object in place.
  for (std::string key : {"v1/a/k#upload=x", "v1/a/k#upload=", "v1/a/k#upload=x#upload=y"}) {
    INFO(key);
    put(*b, "v1/a/k", "kept");
    put(*b, key, "gone");
    b->remove(key);
    CHECK_FALSE(b->stat(key));
    CHECK(get(*b, "v1/a/k") == "kept");
  }
}

TEST_CASE("leftovers: a capability; what it lists it removes, and nothing else", "[conformance]") {
  Store s;
  auto b = s.open();
  auto* cleaner = b->leftover_cleaner();
  REQUIRE(cleaner != nullptr); // both backends have leftovers to clean
  CHECK((b->presigner() != nullptr) == (kind() == "s3"));
  put(*b, "v1/a/obj", "an object, not a leftover");
  CHECK(cleaner->leftovers("v1/").empty());
  // What a backend never lists as a leftover it refuses to remove as one: never an object.
  store::Leftover forged{"v1/a/obj", "", 0, 0};
  CHECK_THROWS_AS(cleaner->remove_leftover(forged), util::StoreError);
  CHECK(get(*b, "v1/a/obj") == "an object, not a leftover");
}

TEST_CASE("overwrite: the new object whole", "[conformance]") {
  Store s;
  auto b = s.open();
  put(*b, "v1/k", "first version, longer");
  put(*b, "v1/k", "second");
  CHECK(get(*b, "v1/k") == "second");
  CHECK(b->stat("v1/k")->size == 6);
}

TEST_CASE("keys with spaces, tildes, plus signs and UTF-8", "[conformance]") {
  Store s;
  auto b = s.open();
  const std::vector<std::string> keys = {"v1/a b/c", "v1/acme~2Fwidget/k", "v1/x+y=z", "v1/données/été",
                                         "v1/semi;colon,comma"};
  for (const auto& k : keys) {
    put(*b, k, k);
  }
  for (const auto& k : keys) {
    INFO(k);
    CHECK(get(*b, k) == k);
  }
  auto listed = b->list("v1/");
  std::vector<std::string> names;
  for (const auto& o : listed) {
    names.push_back(o.key);
  }
  auto sorted = keys;
  std::sort(sorted.begin(), sorted.end());
  CHECK(names == sorted);
}

TEST_CASE("a 40 MiB object round trips (multipart on S3)", "[conformance]") {
  Store s;
  auto b = s.open();
  auto data = pattern(40u << 20, 7);
  util::TempDir dir;
  auto file = dir.path() / "big";
  std::ofstream(file, std::ios::binary) << data;
  store::FileSource src(file);
  b->put("v1/big.tar.zst", src);
  CHECK(b->stat("v1/big.tar.zst")->size == data.size());
  auto back = get(*b, "v1/big.tar.zst");
  CHECK(back.size() == data.size());
  CHECK(util::sha256_hex(back) == util::sha256_hex(data));
}

std::string get_range(store::Backend& b, const std::string& key, uint64_t offset, uint64_t length) {
  store::StringSink sink;
  b.get_range(key, offset, length, sink);
  return sink.data();
}

util::StoreErrorKind error_kind(const std::function<void()>& f) {
  try {
    f();
  } catch (const util::StoreError& e) {
    return e.kind();
  }
  FAIL("no StoreError");
  return util::StoreErrorKind::transient;
}

TEST_CASE("ranges: any span of an object, an error past its end", "[conformance]") {
  Store s;
  auto b = s.open();
  const auto data = pattern((1u << 20) + 17, 3);
  const uint64_t n = data.size();
  put(*b, "v1/r", data);
  CHECK(get_range(*b, "v1/r", 0, 1) == data.substr(0, 1));
  CHECK(get_range(*b, "v1/r", 0, n) == data);
  CHECK(get_range(*b, "v1/r", n - 1, 1) == data.substr(n - 1));
  CHECK(get_range(*b, "v1/r", 12345, 100000) == data.substr(12345, 100000));
  CHECK(get_range(*b, "v1/r", 7, 0).empty());
  CHECK(get_range(*b, "v1/r", n, 0).empty());
  CHECK(error_kind([&] { get_range(*b, "v1/r", n - 5, 10); }) == util::StoreErrorKind::permanent);
  CHECK(error_kind([&] { get_range(*b, "v1/r", n, 1); }) == util::StoreErrorKind::permanent);
  CHECK(error_kind([&] { get_range(*b, "v1/r", n + 1, 0); }) == util::StoreErrorKind::permanent);
  CHECK(error_kind([&] { get_range(*b, "v1/missing", 0, 1); }) == util::StoreErrorKind::not_found);
  CHECK(error_kind([&] { get_range(*b, "v1/missing", 0, 0); }) == util::StoreErrorKind::not_found);
}

TEST_CASE("a 40 MiB object by size: in parallel ranges on S3, in order, whole", "[conformance]") {
  Store s;
  auto b = s.open();
  const auto data = pattern((40u << 20) + 4097, 11);
  util::TempDir dir;
  auto file = dir.path() / "big";
  std::ofstream(file, std::ios::binary) << data;
  store::FileSource src(file);
  b->put("v1/big", src);
  store::StringSink sink;
  store::SizedSink sized(sink, data.size());
  b->get("v1/big", sized);
  CHECK(sink.data().size() == data.size());
  CHECK(util::sha256_hex(sink.data()) == util::sha256_hex(data));
  // Across the boundary of two 8 MiB download parts.
  CHECK(get_range(*b, "v1/big", (8u << 20) - 3, 10) == data.substr((8u << 20) - 3, 10));
  // A size other than the object's is an error, never a silently short or long read.
  CHECK(error_kind([&] {
          store::StringSink wrong;
          store::SizedSink sized(wrong, data.size() - 1);
          b->get("v1/big", sized);
        }) == util::StoreErrorKind::permanent);
  CHECK(error_kind([&] {
          store::StringSink wrong;
          store::SizedSink sized(wrong, data.size() + (9u << 20));
          b->get("v1/big", sized);
        }) == util::StoreErrorKind::permanent);
  CHECK(error_kind([&] {
          store::StringSink none;
          store::SizedSink sized(none, data.size());
          b->get("v1/none", sized);
        }) == util::StoreErrorKind::not_found);
}

TEST_CASE("concurrent puts of one key: one whole object wins", "[conformance]") {
  Store s;
  std::vector<std::thread> threads;
  std::vector<std::string> versions;
  for (unsigned i = 0; i < 6; ++i) {
    versions.push_back(pattern(200000 + i * 1000, i));
  }
  for (unsigned i = 0; i < versions.size(); ++i) {
    threads.emplace_back([&s, &versions, i] {
      auto b = s.open();
      put(*b, "v1/contended", versions[i]);
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  auto b = s.open();
  auto got = get(*b, "v1/contended");
  CHECK(std::find(versions.begin(), versions.end(), got) != versions.end());
  CHECK(b->list("v1/").size() == 1); // no temporary or partial object left visible
}

TEST_CASE("concurrent saves of one key through the catalog: every manifest valid, newest wins",
          "[conformance]") {
  Store s;
  util::TempDir dir;
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&s, &dir, i] {
      auto file = dir.path() / ("a" + std::to_string(i));
      std::ofstream(file, std::ios::binary) << pattern(50000, static_cast<unsigned>(i));
      store::Catalog cat(s.open(), std::nullopt);
      store::Manifest m;
      m.repository = "acme/widget";
      m.target = "t";
      m.name = "n";
      m.epoch = 1;
      m.key = "k";
      m.branch = "b";
      m.job_id = "job-" + std::to_string(i);
      m.compressed_size = fs::file_size(file);
      m.sha256 = util::sha256_file_hex(file);
      cat.publish(m, file);
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  store::Catalog cat(s.open(), std::nullopt);
  auto all = cat.list();
  REQUIRE(all.size() == 6);
  // Newest by the store's own time first (a writer's clock may be wrong), then by creation:
  // six saves can straddle a second of the store's clock in another order than they began.
  const store::Manifest* newest = nullptr;
  for (const auto& m : all) {
    if (newest == nullptr || m.later_than(*newest)) {
      newest = &m;
    }
    cat.download(m, dir.path() / "check"); // digest and size verified
  }
  store::LookupRequest r;
  r.repository = "acme/widget";
  r.target = "t";
  r.name = "n";
  r.epoch = 1;
  r.steps = {{"k", false}};
  r.branch = "other";
  auto found = cat.lookup(r).candidates;
  REQUIRE(!found.empty());
  CHECK(found.front().manifest.created == newest->created);
  CHECK(found.front().manifest.object == newest->object);
  CHECK(store::orphan_archives(cat.backend().list(store::layout_root()), all).empty());
}

TEST_CASE("wrong credentials and a missing bucket are clear, unretried errors", "[conformance]") {
  if (kind() != "s3") {
    SUCCEED("only S3 has credentials and buckets");
    return;
  }
  std::string endpoint = env("EPHEMERA_TEST_S3_ENDPOINT");
  std::string secret = env("AWS_SECRET_ACCESS_KEY");
  {
    ::setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-wrong-secret", 1);
    auto b = store::open_backend("s3://" + env("EPHEMERA_TEST_S3_BUCKET") + "/x?endpoint=" + endpoint);
    ::setenv("AWS_SECRET_ACCESS_KEY", secret.c_str(), 1);
    try {
      put(*b, "v1/k", "x");
      FAIL("a put with a wrong secret succeeded");
    } catch (const util::StoreError& e) {
      CHECK(e.kind() == util::StoreErrorKind::unauthorized);
      CHECK_THAT(e.what(), Catch::Contains("403") || Catch::Contains("SignatureDoesNotMatch"));
      CHECK_THAT(e.what(), !Catch::Contains("wrong-secret"));
      CHECK_THAT(e.what(), !Catch::Contains("tries")); // answered once, never retried
    }
  }
  {
    auto b = store::open_backend("s3://no-such-bucket-ephemera/x?endpoint=" + endpoint);
    try {
      put(*b, "v1/k", "x");
      FAIL("a put into a missing bucket succeeded");
    } catch (const util::StoreError& e) {
      CHECK_FALSE(e.retryable());
      CHECK_THAT(e.what(), Catch::Contains("NoSuchBucket"));
      CHECK_THAT(e.what(), !Catch::Contains("tries"));
    }
  }
}
