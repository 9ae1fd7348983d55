#include "cas/chunker.hpp"
#include "cas/index.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"

#include <catch2/catch.hpp>

#include <cstring>
#include <random>
#include <string>
#include <vector>
#include <zstd.h>

using namespace ephemera;
using cas::Index;

namespace {

cas::Hash filled(uint8_t v) {
  cas::Hash h;
  h.fill(v);
  return h;
}

// An index of one pack of two frames and three entries, valid by every rule.
Index sample() {
  Index x;
  x.scope = "repo/t/n/trusted";
  cas::PackRef p;
  p.id = filled(1);
  p.frames = {{0, 100, 1000}, {100, 50, 500}};
  p.size = 150;
  x.packs.push_back(p);
  cas::Entry d;
  d.path = "work/d";
  d.type = archive::EntryType::directory;
  d.mode = 0755;
  cas::Entry f;
  f.path = "work/d/f";
  f.mode = 0644;
  f.mtime_ns = 1234567890123456789;
  f.chunks = {{0, 0, 0, 600, filled(2)}, {0, 1, 0, 500, filled(3)}};
  f.size = 1100;
  cas::Entry l;
  l.path = "work/d/l";
  l.type = archive::EntryType::symlink;
  l.mode = 0777;
  l.link_target = "f";
  x.entries = {d, f, l};
  return x;
}

std::string compress(const std::string& body) {
  std::string out(ZSTD_compressBound(body.size()), '\0');
  out.resize(ZSTD_compress(out.data(), out.size(), body.data(), body.size(), 1));
  return out;
}

void put32(std::string& s, uint32_t v) {
  s.append(reinterpret_cast<const char*>(&v), 4);
}

} // namespace

TEST_CASE("an index round-trips entry by entry", "[cas]") {
  Index x = sample();
  Index y = cas::parse(cas::encode(x), x.scope);
  REQUIRE(y.entries.size() == 3);
  CHECK(y.packs[0].frames[1].offset == 100);
  for (size_t i = 0; i < 3; ++i) {
    const auto& a = x.entries[i];
    const auto& b = y.entries[i];
    CHECK(a.path == b.path);
    CHECK(a.type == b.type);
    CHECK(a.mode == b.mode);
    CHECK(a.mtime_ns == b.mtime_ns);
    CHECK(a.size == b.size);
    CHECK(a.link_target == b.link_target);
    REQUIRE(a.chunks.size() == b.chunks.size());
    for (size_t c = 0; c < a.chunks.size(); ++c) {
      CHECK(a.chunks[c].hash == b.chunks[c].hash);
      CHECK(a.chunks[c].offset == b.chunks[c].offset);
      CHECK(a.chunks[c].length == b.chunks[c].length);
    }
  }
}

TEST_CASE("an index of another scope is refused", "[cas]") {
  std::string o = cas::encode(sample());
  CHECK_THROWS_WITH(cas::parse(o, "repo/t/n/untrusted/fork"), Catch::Contains("belongs to scope"));
}

TEST_CASE("indexes that break a rule are refused", "[cas]") {
  using Edit = void (*)(Index&);
  struct Case {
    const char* what;
    Edit edit;
    const char* error;
  };
  const Case cases[] = {
      {"chunk past its frame", [](Index& x) { x.entries[1].chunks[1].length = 501; },
       "past the end of frame"},
      {"chunk in a missing frame", [](Index& x) { x.entries[1].chunks[1].frame = 2; },
       "frame 2 of 2"},
      {"chunk in a missing pack", [](Index& x) { x.entries[1].chunks[0].pack = 1; }, "pack 1 of 1"},
      {"frames past the pack's end", [](Index& x) { x.packs[0].size = 140; }, "not at its size"},
      {"overlapping chunks",
       [](Index& x) {
         x.entries[1].chunks = {{0, 0, 0, 600, filled(2)}, {0, 0, 599, 2, filled(4)}};
         x.entries[1].size = 602;
       },
       "overlapping"},
      {"one range, two hashes",
       [](Index& x) {
         x.entries[1].chunks = {{0, 0, 0, 600, filled(2)}, {0, 0, 0, 600, filled(4)}};
         x.entries[1].size = 1200;
       },
       "two hashes"},
      {"size other than its chunks", [](Index& x) { x.entries[1].size = 1; }, "its size is 1"},
      {"out of order", [](Index& x) { std::swap(x.entries[0], x.entries[1]); }, "out of order"},
      {"duplicate", [](Index& x) { x.entries[2].path = "work/d/f"; },
       "out of order or a duplicate"},
      {"dot-dot", [](Index& x) { x.entries[2].path = "work/d/../l"; }, "not a plain relative path"},
      {"absolute", [](Index& x) { x.entries[0].path = "/work"; }, "not a plain relative path"},
      {"set-id", [](Index& x) { x.entries[1].mode = 04755; }, "mode 4755"},
      {"content on a directory", [](Index& x) { x.entries[0].size = 1; }, "content on a directory"},
      {"symlink without target", [](Index& x) { x.entries[2].link_target.clear(); }, "without one"},
      {"unused pack",
       [](Index& x) {
         auto p = x.packs[0];
         p.id = filled(9);
         x.packs.push_back(p);
       },
       "holds no chunk"},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    Index x = sample();
    c.edit(x);
    // Refused by the writer, and by the reader when another writer made it.
    CHECK_THROWS_WITH(cas::encode(x), Catch::Contains(c.error));
  }
}

namespace {

// sample() with "work/d/m", a hard link to "work/d/f".
Index with_hardlink() {
  Index x = sample();
  cas::Entry m;
  m.path = "work/d/m";
  m.mode = x.entries[1].mode;
  m.mtime_ns = x.entries[1].mtime_ns;
  m.hardlink = "work/d/f";
  x.entries.push_back(m);
  return x;
}

} // namespace

TEST_CASE("a hard link round-trips as a second name of an earlier file", "[cas]") {
  Index x = with_hardlink();
  Index y = cas::parse(cas::encode(x), x.scope);
  REQUIRE(y.entries.size() == 4);
  CHECK(y.entries[3].path == "work/d/m");
  CHECK(y.entries[3].type == archive::EntryType::file);
  CHECK(y.entries[3].hardlink == "work/d/f");
  CHECK(y.entries[3].size == 0);
  CHECK(y.entries[1].hardlink.empty());
}

TEST_CASE("hard links that are not a second name of an earlier file are refused", "[cas]") {
  using Edit = void (*)(Index&);
  struct Case {
    const char* what;
    Edit edit;
    const char* error;
  };
  const Case cases[] = {
      {"to a later entry", [](Index& x) { x.entries[3].hardlink = "work/d/z"; },
       "not an earlier file entry"},
      {"to itself", [](Index& x) { x.entries[3].hardlink = "work/d/m"; },
       "not an earlier file entry"},
      {"to a directory", [](Index& x) { x.entries[3].hardlink = "work/d"; },
       "not an earlier file entry"},
      {"to a symlink", [](Index& x) { x.entries[3].hardlink = "work/d/l"; },
       "not an earlier file entry"},
      {"to a hard link",
       [](Index& x) {
         cas::Entry n = x.entries[3];
         n.path = "work/d/n";
         n.hardlink = "work/d/m";
         x.entries.push_back(n);
       },
       "not an earlier file entry"},
      {"with content",
       [](Index& x) {
         x.entries[3].chunks = x.entries[1].chunks;
         x.entries[3].size = x.entries[1].size;
       },
       "content of its own"},
      {"on a directory", [](Index& x) { x.entries[3].type = archive::EntryType::directory; },
       "content of its own, or of other than a file"},
      {"another mode", [](Index& x) { x.entries[3].mode = 0600; }, "mode or mtime"},
      {"another mtime", [](Index& x) { x.entries[3].mtime_ns = 1; }, "mode or mtime"},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    Index x = with_hardlink();
    c.edit(x);
    CHECK_THROWS_WITH(cas::encode(x), Catch::Contains(c.error));
  }
}

TEST_CASE("a forged index body is refused before anything is allocated for it", "[cas]") {
  std::string valid = cas::encode(sample());
  SECTION("a million entries") {
    std::string body(cas::k_index_magic);
    put32(body, 16);
    body += "repo/t/n/trusted";
    put32(body, 0);
    put32(body, 1000000);
    body += std::string(1000000 * 17, '\0');
    CHECK_THROWS_WITH(cas::parse(compress(body), "repo/t/n/trusted"),
                      Catch::Contains("1000000 entries (at most 500000)"));
  }
  SECTION("counts larger than what follows") {
    std::string body(cas::k_index_magic);
    put32(body, 16);
    body += "repo/t/n/trusted";
    put32(body, 4000);
    CHECK_THROWS_WITH(cas::parse_body(body, "repo/t/n/trusted"), Catch::Contains("ends first"));
  }
  SECTION("a truncated or padded object") {
    CHECK_THROWS_WITH(cas::parse(valid.substr(0, valid.size() - 3), "repo/t/n/trusted"),
                      Catch::Contains("invalid index"));
    CHECK_THROWS(cas::parse(valid + "x", "repo/t/n/trusted"));
    CHECK_THROWS_WITH(cas::parse("", "repo/t/n/trusted"), Catch::Contains("truncated"));
  }
  SECTION("a decompression bomb") {
    std::string body(cas::k_max_index_body + 1, '\0');
    CHECK_THROWS_WITH(cas::parse(compress(body), "repo/t/n/trusted"),
                      Catch::Contains("once decompressed"));
  }
  SECTION("every cut of a valid body") {
    std::string body(cas::k_index_magic);
    // parse_body of every prefix of the body either refuses it or is the whole body.
    std::string full(ZSTD_getFrameContentSize(valid.data(), valid.size()), '\0');
    ZSTD_decompress(full.data(), full.size(), valid.data(), valid.size());
    for (size_t n = 0; n < full.size(); ++n) {
      CHECK_THROWS(cas::parse_body(full.substr(0, n), "repo/t/n/trusted"));
    }
    CHECK_NOTHROW(cas::parse_body(full, "repo/t/n/trusted"));
  }
}

TEST_CASE("chunk cuts depend on content, not position", "[cas]") {
  cas::Chunker chunker;
  std::mt19937_64 rng(7);
  std::string data(4 << 20, '\0');
  for (auto& c : data) {
    c = static_cast<char>(rng());
  }
  auto cuts = [&](const std::string& d) {
    std::vector<std::string> out;
    size_t at = 0;
    while (at < d.size()) {
      size_t n = chunker.cut(reinterpret_cast<const uint8_t*>(d.data()) + at, d.size() - at);
      out.push_back(d.substr(at, n));
      at += n;
    }
    return out;
  };
  auto a = cuts(data);
  for (const auto& c : a) {
    CHECK(c.size() <= 256 * 1024);
  }
  CHECK(a.size() > 30);
  CHECK(a.size() < 130);
  // Ten bytes inserted near the start: all but the first few chunks are the same.
  std::string b = data.substr(0, 1000) + "0123456789" + data.substr(1000);
  auto bc = cuts(b);
  size_t same = 0;
  for (const auto& c : bc) {
    same += std::find(a.begin(), a.end(), c) != a.end() ? 1 : 0;
  }
  CHECK(same + 2 >= a.size());
}

TEST_CASE("the fuzz target's seeds are valid indexes", "[cas]") {
  std::string dir = std::string(EPHEMERA_SOURCE_ROOT) + "/tests/fuzz/corpus/fuzz_cas_index/";
  std::string body = util::read_file(dir + "body.bin");
  std::string object = util::read_file(dir + "object.bin");
  CHECK(cas::parse_body(std::string_view(body).substr(1), "acme/app/linux/deps/trusted")
            .entries.size() == 3);
  CHECK(cas::parse(std::string_view(object).substr(1), "acme/app/linux/deps/trusted")
            .entries.size() == 3);
}
