#include "cas/cas.hpp"
#include "cas/gc.hpp"
#include "helpers.hpp"
#include "store/local.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/sha256.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <ctime>
#include <fcntl.h>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace ephemera;
using test::items_of;
using test::random_bytes;
using test::write;
namespace fs = std::filesystem;

namespace {

void set_mtime(const fs::path& p, int64_t sec) {
  struct timespec t[2] = {{sec, 123}, {sec, 123}};
  REQUIRE(::utimensat(AT_FDCWD, p.c_str(), t, AT_SYMLINK_NOFOLLOW) == 0);
}

// What a user sees of a tree: per path its type, mode, mtime (files, symlinks) and content.
std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator();
       ++it) {
    struct stat st {};
    REQUIRE(::lstat(it->path().c_str(), &st) == 0);
    std::string rel = it->path().lexically_relative(dir).string();
    std::string v;
    if (S_ISDIR(st.st_mode)) {
      v = "dir " + std::to_string(st.st_mode & 07777);
    } else if (S_ISLNK(st.st_mode)) {
      v = "link " + fs::read_symlink(it->path()).string();
    } else {
      v = "file " + std::to_string(st.st_mode & 07777) + " " + std::to_string(st.st_mtim.tv_sec) +
          "." + std::to_string(st.st_mtim.tv_nsec) + " " + util::read_file(it->path());
    }
    out[rel] = v;
  }
  return out;
}

struct Fixture {
  util::TempDir tmp;
  fs::path store_dir = tmp.path() / "store";
  fs::path src = tmp.path() / "src";
  store::LocalBackend backend{store_dir};
  cas::Scope scope{"acme/app", "linux", "deps", true, ""};
  cas::SaveOptions options;
  int restores = 0;

  Fixture() {
    fs::create_directories(src);
    options.pack.temp_dir = tmp.path();
    // Small packs and frames, so that a few MiB exercise several of each.
    options.pack.pack_bytes = 1 << 20;
    options.pack.frame_bytes = 128 << 10;
  }

  cas::SaveResult save(const cas::Index* base, const cas::Scope* other = nullptr) {
    return cas::save(backend, other ? *other : scope, items_of(src), base, options);
  }

  cas::Index load(const cas::SaveResult& r, const cas::Scope* other = nullptr) {
    return cas::load_index(backend, other ? *other : scope, r.index_key, r.index_sha256,
                           r.index_bytes);
  }

  // Restores index into a fresh directory and returns it (from `from`, by default the store).
  fs::path restore(const cas::Index& index, const cas::Scope* other = nullptr,
                   store::Backend* from = nullptr) {
    fs::path dest = tmp.path() / ("dest" + std::to_string(++restores));
    cas::RestoreOptions o;
    o.unpack.max_unpacked_bytes = 1ULL << 34;
    o.unpack.resolve = [dest](std::string_view name,
                              archive::EntryType) -> std::optional<archive::Destination> {
      if (name.substr(0, 5) != "work/") {
        return std::nullopt;
      }
      return archive::Destination{dest, std::string(name.substr(5))};
    };
    cas::restore(from != nullptr ? *from : backend, other ? *other : scope, index, o);
    return dest;
  }

  // The file of the store that holds key.
  fs::path object(const std::string& key) { return store_dir / key; }
};

// Nothing of a refused restore is at its destination, nor staged beside it.
void nothing_written(const Fixture& f) {
  for (const auto& e : fs::directory_iterator(f.tmp.path())) {
    std::string n = e.path().filename().string();
    CHECK(n.rfind("dest", 0) != 0);
    CHECK(n.find("ephemera") == std::string::npos);
  }
}

// The fixture's store as a store elsewhere: no descriptors, ranges read in parallel, each
// told first to `hostile` (its number, from 0, and the bytes it is about to give), which may
// change them, throw, or wait.
class Far : public store::Backend {
public:
  explicit Far(store::Backend& inner) : m_inner(inner) {}
  std::function<void(uint64_t call, std::string& bytes, store::Sink& sink)> hostile;
  std::chrono::milliseconds delay{0};
  test::InFlight in_flight;
  std::atomic<uint64_t> calls{0};
  std::mutex mutex;
  struct Read {
    std::string key;
    uint64_t offset = 0;
    uint64_t length = 0;
  };
  std::vector<Read> started; // in the order they started

  std::optional<store::ObjectInfo> stat(const std::string& key) override {
    return m_inner.stat(key);
  }
  void get(const std::string& key, store::Sink& sink) override { m_inner.get(key, sink); }
  void get_range(const std::string& key, uint64_t offset, uint64_t length,
                 store::Sink& sink) override {
    uint64_t n = calls++;
    {
      std::lock_guard<std::mutex> lock(mutex);
      started.push_back({key, offset, length});
    }
    auto leave = in_flight.enter();
    std::this_thread::sleep_for(delay);
    store::StringSink got;
    m_inner.get_range(key, offset, length, got);
    std::string bytes = got.data();
    if (hostile) {
      hostile(n, bytes, sink);
    }
    sink.write(bytes.data(), bytes.size());
  }
  void put(const std::string& key, store::Source& source) override { m_inner.put(key, source); }
  std::vector<store::ObjectInfo> list(const std::string& prefix) override {
    return m_inner.list(prefix);
  }
  void remove(const std::string& key) override { m_inner.remove(key); }
  std::string url(const std::string& key) const override { return "far:" + key; }
  int parallel_reads() const override { return 4; }

private:
  store::Backend& m_inner;
};

} // namespace

TEST_CASE("a chain of states round-trips entry by entry", "[cas]") {
  Fixture f;
  // State 1: small and large files, a directory, a symlink, and entries that change type.
  write(f.src / "a.txt", "alpha");
  write(f.src / "big.bin", random_bytes(3 << 20, 1, 64));
  write(f.src / "d/x", "x");
  write(f.src / "d/same1", std::string(70000, 'q'));
  write(f.src / "d/same2", std::string(70000, 'q'));
  write(f.src / "t", "a file that becomes a directory");
  fs::create_directories(f.src / "u");
  write(f.src / "m", "mode only");
  write(f.src / "n", "mtime only");
  fs::create_symlink("a.txt", f.src / "v");
  write(f.src / "empty", "");
  set_mtime(f.src / "n", 1000000000);
  write(f.src / "old", "before 1970");
  set_mtime(f.src / "old", -86400);
  auto s1 = snapshot(f.src);
  auto r1 = f.save(nullptr);
  CHECK_FALSE(r1.base_used);
  CHECK(r1.files == 10);
  CHECK(r1.packs >= 2);
  auto i1 = f.load(r1);
  CHECK(snapshot(f.restore(i1)) == s1);

  SECTION("mode-only and mtime-only changes upload an index and no pack") {
    fs::permissions(f.src / "m", fs::perms(0600));
    set_mtime(f.src / "n", 1100000000);
    auto s2 = snapshot(f.src);
    auto r2 = f.save(&i1);
    CHECK(r2.base_used);
    CHECK(r2.pack_bytes == 0);
    CHECK(r2.new_bytes == 0);
    CHECK(snapshot(f.restore(f.load(r2))) == s2);
  }

  SECTION("added, modified, deleted and retyped entries, over three states") {
    // State 2: an insertion inside the large file, a new file and directory, deletions,
    // and each type change.
    std::string big = util::read_file(f.src / "big.bin");
    write(f.src / "big.bin", big.substr(0, 1500000) + "inserted" + big.substr(1500000));
    write(f.src / "new/deep/file", "new");
    fs::remove(f.src / "a.txt");
    fs::remove(f.src / "t");
    write(f.src / "t/inner", "now a directory");
    fs::remove(f.src / "u");
    fs::create_symlink("d", f.src / "u");
    fs::remove(f.src / "v");
    write(f.src / "v", "a symlink that became a file");
    auto s2 = snapshot(f.src);
    auto r2 = f.save(&i1);
    CHECK(r2.base_used);
    // Only the chunks around the insertion are new.
    CHECK(r2.new_bytes < 700000);
    CHECK(r2.uploaded() * 4 < r1.uploaded());
    auto i2 = f.load(r2);
    CHECK(snapshot(f.restore(i2)) == s2);

    // State 3: a directory and the large file gone; state 2's content referenced through
    // packs of both earlier saves.
    fs::remove_all(f.src / "d");
    fs::remove(f.src / "big.bin");
    write(f.src / "d", "d is a file now");
    auto s3 = snapshot(f.src);
    auto r3 = f.save(&i2);
    CHECK(r3.new_bytes == 15);
    CHECK(snapshot(f.restore(f.load(r3))) == s3);
  }
}

TEST_CASE("dedup never crosses a scope or a trust level", "[cas]") {
  Fixture f;
  write(f.src / "big.bin", random_bytes(2 << 20, 2, 64));
  auto r1 = f.save(nullptr);
  auto i1 = f.load(r1);
  cas::Scope fork = f.scope;
  fork.trusted = false;
  fork.origin = "github.com/someone/fork";
  auto before = f.backend.list("");
  auto r2 = f.save(&i1, &fork);
  CHECK_FALSE(r2.base_used);
  CHECK(r2.new_bytes == 2 << 20);
  // Everything the untrusted save wrote is below its own prefix.
  std::set<std::string> old;
  for (const auto& o : before) {
    old.insert(o.key);
  }
  for (const auto& o : f.backend.list("")) {
    if (old.count(o.key) == 0) {
      CHECK(o.key.rfind(fork.prefix(), 0) == 0);
    }
  }
  // The trusted index cannot be read as the fork's, nor the fork's as the trusted one's.
  CHECK_THROWS_WITH(f.load(r1, &fork), Catch::Contains("outside its scope"));
  CHECK_THROWS_WITH(f.load(r2), Catch::Contains("outside its scope"));
  CHECK_THROWS_WITH(f.restore(i1, &fork), Catch::Contains("belongs to scope"));
  // Copied into the fork's folder, the trusted index still names its own scope.
  std::string copy = fork.prefix() + "index/" + r1.index_sha256 + ".idx";
  write(f.object(copy), util::read_file(f.object(r1.index_key)));
  CHECK_THROWS_WITH(cas::load_index(f.backend, fork, copy, r1.index_sha256, r1.index_bytes),
                    Catch::Contains("belongs to scope"));
  CHECK(snapshot(f.restore(f.load(r2, &fork), &fork)) == snapshot(f.src));
}

// The message of what fn throws, which must be a refusal of the save: util::ArchiveError,
// which a restore passes over to its next candidate (a plain util::Error would end it).
std::string refusal(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const util::ArchiveError& e) {
    return e.what();
  } catch (const std::exception& e) {
    FAIL("not a refusal of the save (util::ArchiveError): " << e.what());
  }
  FAIL("nothing thrown");
  return "";
}

TEST_CASE("hostile packs and indexes are refused with nothing written", "[cas]") {
  Fixture f;
  write(f.src / "big.bin", random_bytes(5 << 20, 3, 64));
  write(f.src / "small", "small");
  auto r1 = f.save(nullptr);
  auto i1 = f.load(r1);
  auto file_entry = [&](cas::Index& x) -> cas::Entry& {
    for (auto& e : x.entries) {
      if (e.path == "work/big.bin") {
        return e;
      }
    }
    FAIL("no big.bin");
    return x.entries[0];
  };

  SECTION("a chunk whose bytes do not match its hash") {
    cas::Index x = i1;
    file_entry(x).chunks.back().hash[0] ^= 1;
    CHECK_THAT(refusal([&] { f.restore(cas::parse(cas::encode(x), x.scope)); }),
               Catch::Contains("SHA-256 mismatch"));
  }
  SECTION("a pack rewritten in the store, of the same size") {
    std::string key = cas::pack_key(f.scope.prefix() + "packs/", i1.packs.back().id);
    std::string bytes = util::read_file(f.object(key));
    bytes[bytes.size() / 2] ^= 0x55;
    write(f.object(key), bytes);
    CHECK_THAT(refusal([&] { f.restore(i1); }), Catch::Contains("pack"));
  }
  SECTION("a pack whose frames decode to other content of the declared size") {
    // A frame swapped for another valid frame: it decodes, but to bytes of other hashes.
    cas::Index x = i1;
    auto& pack = x.packs[0];
    REQUIRE(pack.frames.size() >= 2);
    std::swap(file_entry(x).chunks[0].hash, file_entry(x).chunks[1].hash);
    CHECK_THAT(refusal([&] { f.restore(cas::parse(cas::encode(x), x.scope)); }),
               Catch::Contains("SHA-256 mismatch"));
  }
  SECTION("an index whose chunks hop between frames to make a restore decode without end") {
    cas::Index x = i1;
    std::string content = util::read_file(f.src / "big.bin");
    // The first byte of every frame, 4000 times over: 4000 bytes of content, a frame decoded
    // for each (more frames than the restore keeps decoded).
    std::vector<cas::ChunkRef> firsts;
    uint64_t at = 0;
    for (const auto& c : file_entry(i1).chunks) {
      if (c.offset == 0) {
        cas::ChunkRef one = c;
        one.length = 1;
        util::Sha256 h;
        h.update(content.data() + at, 1);
        one.hash = h.finish();
        firsts.push_back(one);
      }
      at += c.length;
    }
    REQUIRE(firsts.size() > 33);
    auto& e = file_entry(x);
    e.chunks.clear();
    for (size_t k = 0; k < 4000; ++k) {
      e.chunks.push_back(firsts[k % firsts.size()]);
    }
    e.size = e.chunks.size();
    CHECK_THAT(refusal([&] { f.restore(cas::parse(cas::encode(x), x.scope)); }),
               Catch::Contains("hop between frames"));
  }
  SECTION("an index pointing past a pack's end") {
    cas::Index x = i1;
    x.packs[0].size += 100;
    x.packs[0].frames.back().compressed += 100;
    CHECK_THAT(refusal([&] { f.restore(cas::parse(cas::encode(x), x.scope)); }),
               Catch::Contains("past"));
  }
  SECTION("an index naming a pack that is not in its scope's folder") {
    cas::Index x = i1;
    x.packs[0].id.fill(0xab);
    CHECK_THAT(refusal([&] { f.restore(cas::parse(cas::encode(x), x.scope)); }),
               Catch::Contains("missing"));
  }
  SECTION("an index that is not the manifest's") {
    CHECK_THAT(refusal([&] {
                 cas::load_index(f.backend, f.scope, r1.index_key, std::string(64, '0'),
                                 r1.index_bytes);
               }),
               Catch::Contains("not the one its manifest names"));
    CHECK_THAT(refusal([&] { cas::parse("not an index", f.scope.id()); }),
               Catch::Contains("invalid index"));
    CHECK_THAT(refusal([&] {
                 cas::load_index(f.backend, f.scope, f.scope.prefix() + "index/../../x.idx",
                                 r1.index_sha256, r1.index_bytes);
               }),
               Catch::Contains("outside its scope"));
  }
  SECTION("more bytes than a restore may write") {
    fs::path dest = f.tmp.path() / "dest-limit";
    cas::RestoreOptions o;
    o.unpack.max_unpacked_bytes = 1000;
    o.unpack.resolve = [dest](std::string_view name, archive::EntryType) {
      return std::optional<archive::Destination>(
          archive::Destination{dest, std::string(name.substr(5))});
    };
    CHECK_THAT(refusal([&] { cas::restore(f.backend, f.scope, i1, o); }),
               Catch::Contains("more than the 1000 allowed"));
  }
  nothing_written(f);
}

TEST_CASE("a save whose base lost a pack saves in full", "[cas]") {
  Fixture f;
  write(f.src / "big.bin", random_bytes(1 << 20, 4, 64));
  auto r1 = f.save(nullptr);
  auto i1 = f.load(r1);
  for (const auto& p : i1.packs) {
    fs::remove(f.object(cas::pack_key(f.scope.prefix() + "packs/", p.id)));
  }
  write(f.src / "other", "other");
  auto r2 = f.save(&i1);
  CHECK_FALSE(r2.base_used);
  CHECK(r2.new_bytes == (1 << 20) + 5);
  CHECK(snapshot(f.restore(f.load(r2))) == snapshot(f.src));
}

TEST_CASE("a file that changes while it is saved is refused", "[cas]") {
  Fixture f;
  write(f.src / "f", "one");
  auto items = items_of(f.src);
  write(f.src / "f", "changed");
  CHECK_THROWS_WITH(cas::save(f.backend, f.scope, items, nullptr, f.options),
                    Catch::Contains("changed while"));
  CHECK(f.backend.list(f.scope.prefix() + "index/").empty());
}

TEST_CASE("a save on a base that is mostly dead content writes a new base", "[cas]") {
  Fixture f;
  f.options.pack.pack_bytes = 64ULL << 20; // one pack: the dead content stays in it
  write(f.src / "a.bin", random_bytes(1 << 20, 7, 64));
  write(f.src / "b.bin", random_bytes(1 << 20, 8, 64));
  write(f.src / "c.bin", random_bytes(1 << 20, 9, 64));
  auto i1 = f.load(f.save(nullptr));
  CHECK_FALSE(cas::should_rebase(i1, f.options.pack.pack_bytes));
  fs::remove(f.src / "a.bin");
  fs::remove(f.src / "b.bin");
  auto r2 = f.save(&i1);
  CHECK(r2.base_used);
  CHECK(r2.new_bytes == 0);
  auto i2 = f.load(r2);
  // A third of i2's pack is content i2 uses: the next save starts over.
  CHECK(cas::should_rebase(i2, f.options.pack.pack_bytes));
  write(f.src / "d", "d");
  auto r3 = f.save(&i2);
  CHECK(r3.rebased);
  CHECK_FALSE(r3.base_used);
  CHECK(r3.new_bytes == (1 << 20) + 1);
  CHECK(f.load(r3).packs.size() == 1);
}

TEST_CASE("a file unchanged since it was seen is not read again; one rewritten is", "[cas]") {
  Fixture f;
  write(f.src / "a", std::string(100000, 'a'));
  write(f.src / "b", "version 4.17.20");
  write(f.src / "c", "c");
  set_mtime(f.src / "b", 499162500); // npm's fixed mtime: a patch bump keeps it and the size
  cas::SeenFiles seen1;
  f.options.record = &seen1;
  auto r1 = f.save(nullptr);
  CHECK(r1.files_read == 3);
  REQUIRE(seen1.size() == 3);
  auto i1 = f.load(r1);

  // The record survives its own encoding, and a forged one is refused.
  auto again = cas::parse_seen(cas::encode_seen(seen1));
  CHECK(again.size() == 3);
  CHECK_THROWS(cas::parse_seen(cas::encode_seen(seen1).substr(0, 40)));

  // Same size, same mtime, other content: only ctime tells, and the file is read.
  write(f.src / "b", "version 4.17.21");
  set_mtime(f.src / "b", 499162500);
  cas::SeenFiles seen2;
  f.options.seen = &again;
  f.options.record = &seen2;
  auto r2 = f.save(&i1);
  CHECK(r2.files_read == 1);
  CHECK(r2.new_bytes == 15);
  auto i2 = f.load(r2);
  CHECK(snapshot(f.restore(i2)) == snapshot(f.src));

  // A restore records what it wrote: a save of the restored tree reads nothing.
  cas::SeenFiles restored;
  fs::path dest = f.tmp.path() / "restored";
  cas::RestoreOptions o;
  o.record = &restored;
  o.unpack.max_unpacked_bytes = 1 << 30;
  o.unpack.resolve = [dest](std::string_view name, archive::EntryType) {
    return std::optional<archive::Destination>(
        archive::Destination{dest, std::string(name.substr(5))});
  };
  cas::restore(f.backend, f.scope, i2, o);
  CHECK(restored.size() == 3);
  f.options.seen = &restored;
  f.options.record = nullptr;
  auto r3 = cas::save(f.backend, f.scope, items_of(dest), &i2, f.options);
  CHECK(r3.files_read == 0);
  CHECK(r3.pack_bytes == 0);
  CHECK(snapshot(f.restore(f.load(r3))) == snapshot(f.src));
}

TEST_CASE("a save killed at any moment leaves the old state or the complete new one", "[cas]") {
  Fixture f;
  write(f.src / "big.bin", random_bytes(4 << 20, 10, 64));
  write(f.src / "small", "one");
  auto r1 = f.save(nullptr);
  auto i1 = f.load(r1);
  auto s1 = snapshot(f.src);
  write(f.src / "big.bin", random_bytes(4 << 20, 11, 64));
  write(f.src / "small", "two");
  auto s2 = snapshot(f.src);
  auto items = items_of(f.src);
  for (int delay_us : {0, 500, 2000, 5000, 10000, 20000, 40000, 80000}) {
    INFO("killed after " << delay_us << " us");
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      try {
        cas::save(f.backend, f.scope, items, &i1, f.options);
      } catch (...) {
      }
      ::_exit(0);
    }
    ::usleep(static_cast<useconds_t>(delay_us));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    // Every index in the store is one of the two states, whole.
    for (const auto& o : f.backend.list(f.scope.prefix() + "index/")) {
      std::string sha = o.key.substr(o.key.size() - 68, 64);
      auto index = cas::load_index(f.backend, f.scope, o.key, sha, o.size);
      auto got = snapshot(f.restore(index));
      CHECK((got == s1 || got == s2));
    }
  }
  // gc after killed saves: tests/unit/cas/test_gc.cpp.
  CHECK(snapshot(f.restore(i1)) == s1);
}

TEST_CASE("hard links are saved once, restored and exported as one file under two names", "[cas]") {
  Fixture f;
  write(f.src / "build/memchr-1/build_script_build-1", random_bytes(300000, 7, 64));
  ::chmod((f.src / "build/memchr-1/build_script_build-1").c_str(), 0755);
  REQUIRE(::link((f.src / "build/memchr-1/build_script_build-1").c_str(),
                 (f.src / "build/memchr-1/build-script-build").c_str()) == 0);
  REQUIRE(::link((f.src / "build/memchr-1/build_script_build-1").c_str(),
                 (f.src / "other-name").c_str()) == 0);
  write(f.src / "single", "one name");
  auto saved = f.save(nullptr);
  CHECK(saved.files == 4);
  CHECK(saved.unpacked_bytes == 300000 + 8);
  auto index = f.load(saved);
  // The first name in path order holds the content; the others name it.
  std::map<std::string, std::string> links;
  for (const auto& e : index.entries) {
    links[e.path] = e.hardlink;
  }
  CHECK(links["work/build/memchr-1/build-script-build"].empty());
  CHECK(links["work/build/memchr-1/build_script_build-1"] ==
        "work/build/memchr-1/build-script-build");
  CHECK(links["work/other-name"] == "work/build/memchr-1/build-script-build");
  CHECK(links["work/single"].empty());

  fs::path dest = f.restore(index);
  CHECK(snapshot(dest) == snapshot(f.src));
  struct stat a {
  }, b{}, c{};
  REQUIRE(::stat((dest / "build/memchr-1/build-script-build").c_str(), &a) == 0);
  REQUIRE(::stat((dest / "build/memchr-1/build_script_build-1").c_str(), &b) == 0);
  REQUIRE(::stat((dest / "other-name").c_str(), &c) == 0);
  CHECK(a.st_ino == b.st_ino);
  CHECK(a.st_ino == c.st_ino);
  CHECK(a.st_nlink == 3);

  // The next save of the restored tree is the same index: nothing is new.
  auto again = cas::save(f.backend, f.scope, items_of(dest), &index, f.options);
  CHECK(again.index_sha256 == saved.index_sha256);
  CHECK(again.packs == 0);

  // An export holds them as hard links too.
  fs::path tarball = f.tmp.path() / "x.tar.zst";
  {
    util::Fd fd(::open(tarball.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    REQUIRE(fd.fd >= 0);
    archive::TarWriter tar(fd.fd, 3);
    auto r = cas::export_tar(f.backend, f.scope, index, 1 << 30, tar, {});
    tar.finish();
    CHECK(r.files == 4);
  }
  fs::path unpacked = f.tmp.path() / "unpacked";
  archive::UnpackOptions o;
  o.expected_sha256 = util::sha256_file_hex(tarball);
  o.expected_size = fs::file_size(tarball);
  o.max_unpacked_bytes = 1 << 30;
  o.resolve = [unpacked](std::string_view name,
                         archive::EntryType) -> std::optional<archive::Destination> {
    return archive::Destination{unpacked, std::string(name.substr(5))};
  };
  archive::unpack(tarball, o);
  CHECK(snapshot(unpacked) == snapshot(f.src));
  REQUIRE(::stat((unpacked / "other-name").c_str(), &c) == 0);
  CHECK(c.st_nlink == 3);
}

TEST_CASE("a pack whose stored bytes are not its name is refused by name, and a save that "
          "avoids that name writes the same content under another",
          "[cas]") {
  Fixture f;
  write(f.src / "big.bin", random_bytes(300 << 10, 5, 64));
  auto r1 = f.save(nullptr);
  auto i1 = f.load(r1);
  REQUIRE(i1.packs.size() == 1);
  std::string key = cas::pack_key(f.scope.prefix() + "packs/", i1.packs[0].id);
  std::string good = util::read_file(f.object(key));
  std::string bad = random_bytes(good.size(), 6);
  write(f.object(key), bad);
  // Refused, naming the pack: the session's save then builds on nothing that uses it.
  std::optional<cas::Hash> named;
  try {
    f.restore(i1);
  } catch (const cas::PackRefused& e) {
    named = e.pack();
  }
  REQUIRE(named);
  CHECK(*named == i1.packs[0].id);
  nothing_written(f);

  // The same content saved in full makes the same pack, name and all: what the store keeps
  // under that name (a broker keeps an object it has) would be the bad bytes again.
  SECTION("without avoid") {
    auto r2 = f.save(nullptr);
    CHECK(f.load(r2).packs[0].id == i1.packs[0].id);
  }
  SECTION("with avoid") {
    f.options.pack.avoid.push_back(cas::hex(i1.packs[0].id));
    auto r2 = f.save(nullptr);
    auto i2 = f.load(r2);
    REQUIRE(i2.packs.size() == 1);
    CHECK(i2.packs[0].id != i1.packs[0].id);
    CHECK(util::read_file(f.object(key)) == bad); // left alone: gc's
    CHECK(snapshot(f.restore(i2)) == snapshot(f.src));
  }
}

// Files in several packs, for reads from a store elsewhere: with the fixture's 1 MiB packs,
// each of the first state's packs is one run of frames, and the second state (three files
// rewritten) reads runs of the old packs and of a new one.
struct FarFixture : Fixture {
  Far far{backend};
  cas::Index first, second;
  FarFixture() {
    for (int i = 0; i < 8; ++i) {
      write(src / ("f" + std::to_string(i)), random_bytes(600 << 10, 100 + i));
    }
    write(src / "small", "small");
    first = load(save(nullptr));
    for (int i : {1, 4, 6}) {
      write(src / ("f" + std::to_string(i)), random_bytes(600 << 10, 200 + i));
    }
    second = load(save(&first));
  }
};

TEST_CASE("a restore from a store elsewhere reads its ranges ahead, in parallel, in order",
          "[cas]") {
  FarFixture f;
  f.far.delay = std::chrono::milliseconds(20);
  auto expected = snapshot(f.src);
  fs::path dest = f.restore(f.second, nullptr, &f.far);
  CHECK(snapshot(dest) == expected);
  CHECK(f.far.in_flight.most > 1);
  CHECK(f.far.in_flight.most <= 4);
  // One ranged read per run, started in the order the restore needs them (path order: the
  // offsets within each pack only grow), and none twice.
  REQUIRE(f.far.started.size() == f.far.calls);
  CHECK(f.far.calls >= 5);
  std::map<std::string, uint64_t> last;
  std::set<std::pair<std::string, uint64_t>> distinct;
  uint64_t fetched = 0;
  for (const auto& r : f.far.started) {
    CHECK(distinct.insert({r.key, r.offset}).second);
    if (last.count(r.key) != 0) {
      CHECK(r.offset > last[r.key]);
    }
    last[r.key] = r.offset;
    fetched += r.length;
  }
  // The same bytes as a restore from the directory, which reads its packs in place.
  cas::ChunkReader reader(f.backend, f.scope.prefix() + "packs/", f.second);
  for (const auto& e : f.second.entries) {
    for (const auto& c : e.chunks) {
      reader.chunk(c, e.path);
    }
  }
  CHECK(reader.fetched_bytes() == fetched);
}

TEST_CASE("a range from a store elsewhere that fails, is short, long, other or stalled is "
          "refused with nothing written",
          "[cas]") {
  FarFixture f;
  f.far.delay = std::chrono::milliseconds(5);
  std::string expected;
  uint64_t bad = 2; // one of several reads in flight
  SECTION("an error") {
    f.far.hostile = [bad](uint64_t call, std::string&, store::Sink&) {
      if (call == bad) {
        throw util::StoreError(util::StoreErrorKind::transient, "injected: the range broke");
      }
    };
    expected = "injected: the range broke";
  }
  SECTION("fewer bytes") {
    f.far.hostile = [bad](uint64_t call, std::string& b, store::Sink&) {
      if (call == bad) {
        b.resize(b.size() / 2);
      }
    };
    expected = "bytes at";
  }
  SECTION("more bytes") {
    f.far.hostile = [bad](uint64_t call, std::string& b, store::Sink&) {
      if (call == bad) {
        b += "more";
      }
    };
    expected = "larger than";
  }
  SECTION("other bytes of the right length") {
    f.far.hostile = [bad](uint64_t call, std::string& b, store::Sink&) {
      if (call == bad) {
        b[b.size() / 2] ^= 0x40;
      }
    };
    expected = "pack";
  }
  SECTION("another range of the pack") {
    f.far.hostile = [bad](uint64_t call, std::string& b, store::Sink&) {
      if (call == bad) {
        std::rotate(b.begin(), b.begin() + static_cast<long>(b.size() / 3), b.end());
      }
    };
    expected = "pack";
  }
  SECTION("one stalled until it is no longer wanted, while another fails") {
    f.far.hostile = [bad](uint64_t call, std::string&, store::Sink& sink) {
      if (call == bad) {
        auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (!sink.cancelled() && std::chrono::steady_clock::now() < until) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        throw util::StoreError(util::StoreErrorKind::timeout, "stalled");
      }
      if (call == bad + 1) {
        throw util::StoreError(util::StoreErrorKind::permanent, "injected: the next one broke");
      }
    };
    expected = "injected: the next one broke";
  }
  auto t0 = std::chrono::steady_clock::now();
  CHECK_THROWS_WITH(f.restore(f.second, nullptr, &f.far), Catch::Contains(expected));
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10));
  CHECK(f.far.in_flight.now == 0); // every thread has ended
  nothing_written(f);
  // The store is whole: the same restore without the fault succeeds.
  f.far.hostile = nullptr;
  auto expected_tree = snapshot(f.src);
  CHECK(snapshot(f.restore(f.second, nullptr, &f.far)) == expected_tree);
}
