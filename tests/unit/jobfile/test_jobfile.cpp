#include "jobfile/frontmatter.hpp"
#include "jobfile/reader.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <sys/stat.h>

using namespace ephemera;
namespace fs = std::filesystem;

namespace {

fs::path put(const fs::path& p, const std::string& content) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << content;
  return p;
}

// Every diagnostic of a failed load, one "line:col: severity: message" a line.
std::string errors_of(const fs::path& file) {
  try {
    jobfile::load_job(file);
  } catch (const util::InputError& e) {
    std::string out;
    for (const auto& d : e.diagnostics()) {
      out += d.str() + "\n";
    }
    return out.empty() ? std::string(e.what()) : out;
  }
  return "";
}

const std::string k_stanza = "#: [[persist]]\n"
                             "#: name = \"cargo\"\n"
                             "#: rules = [\"~/.cargo/registry\"]\n"
                             "#: epoch = 1\n";

} // namespace

TEST_CASE("frontmatter quirks of real buildomat jobs", "[jobfile]") {
  struct Case {
    const char* what;
    std::string script;
    std::string toml;               // what buildomat would hand to the TOML parser
    std::vector<int> script_lines;  // where each TOML line came from
  };
  const std::vector<Case> cases = {
      {"plain", "#!/bin/bash\n#: name = \"a\"\n#: variety = \"basic\"\n\nset -o errexit\n",
       " name = \"a\"\n variety = \"basic\"", {2, 3}},
      {"bare '#:' lines keep the numbering", "#!/bin/bash\n#:\n#: name = \"a\"\n#:\n",
       "\n name = \"a\"\n", {2, 3, 4}},
      {"'#:' then a tab", "#!/bin/bash\n#:\tname = \"a\"\n", "\tname = \"a\"", {2}},
      {"'#:' then six spaces", "#!/bin/bash\n#:      name = \"a\"\n", "      name = \"a\"", {2}},
      {"'#:' with no space", "#!/bin/bash\n#:name=\"a\"\n", "name=\"a\"", {2}},
      {"'#:#:' loses both prefixes", "#!/bin/bash\n#:#: name = \"a\"\n", " name = \"a\"", {2}},
      {"trailing whitespace kept", "#!/bin/bash\n#: name = \"a\"   \t\n", " name = \"a\"   \t", {2}},
      {"licence header before the frontmatter",
       "#!/bin/bash\n#\n# Copyright 2024 Oxide Computer Company\n#\n#: name = \"a\"\n", " name = \"a\"",
       {5}},
      {"a lone '#' between '#:' lines", "#!/bin/bash\n#: name = \"a\"\n#\n#: variety = \"b\"\n",
       " name = \"a\"\n variety = \"b\"", {2, 4}},
      {"a comment paragraph after the last '#:' line",
       "#!/bin/bash\n#: name = \"a\"\n#\n# What this job does.\n# More words.\n\nexit 0\n", " name = \"a\"", {2}},
      {"ended by a code line", "#!/bin/bash\n#: name = \"a\"\nset -x\n#: variety = \"late\"\n", " name = \"a\"", {2}},
      {"ended by a blank line", "#!/bin/bash\n#: name = \"a\"\n\n#: variety = \"late\"\n", " name = \"a\"", {2}},
      {"CRLF line ends", "#!/bin/bash\r\n#: name = \"a\"\r\n#: variety = \"b\"\r\n",
       " name = \"a\"\n variety = \"b\"", {2, 3}},
      {"no final newline", "#!/bin/bash\n#: name = \"a\"", " name = \"a\"", {2}},
      {"a lone CR is not a line break", "#!/bin/bash\n#: name = \"a\"\r#: x = 1\n", " name = \"a\"\r#: x = 1", {2}},
      {"another interpreter", "#!/usr/bin/env zsh\n#: name = \"z\"\n", " name = \"z\"", {2}},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    auto fm = jobfile::extract_frontmatter("job.sh", c.script);
    CHECK(fm.toml == c.toml);
    std::vector<int> lines;
    for (const auto& l : fm.lines) {
      lines.push_back(l.script_line);
    }
    CHECK(lines == c.script_lines);
  }
}

TEST_CASE("positions map back through the extraction, whatever the prefix", "[jobfile]") {
  auto fm = jobfile::extract_frontmatter(
      "job.sh", "#!/bin/bash\n# licence\n#: a = 1\n#\n#:#:b = 2\n#:\tc = 3\n");
  CHECK(fm.map("job.sh", 1, 2).str() == "job.sh:3:4");
  CHECK(fm.map("job.sh", 2, 1).str() == "job.sh:5:5");
  CHECK(fm.map("job.sh", 3, 2).str() == "job.sh:6:4");
}

TEST_CASE("the three lints are warnings with the script's position", "[jobfile]") {
  auto fm = jobfile::extract_frontmatter(
      "job.sh", "#!/bin/bash\n#: name = \"a\"\n##: variety = \"b\"\n\n#: enable = false\n");
  REQUIRE(fm.warnings.size() == 2);
  CHECK(fm.warnings[0].str() == "job.sh:3:1: warning: '##:' is a comment, not frontmatter: did you mean '#:'?");
  CHECK_THAT(fm.warnings[1].str(), Catch::StartsWith("job.sh:5:1: warning: this '#:' line comes after the "
                                                     "frontmatter ended (the blank line 4 ended it)"));
}

TEST_CASE("scripts buildomat would not read at all", "[jobfile]") {
  CHECK_THROWS_WITH(jobfile::extract_frontmatter("job.sh", ""), Catch::Contains("interpreter line"));
  CHECK_THROWS_WITH(jobfile::extract_frontmatter("job.sh", "\xef\xbb\xbf#!/bin/bash\n#: name = \"a\"\n"),
                    Catch::Contains("byte-order mark"));
  CHECK_THROWS_WITH(jobfile::extract_frontmatter("job.sh", "#: name = \"a\"\n"), Catch::Contains("interpreter line"));
  // A blank line between the licence header and the '#:' lines: buildomat sees no frontmatter.
  CHECK_THROWS_WITH(jobfile::extract_frontmatter("job.sh", "#!/bin/bash\n#\n# Copyright\n\n#: name = \"a\"\n"),
                    Catch::Contains("no frontmatter"));
}

TEST_CASE("real job files load with every buildomat key left alone", "[jobfile]") {
  util::TempDir dir;
  auto job = put(dir.path() / "jobs/build.sh",
                 "#!/bin/bash\n"
                 "#\n"
                 "# Copyright 2025 Oxide Computer Company\n"
                 "#\n"
                 "#:\n"
                 "#: name = \"helios / build-trampoline\"\n"
                 "#: variety = \"basic\"\n"
                 "#: target = \"helios-2.0\"\n"
                 "#: rust_toolchain = \"1.85.0\"\n"
                 "#: output_rules = [\n"
                 "#:\t\"/out/*\",\n"
                 "#:\t\"=/work/release.tar.gz\",\n"
                 "#: ]\n"
                 "#: access_repos = []\n"
                 "#: skip_clone = false\n"
                 "#:\n"
                 "#: [[publish]]\n"
                 "#: from_output = \"/out/x.tar.gz\"\n"
                 "#: series = \"image\"\n"
                 "#: name = \"x.tar.gz\"\n"
                 "#:\n"
                 "#: [dependencies.build-omicron]\n"
                 "#: job = \"build-omicron\"\n"
                 "#:\n"
                 "#: [[persist]]\n"
                 "#: name = \"cargo\"\n"
                 "#: rules = [\n"
                 "#:   \"~/.cargo/registry/**/*\",\n"
                 "#:   \"!~/.cargo/registry/src/**/*\"\n"
                 "#: ]\n"
                 "#: epoch = 3\n"
                 "#: key_files = []\n"
                 "#: cache_key = \"cargo-v1.85\"\n"
                 "#: max_size = \"4GiB\"\n"
                 "#: share = \"branch\"\n"
                 "#: level = 19\n"
                 "#\n"
                 "# Builds the thing.\n"
                 "\n"
                 "set -o errexit\n");
  auto spec = jobfile::load_job(job);
  CHECK(spec.name == "helios / build-trampoline");
  CHECK(spec.variety == "basic");
  CHECK(spec.target == std::optional<std::string>("helios-2.0"));
  CHECK(spec.enable);
  REQUIRE(spec.persist.size() == 1);
  const auto& p = spec.persist[0];
  CHECK(p.name.value == "cargo");
  CHECK(p.pos.str() == spec.file + ":25:4");
  CHECK(p.name.pos.str() == spec.file + ":26:11");
  REQUIRE(p.rules.size() == 2);
  CHECK(p.rules[1].value == "!~/.cargo/registry/src/**/*");
  CHECK(p.rules[1].pos.line == 29);
  CHECK(p.epoch.value == 3);
  CHECK(p.cache_key.value == "cargo-v1.85");
  CHECK(p.key_files.empty());
  CHECK(p.max_size == std::optional<uint64_t>(4ULL << 30));
  CHECK(p.share == jobfile::Share::branch);
  CHECK(p.level == std::optional<int>(19));
  CHECK(spec.warnings.empty());
}

TEST_CASE("disabled jobs, plain TOML and the sibling persist file", "[jobfile]") {
  util::TempDir dir;
  auto off = put(dir.path() / "off.sh", "#!/bin/bash\n#: name = \"off\"\n#: variety = \"basic\"\n#: enable = false\n");
  CHECK_FALSE(jobfile::load_job(off).enable);

  auto toml = put(dir.path() / "job.toml", "name = \"t\"\nvariety = \"basic\"\n[[persist]]\nname = \"n\"\n"
                                           "rules = [\"node_modules\",]\nepoch = 0\n");
  auto spec = jobfile::load_job(toml);
  REQUIRE(spec.persist.size() == 1);
  CHECK(spec.persist[0].pos.str() == toml.string() + ":3:1");

  auto job = put(dir.path() / ".github/buildomat/jobs/build.sh",
                 "#!/bin/bash\n#: name = \"b\"\n#: variety = \"basic\"\n" + k_stanza);
  auto sibling = put(dir.path() / ".github/buildomat/persist/build.toml",
                     "[[persist]]\nname = \"target\"\nrules = [\"target/**/*\"]\nepoch = 2\n");
  CHECK(jobfile::sibling_persist_file(job) == sibling);
  spec = jobfile::load_job(job);
  REQUIRE(spec.persist.size() == 2);
  CHECK(spec.persist_file == std::optional<std::string>(sibling.string()));
  CHECK(spec.persist[1].source_file == sibling.string());
  CHECK(spec.persist[1].name.pos.str() == sibling.string() + ":2:8");

  put(sibling, "[[persist]]\nname = \"cargo\"\nrules = [\"x\"]\nepoch = 2\n");
  auto errors = errors_of(job);
  CHECK_THAT(errors, Catch::Contains(sibling.string() + ":2:8: error:") && Catch::Contains("'cargo'"));
}

TEST_CASE("broken job files: every error at its line and column", "[jobfile]") {
  struct Case {
    const char* what;
    std::string script;
    std::string expected; // "line:col: error: ..." prefix of one diagnostic
  };
  const std::string head = "#!/bin/bash\n#: name = \"j\"\n#: variety = \"basic\"\n";
  const std::vector<Case> cases = {
      {"missing comma in an array", head + "#: output_rules = [\n#:   \"/a\"\n#:   \"/b\",\n#: ]\n",
       "6:"},
      {"duplicate key", head + "#: name = \"again\"\n", "4:"},
      {"unknown stanza key with a hint", head + k_stanza + "#: restore_key = [\"x\"]\n",
       "8:4: error: persist[0]: unknown key 'restore_key' in [[persist]]; did you mean "
       "'restore_keys'?"},
      {"missing epoch says why", head + "#: [[persist]]\n#: name = \"x\"\n#: rules = [\"a\"]\n",
       "4:4: error: persist[0].epoch is required: an integer you bump"},
      {"negative epoch",
       head + "#: [[persist]]\n#: name = \"x\"\n#: rules = [\"a\"]\n#: epoch = -1\n",
       "7:12: error: persist[0].epoch must be an integer >= 0"},
      {"epoch as a string",
       head + "#: [[persist]]\n#: name = \"x\"\n#: rules = [\"a\"]\n#: epoch = \"1\"\n",
       "7:12: error: persist[0].epoch must be an integer >= 0, not a string"},
      {"bad name",
       head + "#: [[persist]]\n#: name = \"Cargo Registry\"\n#: rules = [\"a\"]\n#: epoch = 1\n",
       "5:11: error: persist[0].name 'Cargo Registry' must match"},
      {"name starting with a dash",
       head + "#: [[persist]]\n#: name = \"-x\"\n#: rules = [\"a\"]\n#: epoch = 1\n",
       "5:11: error: persist[0].name '-x' must match"},
      {"name of 65 characters",
       head + "#: [[persist]]\n#: name = \"" + std::string(65, 'a') +
           "\"\n#: rules = [\"a\"]\n#: epoch = 1\n",
       "5:11: error: persist[0].name '" + std::string(65, 'a') + "' must match"},
      {"cache_key with a space", head + k_stanza + "#: cache_key = \"a b\"\n",
       "8:16: error: persist[0].cache_key 'a b' may hold only"},
      {"malformed rule points into the string",
       head + "#: [[persist]]\n#: name = \"x\"\n#: rules = [\"src/a**\"]\n#: epoch = 1\n",
       "6:19: error: persist[0].rules[0] 'src/a**':"},
      {"only exclusions",
       head + "#: [[persist]]\n#: name = \"x\"\n#: rules = [\"!a\"]\n#: epoch = 1\n",
       "6:12: error: persist[0].rules has only '!' rules"},
      {"bad size", head + k_stanza + "#: max_size = \"4 gigs\"\n",
       "8:15: error: persist[0].max_size must be a size"},
      {"size past a double's range", head + k_stanza + "#: max_size = \"1" + std::string(400, '0') + "\"\n",
       "8:15: error: persist[0].max_size must be a size"},
      {"level out of range", head + k_stanza + "#: level = 22\n",
       "8:12: error: persist[0].level must be a zstd level"},
      {"share misspelt", head + k_stanza + "#: share = \"repo\"\n",
       "8:12: error: persist[0].share must be \"repository\" or \"branch\""},
      {"enabled for enable", head + "#: enabled = false\n", "4:4: error:"},
      {"top-level key after a table header", head + k_stanza + "#: target = \"helios\"\n",
       "8:4: error: persist[0]: unknown key 'target' in [[persist]]; 'target' is a top-level key"},
      {"duplicate stanza names", head + k_stanza + k_stanza, "9:11: error:"},
      {"missing name", "#!/bin/bash\n#: variety = \"basic\"\n", "2:"},
      {"not UTF-8", head + "#: target = \"caf\xe9\"\n", "4:17: error: byte 0xe9 is not UTF-8"},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    util::TempDir dir;
    auto file = put(dir.path() / "job.sh", c.script);
    auto errors = errors_of(file);
    INFO(errors);
    CHECK_THAT(errors, Catch::Contains(file.string() + ":" + c.expected));
  }
}

TEST_CASE("files that are not job files", "[jobfile]") {
  util::TempDir dir;
  CHECK_THAT(errors_of(put(dir.path() / "empty.sh", "")), Catch::Contains("empty.sh:1:1: error:"));
  CHECK_THAT(errors_of(put(dir.path() / "job.yml", "name: x\n")), Catch::Contains("job.yml"));
  CHECK_THAT(errors_of(dir.path() / "absent.sh"), Catch::Contains("absent.sh"));
  // 10 MB of comment after the frontmatter is read, and the error is still placed exactly.
  std::string big = "#!/bin/bash\n#: name = \"big\"\n#: variety = 1\n";
  big.reserve(10u << 20);
  while (big.size() < (10u << 20)) {
    big += "echo 'padding padding padding padding padding padding padding padding'\n";
  }
  CHECK_THAT(errors_of(put(dir.path() / "big.sh", big)), Catch::Contains("big.sh:3:"));
}

TEST_CASE("did you mean", "[jobfile]") {
  const std::vector<std::string> keys = {"restore_keys", "key_files", "epoch", "cache_key"};
  CHECK(jobfile::closest("restore_key", keys) == std::optional<std::string>("restore_keys"));
  CHECK(jobfile::closest("epoc", keys) == std::optional<std::string>("epoch"));
  CHECK(jobfile::closest("cachekey", keys) == std::optional<std::string>("cache_key"));
  CHECK_FALSE(jobfile::closest("zebra", keys));
}

TEST_CASE("nesting past the limit is refused before parsing, at the place it is passed",
          "[jobfile]") {
  util::TempDir dir;
  const std::string head = "name = \"j\"\nvariety = \"basic\"\n";
  struct Case {
    const char* what;
    std::string toml;
    std::string position; // line:col where the limit is passed
  };
  const std::vector<Case> cases = {
      {"arrays", head + "x = " + std::string(10000, '[') + std::string(10000, ']') + "\n",
       ":3:105:"},
      {"inline tables", head + "x = " + [] {
         std::string s;
         for (int i = 0; i < 10000; ++i) {
           s += "{a=";
         }
         return s + "1" + std::string(10000, '}');
       }() + "\n",
       ":3:305:"},
      {"dotted keys", head + [] {
         std::string s;
         for (int i = 0; i < 20000; ++i) {
           s += "a.";
         }
         return s + "b = 1\n";
       }(),
       ":3:202:"},
      {"a table header", head + "[" + [] {
         std::string s;
         for (int i = 0; i < 20000; ++i) {
           s += "a.";
         }
         return s + "b]\n";
       }(),
       ":3:201:"},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    auto file = put(dir.path() / "deep.toml", c.toml);
    auto errors = errors_of(file);
    CHECK_THAT(errors, Catch::Contains(file.string() + c.position + " error:") &&
                           Catch::Contains("nested deeper than 100"));
  }
  // In a script, the position is the script's.
  auto script = put(dir.path() / "deep.sh", "#!/bin/bash\n#: name = \"j\"\n#: variety = \"b\"\n#: x = " +
                                                std::string(5000, '[') + std::string(5000, ']') +
                                                "\n");
  CHECK_THAT(errors_of(script), Catch::Contains(script.string() + ":4:108: error:"));
  // Brackets in strings and comments do not count; what real files nest still loads.
  auto fine = put(dir.path() / "fine.toml",
                  head + "s = \"" + std::string(500, '[') + "\"\nl = '" + std::string(500, '{') +
                      "'\nm = \"\"\"\n" + std::string(500, '[') + "\n\"\"\"\n# " +
                      std::string(500, '[') + "\nx = [[[{a.b.c = [1.5, 2.5]}]]]\n[t.u.v]\nw = 1\n");
  CHECK(errors_of(fine).empty());
}

// The sanitizer tree runs the same code at -O0 under AddressSanitizer, thirty times slower.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool k_sanitized = true;
#elif defined(__has_feature)
constexpr bool k_sanitized = __has_feature(address_sanitizer);
#else
constexpr bool k_sanitized = false;
#endif

TEST_CASE("loading is linear in the number of stanzas", "[jobfile]") {
  // 20,000 stanzas: quadratic loading (toml11 counts lines from the start of the file for
  // every position asked) took minutes here and overran the test's timeout. The sanitizer
  // tree loads 2,000 through the same code: the memory checks need no more, and 20,000 took
  // it 110 s of CPU for what the normal tree proves in 4.
  util::TempDir dir;
  std::string text = "name = \"j\"\nvariety = \"basic\"\n";
  constexpr int k_stanzas = k_sanitized ? 2000 : 20000;
  for (int i = 0; i < k_stanzas; ++i) {
    text += "[[persist]]\nname = \"s" + std::to_string(i) + "\"\nrules = [\"a\"]\nepoch = 1\n";
  }
  auto file = put(dir.path() / "many.toml", text);
  auto job = jobfile::load_job(file);
  REQUIRE(job.persist.size() == k_stanzas);
  CHECK(job.persist.back().name.pos.str() == file.string() + ":" +
                                                 std::to_string(3 + 4 * (k_stanzas - 1) + 1) +
                                                 ":8");
  // A duplicate at the end is still found, and placed.
  put(file, text + "[[persist]]\nname = \"s7\"\nrules = [\"a\"]\nepoch = 1\n");
  CHECK_THAT(errors_of(file), Catch::Contains(":" + std::to_string(3 + 4 * k_stanzas + 1) +
                                              ":8: error: persist name 's7' is used twice"));
}

TEST_CASE("job files that are not regular files are refused without blocking", "[jobfile]") {
  util::TempDir dir;
  auto fifo = dir.path() / "job.toml";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK_THAT(errors_of(fifo), Catch::Contains("a fifo"));
  fs::create_symlink("/dev/zero", dir.path() / "zero.sh");
  CHECK_THAT(errors_of(dir.path() / "zero.sh"), Catch::Contains("a character device"));
  fs::create_directory(dir.path() / "dir.toml");
  CHECK_THAT(errors_of(dir.path() / "dir.toml"), Catch::Contains("a directory"));
  // Past the size bound: refused, not read whole.
  std::string huge = "name = \"j\"\nvariety = \"basic\"\n#";
  huge.resize((16u << 20) + 1, 'x');
  CHECK_THAT(errors_of(put(dir.path() / "huge.toml", huge)), Catch::Contains("larger than"));
  // The job file the agent names may be a symlink to a regular file.
  auto real = put(dir.path() / "real.toml", "name = \"j\"\nvariety = \"basic\"\n");
  fs::create_symlink(real, dir.path() / "link.toml");
  CHECK(jobfile::load_job(dir.path() / "link.toml").name == "j");
}

TEST_CASE("a sibling persist file that is a symlink is refused; a named one is followed",
          "[jobfile]") {
  util::TempDir dir;
  auto job = put(dir.path() / ".github/buildomat/jobs/build.sh",
                 "#!/bin/bash\n#: name = \"b\"\n#: variety = \"basic\"\n");
  auto elsewhere = put(dir.path() / "elsewhere.toml",
                       "[[persist]]\nname = \"t\"\nrules = [\"target\"]\nepoch = 1\n");
  auto sibling = jobfile::sibling_persist_file(job);
  fs::create_directories(sibling.parent_path());
  fs::create_symlink(elsewhere, sibling);
  CHECK_THAT(errors_of(job), Catch::Contains(sibling.string()) &&
                                 Catch::Contains("a symbolic link"));
  auto named = jobfile::load_job(job, sibling);
  REQUIRE(named.persist.size() == 1);
  // A dangling one is not mistaken for no sibling at all.
  fs::remove(sibling);
  fs::create_symlink(dir.path() / "absent.toml", sibling);
  CHECK_THAT(errors_of(job), Catch::Contains("a symbolic link"));
}
