#include "util/units.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

using namespace ephemera::util;

namespace {

struct SizeCase {
  std::string text;
  std::optional<uint64_t> bytes;
};

} // namespace

TEST_CASE("sizes: the units README lists, decimal and binary, and nothing else", "[util]") {
  const std::vector<SizeCase> cases = {
      {"4GiB", 4ULL << 30},
      {"500MB", 500000000},
      {"10k", 10000},
      {"10kB", 10000},
      {"10KiB", 10240},
      {"1024", 1024},
      {"7B", 7},
      {"1.5MiB", 1572864},
      {"2M", 2000000},
      {"3g", 3000000000},
      {"1T", 1000000000000},
      {"1TiB", 1ULL << 40},
      {" 2 kb\t", 2000},
      {"3\tMiB", 3ULL << 20},
      {"0.5k", 500},
      {"1.0005k", 1001}, // rounded to a whole byte
      // Past 2^63 (where a signed rounding would wrap) and up to 2^64 - 1.
      {"10000000TB", 10000000000000000000ULL},
      {"16777215TiB", 16777215ULL << 40},
      {"18446744073709551615", std::nullopt}, // a double rounds it to 2^64
      {"16777216TiB", std::nullopt},          // 2^64
      {"99999999TiB", std::nullopt},
      {"1" + std::string(400, '0'), std::nullopt}, // past a double: refused, not thrown
      {"4 gigs", std::nullopt},
      {"", std::nullopt},
      {" ", std::nullopt},
      {"-1", std::nullopt},
      {"+1", std::nullopt},
      {"1.", std::nullopt},
      {".5", std::nullopt},
      {"1.5.2", std::nullopt},
      {"1 2", std::nullopt},
      {"MiB", std::nullopt},
      {"1 Mi B", std::nullopt},
      {"1e3", std::nullopt},
      {"1PB", std::nullopt},
      {"0x10", std::nullopt},
      {"inf", std::nullopt},
      {"1,5MiB", std::nullopt},
  };
  for (const auto& c : cases) {
    INFO("'" << c.text << "'");
    CHECK(parse_size(c.text) == c.bytes);
  }
}

TEST_CASE("decimal prefixes and durations", "[util]") {
  size_t end = 0;
  CHECK(parse_decimal_prefix("30d", end) == std::optional<double>(30));
  CHECK(end == 2);
  CHECK(parse_decimal_prefix("1.25", end) == std::optional<double>(1.25));
  CHECK(end == 4);
  CHECK_FALSE(parse_decimal_prefix("1.h", end));
  CHECK_FALSE(parse_decimal_prefix(" 1", end));
  CHECK_FALSE(parse_decimal_prefix("", end));
  CHECK_FALSE(parse_decimal_prefix("-1", end));

  CHECK(parse_duration("30") == std::optional<double>(30));
  CHECK(parse_duration("30s") == std::optional<double>(30));
  CHECK(parse_duration("1.5h") == std::optional<double>(5400));
  CHECK(parse_duration("2d") == std::optional<double>(172800));
  CHECK(parse_duration("1w") == std::optional<double>(604800));
  CHECK(parse_duration("0m") == std::optional<double>(0));
  for (const char* bad : {"", "h", "1 h", "1H", "1y", "1hh", "-1h", "1.h", " 1h", "1" "e3"}) {
    INFO("'" << bad << "'");
    CHECK_FALSE(parse_duration(bad));
  }
  CHECK_FALSE(parse_duration("1" + std::string(400, '0')));
}

TEST_CASE("integers: the whole text, decimal, within the caller's range", "[util]") {
  constexpr int64_t max = std::numeric_limits<int64_t>::max();
  CHECK(parse_integer("0", 0, max) == std::optional<int64_t>(0));
  CHECK(parse_integer("42", 0, max) == std::optional<int64_t>(42));
  CHECK(parse_integer("007", 0, max) == std::optional<int64_t>(7));
  CHECK(parse_integer("9223372036854775807", 0, max) == std::optional<int64_t>(max));
  CHECK(parse_integer("-3", -10, 10) == std::optional<int64_t>(-3));
  CHECK(parse_integer("2147483647", INT32_MIN, INT32_MAX) == std::optional<int64_t>(INT32_MAX));
  for (const char* bad : {"", " 1", "1 ", "+1", "1.0", "1e3", "0x1", "one", "-1", "-0x1"}) {
    INFO("'" << bad << "'");
    CHECK_FALSE(parse_integer(bad, 0, max));
  }
  CHECK_FALSE(parse_integer("9223372036854775808", 0, max)); // past int64: refused, not clamped
  CHECK_FALSE(parse_integer("2147483648", INT32_MIN, INT32_MAX));
  CHECK_FALSE(parse_integer("11", -10, 10));
  CHECK_FALSE(parse_integer("-11", -10, 10));
}
