// The local backend stays inside its root: a store writer's symlinks, at any depth or as
// the object itself, never let a put, get, stat, list, remove or open reach another file.
#include "helpers.hpp"
#include "store/local.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <functional>
#include <map>

using namespace ephemera;
namespace fs = std::filesystem;

namespace {

// Every entry below dir with its type and bytes (a symlink: its target), to compare.
std::map<std::string, std::string> tree(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    std::string rel = fs::relative(e.path(), dir).string();
    if (e.is_symlink()) {
      out[rel] = "-> " + fs::read_symlink(e.path()).string();
    } else if (e.is_directory()) {
      out[rel] = "dir";
    } else {
      out[rel] = util::read_file(e.path());
    }
  }
  return out;
}

using test::file_with;
using test::refusal;

const std::vector<std::string> k_path = {"v1", "a", "b"}; // the directories of k_key
const std::string k_key = "v1/a/b/x.json";

} // namespace

TEST_CASE("the local store follows no symlinked directory out of its root, at any depth",
          "[store]") {
  for (size_t depth = 0; depth < k_path.size(); ++depth) {
    INFO("the symlink replaces " << k_path[depth]);
    util::TempDir dir;
    fs::path root = dir.path() / "store";
    fs::path outside = dir.path() / "outside";
    // Beyond the link, what the key would reach: the object, a temporary file gc would
    // take for a killed save's, and a deeper directory.
    fs::path beyond = outside;
    fs::path link = root;
    for (size_t i = 0; i < k_path.size(); ++i) {
      (i <= depth ? link : beyond) /= k_path[i];
      if (i > depth) {
        fs::create_directories(beyond);
      }
    }
    file_with(beyond / "x.json", "the victim's bytes");
    file_with(beyond / ".ephemera-0123456789abcdef-00000000", "a victim too");
    file_with(beyond / "deeper" / "y.json", "and another");
    fs::create_directories(link.parent_path());
    fs::create_symlink(outside, link);
    auto before = tree(outside);

    store::LocalBackend b(root);
    store::StringSource src("the writer's bytes");
    CHECK_THAT(refusal([&] { b.put(k_key, src); }), Catch::Contains("is a symlink"));
    CHECK_THAT(refusal([&] { b.put(k_key.substr(0, k_key.size() - 6) + "new/z.json", src); }),
               Catch::Contains("is a symlink"));
    CHECK_THAT(refusal([&] { b.remove(k_key); }), Catch::Contains(link.string()));
    std::string temp = k_key.substr(0, k_key.rfind('/') + 1) + ".ephemera-0123456789abcdef-00000000";
    CHECK_THAT(refusal([&] { b.remove(temp); }), Catch::Contains("is a symlink"));
    CHECK_THAT(refusal([&] { b.stat(k_key); }), Catch::Contains("is a symlink"));
    store::StringSink sink;
    CHECK_THAT(refusal([&] { b.get(k_key, sink); }), Catch::Contains("is a symlink"));
    store::SizedSink sized(sink, 18);
    CHECK_THAT(refusal([&] { b.get(k_key, sized); }), Catch::Contains("is a symlink"));
    CHECK_THAT(refusal([&] { b.get_range(k_key, 0, 4, sink); }), Catch::Contains("is a symlink"));
    CHECK_THAT(refusal([&] { b.open_local(k_key); }), Catch::Contains("is a symlink"));
    CHECK(sink.data().empty());
    for (std::string prefix : {"", "v1/", "v1/a/", "v1/a/b/", "v1/a/b/x", "v1/a/b/deeper/"}) {
      INFO("prefix " << prefix);
      CHECK(b.list(prefix).empty());
      CHECK(b.leftovers(prefix).empty());
    }
    CHECK(tree(outside) == before);
    CHECK(fs::is_symlink(link));
  }
}

TEST_CASE("a symlink planted as an object is never read; put and remove replace the link only",
          "[store]") {
  util::TempDir dir;
  fs::path root = dir.path() / "store";
  fs::path victim = dir.path() / "victim";
  file_with(victim, "the victim's bytes");
  file_with(root / "v1" / "a" / "real.json", "real");
  fs::create_symlink(victim, root / "v1" / "a" / "x.json");
  // And a symlinked directory as an object.
  fs::create_symlink(dir.path(), root / "v1" / "a" / "d.json");
  store::LocalBackend b(root);

  for (std::string key : {"v1/a/x.json", "v1/a/d.json"}) {
    INFO(key);
    store::StringSink sink;
    CHECK_THAT(refusal([&] { b.get(key, sink); }), Catch::Contains("symlink"));
    CHECK_THAT(refusal([&] { b.get_range(key, 0, 1, sink); }), Catch::Contains("symlink"));
    CHECK_THAT(refusal([&] { b.open_local(key); }), Catch::Contains("symlink"));
    CHECK_THAT(refusal([&] { b.stat(key); }), Catch::Contains("symlink"));
    CHECK(sink.data().empty());
  }
  auto listed = b.list("v1/");
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].key == "v1/a/real.json");

  store::StringSource src("new bytes");
  b.put("v1/a/x.json", src);
  CHECK_FALSE(fs::is_symlink(root / "v1" / "a" / "x.json"));
  CHECK(util::read_file(root / "v1" / "a" / "x.json") == "new bytes");
  CHECK(util::read_file(victim) == "the victim's bytes");

  fs::remove(root / "v1" / "a" / "x.json");
  fs::create_symlink(victim, root / "v1" / "a" / "x.json");
  b.remove("v1/a/x.json");
  b.remove("v1/a/d.json");
  CHECK_FALSE(fs::exists(fs::symlink_status(root / "v1" / "a" / "x.json")));
  CHECK_FALSE(fs::exists(fs::symlink_status(root / "v1" / "a" / "d.json")));
  CHECK(util::read_file(victim) == "the victim's bytes");
  CHECK(fs::exists(dir.path() / "victim"));
}

TEST_CASE("a local store whose root is a symlink the operator made works through it", "[store]") {
  util::TempDir dir;
  fs::create_directories(dir.path() / "real");
  fs::create_symlink(dir.path() / "real", dir.path() / "store");
  store::LocalBackend b(dir.path() / "store");
  store::StringSource src("bytes");
  b.put("v1/a/x.json", src);
  CHECK(util::read_file(dir.path() / "real" / "v1" / "a" / "x.json") == "bytes");
  REQUIRE(b.list("v1/").size() == 1);
  store::StringSink sink;
  b.get("v1/a/x.json", sink);
  CHECK(sink.data() == "bytes");
  REQUIRE(b.stat("v1/a/x.json"));
  CHECK(b.stat("v1/a/x.json")->size == 5);
  b.remove("v1/a/x.json");
  CHECK(fs::is_symlink(dir.path() / "store"));
  CHECK(fs::is_empty(dir.path() / "real")); // the empty directories went, the root stayed
}

TEST_CASE("a local store not made yet lists nothing and is made by the first put", "[store]") {
  util::TempDir dir;
  store::LocalBackend b(dir.path() / "not" / "yet");
  CHECK(b.list("").empty());
  CHECK_FALSE(b.stat("v1/x"));
  store::StringSink sink;
  CHECK_THROWS_AS(b.get("v1/x", sink), util::StoreError);
  CHECK_NOTHROW(b.remove("v1/x"));
  store::StringSource src("bytes");
  b.put("v1/x", src);
  CHECK(b.list("").size() == 1);
  CHECK(b.stat("v1/x")->size == 5);
}

TEST_CASE("a failed local put leaves no temporary file behind", "[store]") {
  struct Failing : store::Source {
    uint64_t size() const override { return 10; }
    size_t read(char* buf, size_t max) override {
      if (m_done) {
        throw util::Error("the source broke");
      }
      m_done = true;
      std::fill_n(buf, std::min<size_t>(max, 5), 'x');
      return std::min<size_t>(max, 5);
    }
    void rewind() override { m_done = false; }
    bool m_done = false;
  } failing;
  util::TempDir dir;
  store::LocalBackend b(dir.path());
  CHECK_THROWS_WITH(b.put("v1/a/x", failing), Catch::Contains("the source broke"));
  CHECK(tree(dir.path()) == std::map<std::string, std::string>{{"v1", "dir"}, {"v1/a", "dir"}});
}

TEST_CASE("only the tool's temporary names are leftovers: an object named like one is listed",
          "[store]") {
  util::TempDir dir;
  store::LocalBackend b(dir.path());
  store::StringSource src("bytes");
  // Names a key may take (a cache key is [A-Za-z0-9._-]) that the store once took for a
  // killed write's, hiding the object from every lookup and handing it to gc.
  for (std::string key : {"v1/a/x.tmp.y.json", "v1/a/z.json.tmp.1.0123456789abcdef"}) {
    b.put(key, src);
  }
  // What a killed put leaves: the tool's own temporary shape.
  file_with(dir.path() / "v1/a/.ephemera-0123456789abcdef-00000000", "half");
  std::vector<std::string> listed;
  for (const auto& o : b.list("v1/")) {
    listed.push_back(o.key);
  }
  CHECK(listed ==
        std::vector<std::string>{"v1/a/x.tmp.y.json", "v1/a/z.json.tmp.1.0123456789abcdef"});
  auto left = b.leftovers("v1/");
  REQUIRE(left.size() == 1);
  CHECK(left[0].key == "v1/a/.ephemera-0123456789abcdef-00000000");
  // Removed as a leftover it is gone; an object is never removed as one, whatever its name.
  REQUIRE(b.leftover_cleaner() == &b);
  b.remove_leftover(left[0]);
  CHECK(b.leftovers("v1/").empty());
  for (const auto& o : b.list("v1/")) {
    CHECK_THAT(refusal([&] { b.remove_leftover({o.key, "", 0, 0}); }),
               Catch::Contains("not a temporary file's name"));
  }
  CHECK(b.list("v1/").size() == 2);
}
