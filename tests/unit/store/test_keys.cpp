#include "store/keys.hpp"

#include <catch2/catch.hpp>

#include <vector>

using namespace ephemera;

TEST_CASE("keys: every object of the layout is built in one place", "[store]") {
  store::Scope s{"acme/widget", "", "cargo", 3};
  CHECK(store::layout_root() == "v1/");
  CHECK(store::scope_prefix(s) == "v1/acme~2Fwidget/~/cargo/e3/");
  CHECK(store::key_folder(s, "k 1") == "v1/acme~2Fwidget/~/cargo/e3/k~201/");
  CHECK(store::manifest_key(s, "k", "S") == "v1/acme~2Fwidget/~/cargo/e3/k/S.json");
  CHECK(store::archive_key(s, "k", "S") == "v1/acme~2Fwidget/~/cargo/e3/k/S.tar.zst");
  CHECK(store::marker_key("acme/widget", "S") == "v1/_invalidations/acme~2Fwidget/S.json");
  CHECK(store::markers_prefix() == "v1/_invalidations/");
  CHECK(store::markers_prefix("a") == "v1/_invalidations/a/");
  CHECK(store::clock_probe_key(0xab) == "v1/_clock/00000000000000ab");
  CHECK(store::saves_prefix() == "v1/");
  CHECK(store::saves_prefix("acme/widget") == "v1/acme~2Fwidget/");
  CHECK(store::saves_prefix("r", "t", "n") == "v1/r/t/n/");
  CHECK(store::saves_prefix("r", "", "n") == "v1/r/"); // a name without a target: the repository
  // One stanza's folder, whatever its epoch: an empty target is that of saves without one.
  CHECK(store::stanza_prefix("acme/widget", "", "deps") == "v1/acme~2Fwidget/~/deps/");
  CHECK(store::stanza_prefix("r", "t", "n") == "v1/r/t/n/");
  CHECK(store::own_archive("a/S.json") == "a/S.tar.zst");
  CHECK(store::own_manifest("a/S.tar.zst") == "a/S.json");
  CHECK(store::own_archive("a/S.tar.zst").empty());
  CHECK(store::own_archive(".json").empty());
  CHECK(store::own_manifest("a/.tar.zst.tmp.1").empty());
  auto stamp = store::new_stamp("2026-11-24T16:40:00.123456Z");
  CHECK(stamp.rfind("20261124T164000.123456Z-", 0) == 0);
  CHECK(stamp.size() == 24 + 8);
  CHECK(store::new_stamp("2026-11-24T16:40:00.123456Z") != stamp);
}

TEST_CASE("keys: sanitise is undone only for the spelling it makes", "[store]") {
  for (const std::string& c : std::vector<std::string>{"acme/widget", "", ".hidden", "a~b", "é",
                                                       "x.y-z_0", std::string("\0\x7f", 2)}) {
    CAPTURE(c);
    CHECK(store::unsanitise(store::sanitise(c)) == c);
  }
  // Another spelling of a byte, a plain byte escaped, a cut escape: no component makes them,
  // so no second folder can hold the saves of one scope.
  for (const char* folder : {"a~2f", "~41", "a~2", "a~", "~zz", ".x", "a/b", ""}) {
    CAPTURE(folder);
    CHECK_FALSE(store::unsanitise(folder));
  }
}

TEST_CASE("keys: a listed key is parsed back to what it is and where it lies", "[store]") {
  store::Scope s{"acme/widget", "helios", "cargo.registry", 12};
  auto m =
      store::parse_key(store::manifest_key(s, "cargo-0123", "20261124T164000.123456Z-0a1b2c3d"));
  CHECK(m.kind == store::KeyKind::manifest);
  REQUIRE(m.scope);
  CHECK(*m.scope == s);
  CHECK(m.key == "cargo-0123");
  CHECK(m.stamp == "20261124T164000.123456Z-0a1b2c3d");
  auto a = store::parse_key(store::archive_key(s, "", "S"));
  CHECK(a.kind == store::KeyKind::archive);
  REQUIRE(a.scope);
  CHECK(a.key.empty());
  CHECK(a.stamp == "S");

  auto marker = store::parse_key(store::marker_key("acme/widget", "S"));
  CHECK(marker.kind == store::KeyKind::marker);
  CHECK(marker.repository == "acme/widget");
  CHECK_FALSE(marker.scope);
  CHECK(store::parse_key(store::clock_probe_key(7)).kind == store::KeyKind::clock_probe);

  struct Case {
    const char* key;
    store::KeyKind kind;
    bool placed;
  };
  const Case cases[] = {
      {"v1/r/t/n/e1/k/S.json", store::KeyKind::manifest, true},
      {"v1/r/t/n/e0/k/S-copy.json", store::KeyKind::manifest, true}, // any stamp
      {"v1/r/t/n/e01/k/S.json", store::KeyKind::manifest, false},    // not the epoch's spelling
      {"v1/r/t/n/e/k/S.json", store::KeyKind::manifest, false},
      {"v1/r/t/n/1/k/S.json", store::KeyKind::manifest, false},
      {"v1/r/t/n/e99999999999999999999/k/S.json", store::KeyKind::manifest, false},
      {"v1/r~2f/t/n/e1/k/S.json", store::KeyKind::manifest, false}, // not sanitise()'s
      {"v1/r/t/n/e1/S.json", store::KeyKind::manifest, false},      // too shallow
      {"v1/r/t/n/e1/k/x/S.json", store::KeyKind::manifest, false},  // too deep
      {"v1/a/x.json", store::KeyKind::manifest, false},
      {"v1/r/t/n/e1/k/.json", store::KeyKind::other, false},
      {"v1/r/t/n/e1/k/S.tar.zst.tmp.1", store::KeyKind::other, false},
      {"v1/_invalidations/r/S.json", store::KeyKind::marker, false},
      {"v1/_invalidations/r/t/n/e1/k/S.json", store::KeyKind::other, false}, // never a manifest
      {"v1/_invalidations/r/S.tar.zst", store::KeyKind::other, false},
      {"v1/_invalidations/S.json", store::KeyKind::other, false},
      {"v1/_clock/0123456789abcdef", store::KeyKind::clock_probe, false},
      {"v1/_clock/0123456789ABCDEF", store::KeyKind::other, false},
      {"v1/_clock/0123456789abcde", store::KeyKind::other, false},
      {"v1/_clock/x.json", store::KeyKind::manifest, false},
      {"elsewhere/x.json", store::KeyKind::manifest, false},
      {"", store::KeyKind::other, false},
  };
  for (const auto& c : cases) {
    CAPTURE(c.key);
    auto p = store::parse_key(c.key);
    CHECK(p.kind == c.kind);
    CHECK(p.scope.has_value() == c.placed);
  }
  // A marker folder that is not sanitise()'s names no repository.
  CHECK_FALSE(store::parse_key("v1/_invalidations/r~2f/S.json").repository);
}
