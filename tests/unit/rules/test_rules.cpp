#include "rules/rules.hpp"
#include "rules/walk.hpp"
#include "util/fs.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <sys/stat.h>
#include <unistd.h>

using namespace ephemera;
using rules::Anchor;

namespace {

rules::RuleSet set_of(std::initializer_list<const char*> texts) {
  std::vector<rules::Rule> parsed;
  for (const char* t : texts) {
    parsed.push_back(rules::parse_rule(t));
  }
  return rules::RuleSet::compile(std::move(parsed));
}

} // namespace

TEST_CASE("rule matching table", "[rules]") {
  struct Case {
    std::vector<const char*> rules;
    Anchor anchor;
    const char* path;
    bool selected;
  };
  const std::vector<Case> cases = {
      // buildomat's documented examples
      {{"/tmp/**/*.txt"}, Anchor::root, "tmp/a.txt", true},
      {{"/tmp/**/*.txt"}, Anchor::root, "tmp/x/y/a.txt", true},
      {{"/tmp/**/*.txt"}, Anchor::root, "tmp/x/y/a.txtx", false},
      {{"/tmp/**/*.txt"}, Anchor::root, "var/tmp/a.txt", false},
      {{"/tmp/*.txt"}, Anchor::root, "tmp/a.txt", true},
      {{"/tmp/*.txt"}, Anchor::root, "tmp/x/a.txt", false},
      {{"/tmp/*"}, Anchor::root, "tmp/x", true},
      {{"/tmp/*"}, Anchor::root, "tmp/x/y", true}, // tmp/x is selected: everything below it
      {{"/tmp/*"}, Anchor::root, "tmp", false},
      {{"/tmp/a?c"}, Anchor::root, "tmp/abc", true},
      {{"/tmp/a?c"}, Anchor::root, "tmp/a/c", false},
      {{"/tmp/a?c"}, Anchor::root, "tmp/ac", false},
      {{"/tmp/a.c"}, Anchor::root, "tmp/abc", false}, // '.' is literal
      {{"/tmp/a.c"}, Anchor::root, "tmp/a.c", true},
      {{"/tmp/a+b(1).txt"}, Anchor::root, "tmp/a+b(1).txt", true},
      {{"/tmp/a+b(1).txt"}, Anchor::root, "tmp/aab(1).txt", false},
      {{"/tmp/$x^|{}"}, Anchor::root, "tmp/$x^|{}", true},
      // classes
      {{"/t/[abc].o"}, Anchor::root, "t/b.o", true},
      {{"/t/[abc].o"}, Anchor::root, "t/d.o", false},
      {{"/t/[a-c].o"}, Anchor::root, "t/c.o", true},
      {{"/t/[a-c].o"}, Anchor::root, "t/-.o", false},
      {{"/t/[!abc].o"}, Anchor::root, "t/d.o", true},
      {{"/t/[!abc].o"}, Anchor::root, "t/a.o", false},
      {{"/t/[]a].o"}, Anchor::root, "t/].o", true},
      {{"/t/[]a].o"}, Anchor::root, "t/a.o", true},
      {{"/t/[-a].o"}, Anchor::root, "t/-.o", true},
      {{"/t/[a-].o"}, Anchor::root, "t/-.o", true},
      {{"/t/[*].o"}, Anchor::root, "t/*.o", true},
      {{"/t/[*].o"}, Anchor::root, "t/x.o", false},
      {{"/t/[?]"}, Anchor::root, "t/?", true},
      {{"/t/[!a]"}, Anchor::root, "t/b", true},
      {{"/t/x[!a]y"}, Anchor::root, "t/x/y", false}, // a class never crosses '/'
      {{"/t/x[+-0]y"}, Anchor::root, "t/x/y", false},
      {{"/t/x[+-0]y"}, Anchor::root, "t/x.y", true},
      // '*' never crosses '/'
      {{"/a/*/c"}, Anchor::root, "a/b/c", true},
      {{"/a/*/c"}, Anchor::root, "a/b/x/c", false},
      {{"/a/*c"}, Anchor::root, "a/b/c", false},
      {{"/a/*"}, Anchor::root, "a/.hidden", true}, // a leading '.' is not special
      {{"/a/*"}, Anchor::root, "a", false},
      // '**'
      {{"/a/**"}, Anchor::root, "a/b", true},
      {{"/a/**"}, Anchor::root, "a/b/c/d", true},
      {{"/a/**"}, Anchor::root, "ab/c", false},
      {{"/a/**/b"}, Anchor::root, "a/b", true},
      {{"/a/**/b"}, Anchor::root, "a/x/y/b", true},
      {{"/a/**/b"}, Anchor::root, "a/xb", false},
      {{"/**/*.rs"}, Anchor::root, "src/main.rs", true},
      {{"/**/*.rs"}, Anchor::root, "main.rs", true},
      {{"/**/*.rs"}, Anchor::root, "main.rsx", false},
      {{"/a/**/**/b"}, Anchor::root, "a/b", true},
      // a rule that matches a directory takes everything below it
      {{"~/.cargo/registry"}, Anchor::home, ".cargo/registry/cache/x.crate", true},
      {{"~/.cargo/registry"}, Anchor::home, ".cargo/registry", true},
      {{"~/.cargo/registry"}, Anchor::home, ".cargo/registryx", false},
      {{"~/.cargo/registry"}, Anchor::home, ".cargo", false},
      {{"~/.cargo/registry"}, Anchor::root, "home/u/.cargo/registry/x", false},
      {{"~/.cargo/registry/"}, Anchor::home, ".cargo/registry/x", true},
      // exclusions: any '!' wins, order does not matter, directories drop everything below
      {{"~/.cargo/registry/**/*", "!~/.cargo/registry/src/**/*"}, Anchor::home,
       ".cargo/registry/src/a/b.rs", false},
      {{"!~/.cargo/registry/src/**/*", "~/.cargo/registry/**/*"}, Anchor::home,
       ".cargo/registry/src/a/b.rs", false},
      {{"~/.cargo/registry/**/*", "!~/.cargo/registry/src/**/*"}, Anchor::home,
       ".cargo/registry/cache/a.crate", true},
      {{"~/.cargo", "!~/.cargo/registry/src"}, Anchor::home, ".cargo/registry/src/x/y", false},
      {{"~/.cargo", "!~/.cargo/registry/src"}, Anchor::home, ".cargo/registry/srcx", true},
      {{"target/**/*", "!target/**/*.tmp"}, Anchor::work, "target/debug/x.tmp", false},
      {{"target/**/*", "!target/**/*.tmp"}, Anchor::work, "target/debug/x.o", true},
      {{"target/**/*", "!target/*"}, Anchor::work, "target/debug/x.o", false},
      {{"target", "!target/*/incremental"}, Anchor::work, "target/debug/incremental/a", false},
      {{"target", "!target/*/incremental"}, Anchor::work, "target/debug/deps/a", true},
      // '*' in '!' rules does not cross '/' here (it does in buildomat's implementation)
      {{"/out/**", "!/out/*.log"}, Anchor::root, "out/sub/x.log", true},
      {{"/out/**", "!/out/*.log"}, Anchor::root, "out/x.log", false},
      // anchors
      {{"target/**"}, Anchor::work, "target/a", true},
      {{"target/**"}, Anchor::home, "target/a", false},
      {{"target/**"}, Anchor::root, "target/a", false},
      {{"/target/**"}, Anchor::root, "target/a", true},
      {{"/target/**"}, Anchor::work, "target/a", false},
      {{"~"}, Anchor::home, ".bashrc", true},
      // prefixes do not change what matches
      {{"=target/**"}, Anchor::work, "target/a", true},
      {{"%target/**"}, Anchor::work, "target/a", true},
      {{"=%target/**"}, Anchor::work, "target/a", true},
      {{"%=target/**"}, Anchor::work, "target/a", true},
      // case-sensitive, byte-exact, any encoding
      {{"/t/A.txt"}, Anchor::root, "t/a.txt", false},
      {{"/t/*.txt"}, Anchor::root, "t/caf\xc3\xa9.txt", true},
      {{"/t/*.txt"}, Anchor::root, "t/bad\xff\xfe.txt", true},
      {{"/t/caf\xc3\xa9"}, Anchor::root, "t/caf\xc3\xa9/x", true},
      {{"/t/?.txt"}, Anchor::root, "t/\xff.txt", true},
      {{"/t/a b/*"}, Anchor::root, "t/a b/c d", true},
      {{"/t/*"}, Anchor::root, "t/line\nbreak", true},
      // no include rule at all
      {{"!/t/x"}, Anchor::root, "t/y", false},
      // more: '**' as zero or more directories, exclusions whatever their order
      {{"/a/**/b"}, Anchor::root, "a/b", true},
      {{"/a/**/b"}, Anchor::root, "a/x/y/z/b", true},
      {{"/a/**/b"}, Anchor::root, "a/x/bb", false},
      {{"/a/**"}, Anchor::root, "a/x/y", true},
      {{"/a/**"}, Anchor::root, "ab/x", false},
      {{"**/node_modules"}, Anchor::work, "node_modules/x/index.js", true},
      {{"**/node_modules"}, Anchor::work, "web/app/node_modules/y", true},
      {{"**/node_modules"}, Anchor::work, "web/node_modules_old/y", false},
      {{"!/t/x", "/t/**"}, Anchor::root, "t/x/deep/file", false}, // '!' first or last: same
      {{"/t/**", "!/t/x"}, Anchor::root, "t/x/deep/file", false},
      {{"/t/**", "!/t/x"}, Anchor::root, "t/xy", true},
      {{"/t/**", "!/t/*.log"}, Anchor::root, "t/sub/a.log", true}, // '*' never crosses '/' in '!'
      {{"/t/**", "!/t/**/*.log"}, Anchor::root, "t/sub/a.log", false},
      {{"/t/**", "!/t/**/*.log"}, Anchor::root, "t/a.log", false},
      {{"/t/[-a].o"}, Anchor::root, "t/-.o", true}, // '-' first is literal
      {{"/t/[a-].o"}, Anchor::root, "t/-.o", true}, // '-' last is literal
      {{"/t/[*]"}, Anchor::root, "t/*", true},
      {{"/t/[*]"}, Anchor::root, "t/x", false},
      {{"/t/[?]"}, Anchor::root, "t/x", false},
      {{"/t/*"}, Anchor::root, "t/.hidden", true}, // a leading '.' is not special
      {{"/t/.*"}, Anchor::root, "t/.cache/x", true},
      {{"~/.cargo/registry"}, Anchor::home, ".cargo/registry/cache/a.crate", true},
      {{"~/.cargo/registry"}, Anchor::work, ".cargo/registry/cache/a.crate", false}, // other anchor
      {{"target"}, Anchor::work, "target/debug/app", true},
      {{"target"}, Anchor::root, "target/debug/app", false},
      {{"target"}, Anchor::work, "targets/x", false},
      {{"/"}, Anchor::root, "anything/at/all", true},
      {{"~"}, Anchor::home, ".bashrc", true},
  };
  for (const auto& c : cases) {
    std::string desc;
    for (const char* r : c.rules) {
      desc += std::string(r) + " ";
    }
    INFO(desc << "@" << rules::folder(c.anchor) << ": " << c.path);
    std::vector<rules::Rule> parsed;
    for (const char* r : c.rules) {
      parsed.push_back(rules::parse_rule(r));
    }
    auto set = rules::RuleSet::compile(std::move(parsed));
    CHECK(set.selects(c.anchor, c.path).has_value() == c.selected);
  }
}

TEST_CASE("malformed rules are errors that name the rule, the offset and the problem", "[rules]") {
  struct Case {
    const char* rule;
    size_t offset;
    const char* reason_part;
  };
  const Case cases[] = {
      {"", 0, "empty rule"},
      {"!", 1, "empty rule"},
      {"=%", 2, "empty rule"},
      {"/a/b**", 4, "whole path component"},
      {"/a/**b", 3, "whole path component"},
      {"/a/***", 3, "whole path component"},
      {"/a/[abc", 3, "unclosed"},
      {"/a/[]", 3, "unclosed"},
      {"/a/[!]", 3, "unclosed"},
      {"!=/a", 1, "combines with nothing"},
      {"!%/a", 1, "combines with nothing"},
      {"=!/a", 1, "must come first"},
      {"==/a", 1, "twice"},
      {"/a/../b", 3, "'..'"},
      {"../b", 0, "'..'"},
      {"/a//b", 3, "empty path component"},
      {"~user/x", 0, "'~' must be followed by '/'"},
      {"/a/[z-a]", 4, "reversed"},
      {"/a/./b", 3, "'.'"},
  };
  for (const auto& c : cases) {
    INFO(c.rule);
    try {
      rules::parse_rule(c.rule);
      FAIL("accepted a malformed rule");
    } catch (const rules::RuleError& e) {
      CHECK(e.rule() == c.rule);
      CHECK(e.offset() == c.offset);
      CHECK_THAT(e.reason(), Catch::Contains(c.reason_part));
      CHECK_THAT(std::string(e.what()), Catch::Contains(c.rule));
    }
  }
}

TEST_CASE("prefixes and anchors parse", "[rules]") {
  auto r = rules::parse_rule("=%~/.cargo/registry/**/*");
  CHECK(r.must_match);
  CHECK(r.may_change);
  CHECK_FALSE(r.exclude);
  CHECK(r.anchor == Anchor::home);
  CHECK(r.pattern == ".cargo/registry/**/*");
  auto x = rules::parse_rule("!/var/tmp");
  CHECK(x.exclude);
  CHECK(x.anchor == Anchor::root);
  CHECK(x.pattern == "var/tmp");
  auto w = rules::parse_rule("%=target/debug/");
  CHECK(w.anchor == Anchor::work);
  CHECK(w.pattern == "target/debug");
}

TEST_CASE("a hostile pattern compiles and matches in linear time", "[rules]") {
  std::string rule = "/";
  for (int i = 0; i < 200; ++i) {
    rule += "*a";
  }
  auto set = set_of({rule.c_str()});
  std::string path(20000, 'a');
  CHECK_FALSE(set.selects(Anchor::root, path + "b").has_value());
}

TEST_CASE("pruning: may_contain", "[rules]") {
  auto set = set_of({"~/.cargo/registry/**/*", "!~/.cargo/registry/src/**/*", "target/*/deps"});
  CHECK(set.may_contain(Anchor::home, ""));
  CHECK(set.may_contain(Anchor::home, ".cargo"));
  CHECK(set.may_contain(Anchor::home, ".cargo/registry"));
  CHECK(set.may_contain(Anchor::home, ".cargo/registry/cache/x"));
  CHECK_FALSE(set.may_contain(Anchor::home, ".cargo/registry/src"));
  CHECK_FALSE(set.may_contain(Anchor::home, ".rustup"));
  CHECK_FALSE(set.may_contain(Anchor::home, ".cargo/bin"));
  CHECK(set.may_contain(Anchor::work, "target/debug"));
  CHECK(set.may_contain(Anchor::work, "target/debug/deps/x"));
  CHECK_FALSE(set.may_contain(Anchor::work, "target/debug/build"));
  CHECK_FALSE(set.may_contain(Anchor::root, "home"));
  auto starts = set.starts();
  REQUIRE(starts.size() == 2);
  CHECK(starts[0] == std::make_pair(Anchor::home, std::string(".cargo/registry")));
  CHECK(starts[1] == std::make_pair(Anchor::work, std::string("target")));
}

namespace {

void write(const std::filesystem::path& p, const std::string& content) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << content;
}

} // namespace

TEST_CASE("the walk on a real tree: links, loops, odd names, unreadable dirs", "[rules]") {
  util::TempDir dir;
  auto root = dir.path();
  auto work = root / "work";
  write(work / "target/debug/a.o", "aa");
  write(work / "target/debug/sp ace", "s");
  write(work / "target/debug/new\nline", "n");
  write(work / "target/debug/bad\xff", "b");
  write(work / "target/debug/x.tmp", "t");
  write(work / "other/file", "o");
  std::filesystem::create_directories(work / "target/empty");
  std::filesystem::create_symlink("a.o", work / "target/debug/link");
  std::filesystem::create_symlink("/does/not/exist", work / "target/debug/dangling");
  std::filesystem::create_symlink("..", work / "target/debug/loop");
  std::filesystem::create_directories(work / "target/locked/inner");
  write(work / "target/locked/inner/f", "f");

  rules::Anchors anchors;
  anchors.root = root;
  anchors.work = "/work";
  anchors.home = "/home/u";
  auto set = set_of({"target", "!target/**/*.tmp", "=target/debug/*.o", "=nothing/*"});
  bool as_root = ::geteuid() == 0;
  ::chmod((work / "target/locked").c_str(), 0);
  auto result = rules::walk(set, anchors);
  ::chmod((work / "target/locked").c_str(), 0755);

  std::vector<std::string> visible;
  for (const auto& e : result.entries) {
    visible.push_back(anchors.visible_path(e.anchor, e.rel));
  }
  CHECK(std::is_sorted(visible.begin(), visible.end()));
  auto has = [&](const std::string& p) {
    return std::find(visible.begin(), visible.end(), p) != visible.end();
  };
  CHECK(has("/work/target/debug/a.o"));
  CHECK(has("/work/target/debug/sp ace"));
  CHECK(has("/work/target/debug/new\nline"));
  CHECK(has("/work/target/debug/bad\xff"));
  CHECK(has("/work/target/debug/link"));
  CHECK(has("/work/target/debug/dangling"));
  CHECK(has("/work/target/debug/loop")); // a link, never followed
  CHECK(has("/work/target/empty"));
  CHECK_FALSE(has("/work/target/debug/x.tmp"));
  CHECK_FALSE(has("/work/other/file"));
  CHECK(std::count(visible.begin(), visible.end(), "/work/target/debug/a.o") == 1);
  for (const auto& e : result.entries) {
    if (anchors.visible_path(e.anchor, e.rel) == "/work/target/debug/link") {
      CHECK(e.type == rules::EntryType::symlink);
      CHECK(e.link_target == "a.o");
    }
    if (anchors.visible_path(e.anchor, e.rel) == "/work/target/debug/a.o") {
      CHECK(e.size == 2);
      CHECK(anchors.host_path(e.anchor, e.rel) == (work / "target/debug/a.o").string());
    }
  }
  CHECK(result.rule_hits[2] == 1);
  CHECK(result.rule_hits[3] == 0);
  if (!as_root) {
    REQUIRE(result.warnings.size() == 1);
    CHECK_THAT(result.warnings[0], Catch::Contains("target/locked"));
  }
}

TEST_CASE("the walk across anchors: in job-visible order, each path once per anchor", "[rules]") {
  util::TempDir dir;
  auto root = dir.path();
  // $HOME inside the working directory's parent, a root rule reaching into $HOME, names
  // whose order differs between relative paths and visible ones ("-" < "/" < "a").
  write(root / "w/src-gen/x", "1");
  write(root / "w/src/y", "2");
  write(root / "w/h/.cargo/config", "3");
  write(root / "w/h/.cargo/bin/tool", "4");
  write(root / "opt/tool", "5");

  rules::Anchors anchors;
  anchors.root = root;
  anchors.work = "/w";
  anchors.home = "/w/h";
  auto set = set_of({"/opt/*", "/w/h/.cargo/config", "~/.cargo", "src", "src-gen"});
  auto result = rules::walk(set, anchors);

  std::vector<std::string> visible;
  for (const auto& e : result.entries) {
    visible.push_back(anchors.visible_path(e.anchor, e.rel));
  }
  CHECK(visible == std::vector<std::string>{"/opt/tool", "/w/h/.cargo", "/w/h/.cargo/bin",
                                            "/w/h/.cargo/bin/tool", "/w/h/.cargo/config",
                                            "/w/h/.cargo/config", "/w/src", "/w/src-gen", "/w/src-gen/x", "/w/src/y"});
  // The file two anchors reach is kept under both, root first.
  auto config = std::find(visible.begin(), visible.end(), "/w/h/.cargo/config") - visible.begin();
  CHECK(result.entries.at(config).anchor == Anchor::root);
  CHECK(result.entries.at(config + 1).anchor == Anchor::home);
  for (const auto& e : result.entries) {
    CHECK(std::filesystem::exists(anchors.host_path(e.anchor, e.rel)));
  }
}

TEST_CASE("the walk never follows a symlink in a rule's literal prefix", "[rules]") {
  // target -> /elsewhere and the rule 'target/debug': post must not save /elsewhere/debug
  // (with the agent's privileges) for the next job to restore.
  util::TempDir dir;
  auto root = dir.path();
  write(root / "elsewhere/debug/secret", "s");
  write(root / "elsewhere/top", "t");
  std::filesystem::create_directories(root / "work");
  std::filesystem::create_symlink(root / "elsewhere", root / "work/target");
  write(root / "work/real/debug/ok", "o");
  std::filesystem::create_symlink("ok", root / "work/real/debug/link");
  rules::Anchors anchors;
  anchors.root = root;
  anchors.work = "/work";
  anchors.home = "/home/u";
  auto result = rules::walk(set_of({"target/debug", "target/top", "real/debug"}), anchors);
  std::vector<std::string> rels;
  for (const auto& e : result.entries) {
    rels.push_back(e.rel);
  }
  CHECK(rels == std::vector<std::string>{"real/debug", "real/debug/link", "real/debug/ok"});
  REQUIRE(result.warnings.size() == 2); // one for each rule through the link
  CHECK(result.warnings[0].find("work/target is a symlink") != std::string::npos);

  // A symlinked anchor is the agent's choice and is followed; the last component of a
  // prefix that is a link is saved as a link.
  std::filesystem::create_symlink(root / "work/real", root / "home-link");
  anchors.work = "/home-link";
  auto linked = rules::walk(set_of({"debug/ok", "debug/link"}), anchors);
  REQUIRE(linked.entries.size() == 2);
  CHECK(linked.entries[0].type == rules::EntryType::symlink);
  CHECK(linked.entries[1].rel == "debug/ok");
}

namespace {

std::string digest_of(std::initializer_list<const char*> texts) {
  std::vector<rules::Rule> parsed;
  for (const char* t : texts) {
    parsed.push_back(rules::parse_rule(t));
  }
  return rules::rules_digest(parsed);
}

} // namespace

TEST_CASE("the rules digest changes with what the rules admit, and only with that", "[rules]") {
  auto d = digest_of({"target", "!target/**/*.tmp", "~/.cargo/registry"});
  CHECK(d.size() == 64);
  // Order, repetition, a trailing '/', '=' and '%' say nothing about what is admitted.
  CHECK(digest_of({"~/.cargo/registry/", "!target/**/*.tmp", "target", "target"}) == d);
  CHECK(digest_of({"=%target", "!target/**/*.tmp", "=~/.cargo/registry"}) == d);
  // Narrowing, widening, another anchor, an exclusion turned inclusion: another digest.
  CHECK(digest_of({"target/debug", "!target/**/*.tmp", "~/.cargo/registry"}) != d);
  CHECK(digest_of({"target", "~/.cargo/registry"}) != d);
  CHECK(digest_of({"target", "!target/**/*.tmp", "/.cargo/registry"}) != d);
  CHECK(digest_of({"target", "target/**/*.tmp", "~/.cargo/registry"}) != d);
}
