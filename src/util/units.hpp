#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

// Numbers, sizes and durations as people write them, for every reader of them: the job
// file's TOML (max_size), the in-job commands' arguments (--epoch) and the operator's flags
// (gc --max-bytes, --max-age, --grace). Each accepts exactly the forms README lists and
// nothing else (no sign where none makes sense, no trailing text, no locale); nullopt means
// malformed, and the caller says where.
namespace ephemera::util {

// A decimal integer, the whole of text ("-" allowed, no "+", no spaces), within
// [min, max].
std::optional<int64_t> parse_integer(std::string_view text, int64_t min, int64_t max);

// The decimal number text starts with, [0-9]+(.[0-9]+)?, and in end where it stops;
// nullopt when text does not start with one.
std::optional<double> parse_decimal_prefix(std::string_view text, size_t& end);

// Bytes: NUMBER[.FRACTION], optional spaces, then a unit, any case: none or B; k, kB; KiB;
// M, MB; MiB; G, GB; GiB; T, TB; TiB (k, M, G, T decimal, the -iB ones binary). Spaces
// around are allowed. Rounded to a whole byte; nullopt past 2^64 - 1.
std::optional<uint64_t> parse_size(std::string_view text);

// Seconds: NUMBER[.FRACTION] then none, s, m, h, d or w, no spaces ("30d", "1.5h").
std::optional<double> parse_duration(std::string_view text);

// "1.2 GiB", "512 B": sizes for people, in binary units, one decimal past bytes.
std::string human_bytes(uint64_t bytes);

} // namespace ephemera::util
