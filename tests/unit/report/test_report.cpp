// The job's report: its JSON words, what a report.json the job rewrote can and cannot do,
// and the table the job log shows.
#include "report/report.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"

#include <catch2/catch.hpp>

#include <fstream>

using namespace ephemera;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

report::Entry hit_by_prefix() {
  report::Entry e;
  e.phase = report::Phase::pre;
  e.name = "deps";
  e.acted = true;
  e.reason = "pull_request on branch 'feature'";
  e.result = report::Result::hit;
  e.key_wanted = "deps-0123456789abcdef";
  e.looked_for = {"deps-0123456789abcdef", "deps-"};
  e.step = report::Step::prefix;
  e.prefix = "deps-";
  e.branch_match = "other";
  report::ArchiveInfo a;
  a.link = "file:///store/v1/x.tar.zst";
  a.sha256 = std::string(64, 'a');
  a.compressed_bytes = 2048;
  a.unpacked_bytes = 3 << 20;
  a.files = 12;
  a.key = "deps-fedcba9876543210";
  a.created = "2026-12-01T10:00:00.000000Z";
  a.job_id = "job-1";
  a.commit = "feedface";
  a.branch = "main";
  a.trusted = false;
  e.archive = a;
  e.seconds = 1.5;
  return e;
}

} // namespace

TEST_CASE("an entry's phase, result and step are the format's words", "[report]") {
  auto j = report::to_json(hit_by_prefix());
  CHECK(j["phase"] == "pre");
  CHECK(j["result"] == "hit");
  CHECK(j["step"] == "prefix");
  report::Entry miss;
  miss.phase = report::Phase::persist;
  miss.result = report::Result::too_large;
  auto m = report::to_json(miss);
  CHECK(m["phase"] == "persist");
  CHECK(m["result"] == "too_large");
  CHECK(m["step"] == "");
  CHECK(m["archive"].is_null());
  // Every word reads back as the value it was written from.
  for (auto r : {report::Result::hit, report::Result::miss, report::Result::saved,
                 report::Result::unchanged, report::Result::skipped, report::Result::too_large,
                 report::Result::failed, report::Result::disabled, report::Result::nominated}) {
    CHECK(report::parse_result(report::to_string(r)) == r);
  }
  for (auto p :
       {report::Phase::pre, report::Phase::post, report::Phase::restore, report::Phase::persist}) {
    CHECK(report::parse_phase(report::to_string(p)) == p);
  }
  CHECK_FALSE(report::parse_result("Hit"));
  CHECK_FALSE(report::parse_phase(""));
  CHECK(report::parse_step("") == report::Step::none);
}

TEST_CASE("a report reads back as it was written", "[report]") {
  report::Report r;
  r.job = json{{"name", "build"}, {"file", "job.sh"}};
  r.store = "file:///store";
  r.entries = {hit_by_prefix()};
  auto back = report::report_from_json(report::to_json(r));
  CHECK(report::to_json(back) == report::to_json(r));
  REQUIRE(back.entries.size() == 1);
  CHECK(back.entries[0].step == report::Step::prefix);
  CHECK(back.entries[0].archive->trusted == false);
}

TEST_CASE("an entry with a word the format does not have is refused, naming it", "[report]") {
  auto j = report::to_json(report::Report{});
  auto entry = report::to_json(hit_by_prefix());
  for (const char* field : {"phase", "result", "step"}) {
    auto bad = entry;
    bad[field] = "bogus\x1b[2J";
    j["entries"] = json::array({entry, bad});
    INFO(field);
    try {
      report::report_from_json(j);
      FAIL("accepted");
    } catch (const util::Error& e) {
      CHECK_THAT(e.what(),
                 Catch::StartsWith(std::string("entry 1: ") + field + " 'bogus\\x1b[2J'"));
    }
  }
  auto bad = entry;
  bad["phase"] = 7;
  j["entries"] = json::array({bad});
  CHECK_THROWS_AS(report::report_from_json(j), util::Error);
}

TEST_CASE("append adds to the report, and replaces one it cannot read with a warning", "[report]") {
  util::TempDir dir;
  json job{{"name", "build"}};
  CHECK_FALSE(report::append(dir.path(), job, "file:///s", {hit_by_prefix()}));
  CHECK_FALSE(report::append(dir.path(), job, "file:///s", {hit_by_prefix()}));
  CHECK(report::load(dir.path()).entries.size() == 2);

  std::ofstream(report::file_in(dir.path())) << R"({"entries": [{"phase": "later"}]})";
  CHECK_THROWS_WITH(report::load(dir.path()),
                    Catch::Contains("not a valid report") && Catch::Contains("phase 'later'"));
  auto warning = report::append(dir.path(), job, "file:///s", {hit_by_prefix()});
  REQUIRE(warning);
  CHECK_THAT(*warning, Catch::Contains("replaced by a new report"));
  CHECK(report::load(dir.path()).entries.size() == 1);

  // Never read or written through a symlink: the file it names is left alone.
  fs::path elsewhere = dir.path() / "elsewhere.json";
  std::ofstream(elsewhere) << "keep";
  fs::remove(report::file_in(dir.path()));
  fs::create_symlink(elsewhere, report::file_in(dir.path()));
  CHECK_THROWS_AS(report::load(dir.path()), util::Error);
  report::append(dir.path(), job, "file:///s", {hit_by_prefix()});
  CHECK(util::read_file(elsewhere) == "keep");
}

TEST_CASE("the table says which step hit, what a miss looked for, and escapes", "[report]") {
  report::Report r;
  r.job = json{{"name", "build\x1b[31m"}, {"file", "job.sh"}};
  r.entries = {hit_by_prefix()};
  report::Entry miss;
  miss.phase = report::Phase::restore;
  miss.name = "tools";
  miss.result = report::Result::miss;
  miss.key_wanted = "t1";
  miss.looked_for = {"t1", "t", "x"};
  miss.warnings = {"line one\nforged: line"};
  r.entries.push_back(miss);
  auto text = report::render(r);
  CHECK_THAT(text, Catch::Contains("job 'build\\x1b[31m' (job.sh)"));
  CHECK_THAT(text, Catch::Contains("pre      deps                     hit (prefix 'deps-', other "
                                   "branch)"));
  CHECK_THAT(text, Catch::Contains("untrusted"));
  CHECK_THAT(text, Catch::Contains("restore  tools                    miss"));
  CHECK_THAT(text, Catch::Contains("key wanted: 't1', then prefixes 't' 'x'"));
  CHECK_THAT(text, Catch::Contains("warning: line one\\nforged: line"));
  CHECK(report::render(report::Report{}) == "nothing restored or saved yet\n");
}

TEST_CASE("sizes for people", "[report]") {
  CHECK(report::human_bytes(0) == "0 B");
  CHECK(report::human_bytes(1023) == "1023 B");
  CHECK(report::human_bytes(1024) == "1.0 KiB");
  CHECK(report::human_bytes(3 << 20) == "3.0 MiB");
  CHECK(report::human_bytes(UINT64_MAX) == "16777216.0 TiB");
}

TEST_CASE("a content-addressed save's entry says how to export it, quoted for a shell",
          "[report]") {
  report::Report r;
  r.store = "/var/cache/it's here";
  r.entries = {hit_by_prefix()};
  CHECK_THAT(report::render(r), !Catch::Contains("export:"));
  std::string link = "file:///var/cache/it's here/cas1/acme~2Fw/~/deps/trusted/index/" +
                     std::string(64, 'b') + ".idx";
  r.entries[0].archive->link = link;
  CHECK(report::content_addressed_link(link));
  CHECK_FALSE(report::content_addressed_link("file:///store/v1/cas1/x.tar.zst"));
  CHECK_THAT(report::render(r),
             Catch::Contains("export: ephemera export --store '/var/cache/it'\"'\"'s here' "
                             "'file:///var/cache/it'\"'\"'s here/cas1/"));
  CHECK(report::export_command("s3://b/p", "abc", "o.tar.zst") ==
        "ephemera export --store 's3://b/p' 'abc' 'o.tar.zst'");
}

TEST_CASE("the summary line counts the bytes each hit fetched and each save uploaded",
          "[report]") {
  // A content-addressed hit: its archive is the index (400 bytes), its restore read 3 MiB of
  // packs too; a save that uploaded 2 KiB of new packs and index on a state of 5 MiB.
  report::Entry hit;
  hit.result = report::Result::hit;
  hit.archive = report::ArchiveInfo{};
  hit.archive->compressed_bytes = 400;
  hit.archive->unpacked_bytes = 8 << 20;
  hit.moved_bytes = (3 << 20) + 400;
  report::Entry saved = hit;
  saved.result = report::Result::saved;
  saved.moved_bytes = 2 << 10;
  report::Entry missed;
  missed.result = report::Result::miss;
  missed.moved_bytes = 1 << 30; // a candidate passed over: nothing of it counts
  auto line = report::summary_line("pre", {hit, saved, missed}, 1.5);
  CHECK_THAT(line, Catch::Contains("1 hit, 1 miss, 1 save; 16.0 MiB (3.0 MiB compressed)"));
}
