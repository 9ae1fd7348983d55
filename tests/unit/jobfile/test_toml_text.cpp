#include "jobfile/toml_text.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace ephemera;

TEST_CASE("TOML text checks before parsing: UTF-8 and nesting", "[jobfile]") {
  CHECK_FALSE(jobfile::first_invalid_utf8("name = \"café ☃\"\n"));
  // Columns count characters: the é before the bad byte is one column, not two.
  auto bad = jobfile::first_invalid_utf8("a = 1\nb = \"é\xff\"\n");
  REQUIRE(bad);
  CHECK(bad->line == 2);
  CHECK(bad->column == 7);
  CHECK(bad->byte == 0xff);
  CHECK(jobfile::first_invalid_utf8("\xc3")); // a sequence cut at the end

  std::string deep = "x = " + std::string(jobfile::k_max_toml_nesting, '[') +
                     std::string(jobfile::k_max_toml_nesting, ']') + "\n";
  CHECK_FALSE(jobfile::too_deep(deep));
  std::string deeper = "x = " + std::string(jobfile::k_max_toml_nesting + 1, '[');
  CHECK(jobfile::too_deep(deeper) == std::optional<size_t>(4 + jobfile::k_max_toml_nesting));
  // Inside strings and comments brackets do not nest.
  CHECK_FALSE(jobfile::too_deep("x = \"" + std::string(500, '[') + "\" # " + std::string(500, '{')));

  CHECK(jobfile::toml_message("[error] toml::parse_key: bad key\n --> job.toml\n") ==
        "TOML: bad key");
}
