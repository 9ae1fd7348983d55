// The S3 backend's guards, which no honest server exercises: keys checked where they enter
// a backend (local and S3), listings bounded and their keys checked, transfers timed by size.
#include "helpers.hpp"
#include "store/local.hpp"
#include "store/s3.hpp"
#include "store/url.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>

using namespace ephemera;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

using test::EnvVar;
using test::refusal;

const std::vector<std::string> k_escaping = {
    "../x", "v1/../../other/x.tar.zst", "v1/./x", "v1//x", "/v1/x", "v1/x\n", ""};

} // namespace

TEST_CASE("the S3 backend refuses keys that are not keys before any request, presigned links too",
          "[store]") {
  EnvVar ak("AWS_ACCESS_KEY_ID", "AK"), sk("AWS_SECRET_ACCESS_KEY", "SK");
  EnvVar connect("EPHEMERA_S3_CONNECT_SECONDS", "1");
  auto b = store::open_backend("s3://bucket/cache?endpoint=http://127.0.0.1:1");
  for (const auto& key : k_escaping) {
    INFO(key);
    store::StringSink sink;
    store::StringSource source("x");
    CHECK(refusal([&] { b->get(key, sink); }).find("refusing") != std::string::npos);
    CHECK(refusal([&] { b->get_range(key, 0, 1, sink); }).find("refusing") != std::string::npos);
    store::SizedSink sized(sink, 1);
    CHECK(refusal([&] { b->get(key, sized); }).find("refusing") != std::string::npos);
    CHECK(refusal([&] { b->stat(key); }).find("refusing") != std::string::npos);
    CHECK(refusal([&] { b->put(key, source); }).find("refusing") != std::string::npos);
    CHECK(refusal([&] { b->remove(key); }).find("refusing") != std::string::npos);
    CHECK(refusal([&] { b->leftover_cleaner()->remove_leftover({key, "abc", 0, 0}); })
              .find("refusing") != std::string::npos);
    CHECK(refusal([&] { b->presigner()->presign(key, 60s); }).find("refusing") !=
          std::string::npos);
    CHECK(b->url(key).find('\n') == std::string::npos); // named in messages, escaped
  }
  for (std::string prefix : {"v1//", "../", "v1/../", "/v1/"}) {
    INFO(prefix);
    CHECK(refusal([&] { b->list(prefix); }).find("refusing listing prefix") != std::string::npos);
    CHECK(refusal([&] { b->leftover_cleaner()->leftovers(prefix); })
              .find("refusing listing prefix") != std::string::npos);
  }
  // An upload with no id is no leftover S3 makes: refused before any request.
  CHECK(refusal([&] { b->leftover_cleaner()->remove_leftover({"v1/a/b.tar.zst", "", 0, 0}); })
            .find("no upload id") != std::string::npos);
  auto link = b->presigner()->presign("v1/a b/c.tar.zst", 60s);
  CHECK(link.rfind("http://127.0.0.1:1/bucket/cache/v1/a%20b/c.tar.zst?", 0) == 0);
}

TEST_CASE("S3 store URLs: a bucket or prefix S3 would not keep as written, or credentials in the "
          "endpoint, are refused",
          "[store]") {
  for (std::string url :
       {"../x", "..", "b%2Fc/x", "b c/x", "bucket/a/../b", "bucket/a//b", "bucket/./a"}) {
    INFO(url);
    CHECK_THROWS_AS(store::parse_s3_url(url), util::InputError);
  }
  CHECK_THROWS_AS(store::parse_s3_url("bucket/p?endpoint=http://AK:SK@rgw.lan:7480"),
                  util::InputError);
  CHECK(store::parse_s3_url("bucket/a/b").prefix == "a/b/");
  CHECK(store::parse_s3_url("my.bucket_1").prefix.empty());
}

TEST_CASE("the local backend checks every key before joining it to its root", "[store]") {
  util::TempDir dir;
  std::ofstream(dir.path() / "secret") << "not the store's";
  fs::create_directories(dir.path() / "store" / "v1");
  store::LocalBackend b(dir.path() / "store");
  for (const auto& key :
       {std::string("../secret"), std::string("v1/../../secret"), std::string("../evil")}) {
    INFO(key);
    store::StringSink sink;
    store::StringSource source("overwritten");
    CHECK(refusal([&] { b.get(key, sink); }).find("refusing") != std::string::npos);
    CHECK(refusal([&] { b.put(key, source); }).find("refusing") != std::string::npos);
    CHECK(refusal([&] { b.remove(key); }).find("refusing") != std::string::npos);
    CHECK(refusal([&] { b.stat(key); }).find("refusing") != std::string::npos);
    CHECK(refusal([&] { b.open_local(key); }).find("refusing") != std::string::npos);
    CHECK(refusal([&] { b.get_range(key, 0, 1, sink); }).find("refusing") != std::string::npos);
    CHECK(sink.data().empty());
  }
  CHECK(util::read_file(dir.path() / "secret") == "not the store's");
  CHECK_FALSE(fs::exists(dir.path() / "evil"));
  CHECK(refusal([&] { b.list("../"); }).find("refusing listing prefix") != std::string::npos);
  // A file whose name no key can have is not listed (gc would hand it back to remove()).
  std::ofstream(dir.path() / "store" / "v1" / "a\nb.json") << "{}";
  std::ofstream(dir.path() / "store" / "v1" / "ok.json") << "{}";
  auto listed = b.list("v1/");
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].key == "v1/ok.json");
}

TEST_CASE("a bounded sink takes at most its bound, on either backend", "[store]") {
  util::TempDir dir;
  store::LocalBackend b(dir.path());
  store::StringSource big(std::string(store::k_max_small_object + 1, 'x'));
  b.put("v1/big.json", big);
  store::StringSink sink(store::k_max_small_object);
  CHECK(refusal([&] { b.get("v1/big.json", sink); }).find("1048576") != std::string::npos);
  CHECK(sink.data().empty());
  store::StringSink small(4);
  small.write("abcd", 4);
  CHECK_THROWS_AS(small.write("e", 1), util::StoreError);
  CHECK(small.data() == "abcd");
}

TEST_CASE("listed keys are handed on only inside the prefix asked for, and only when valid",
          "[store]") {
  CHECK(store::listed_key("cache/v1/a/x.json", "cache/", "cache/v1/") == "v1/a/x.json");
  CHECK(store::listed_key("v1/x", "", "v1/") == "v1/x");
  for (std::string listed :
       {"cache/v1/../../../other/x.tar.zst", "cache/v1/./x", "cache/v1//x", "cache/v1/a\nb",
        "other/x.tar.zst", "cache/v1x/y", "cache/v2/x", "cache/v1/"}) {
    INFO(listed);
    CHECK_FALSE(store::listed_key(listed, "cache/", "cache/v1/"));
  }
}

TEST_CASE(
    "a listing that never ends is refused: repeated tokens, too many pages or keys, its deadline",
    "[store]") {
  auto later = std::chrono::steady_clock::now() + 1h;
  store::ListingLimits repeated("s3://b/p/", later);
  repeated.next("t1");
  repeated.next("t2");
  CHECK(refusal([&] { repeated.next("t1"); }).find("'t1' a second time") != std::string::npos);

  store::ListingLimits pages("s3://b/p/", later, {3, 100, 1000});
  for (int i = 0; i < 3; ++i) {
    pages.page(1);
  }
  CHECK(refusal([&] { pages.page(0); }).find("at most 3 pages") != std::string::npos);

  store::ListingLimits keys("s3://b/p/", later, {100, 10, 1000});
  keys.page(6);
  CHECK(refusal([&] { keys.page(6); }).find("12 keys") != std::string::npos);

  store::ListingLimits bytes("s3://b/p/", later, {100, 10, 1000}); // long keys: memory, not count
  bytes.page(2, 900);
  CHECK(refusal([&] { bytes.page(1, 101); }).find("1000 bytes of keys") != std::string::npos);

  store::ListingLimits late("s3://b/p/", std::chrono::steady_clock::now() - 1s);
  try {
    late.page(0);
    FAIL("no timeout");
  } catch (const util::StoreError& e) {
    CHECK(e.kind() == util::StoreErrorKind::timeout);
    CHECK_THAT(e.what(), Catch::Contains("EPHEMERA_S3_DEADLINE"));
  }
}

TEST_CASE("every transfer may take its floor plus its size at the slowest worthwhile rate",
          "[store]") {
  CHECK(store::transfer_timeout(0, 60s) == 60s);
  CHECK(store::transfer_timeout(16 << 20, 60s) == 124s); // a 16 MiB part at 256 KiB/s
  CHECK(store::transfer_timeout(1 << 20, 3s) == 7s);
  EnvVar deadline("EPHEMERA_S3_DEADLINE", "90"), timeout("EPHEMERA_S3_TIMEOUT_SECONDS", "5");
  auto c = store::parse_s3_url("b/p");
  CHECK(c.deadline == 90);
  CHECK(c.request_timeout == 5);
}
