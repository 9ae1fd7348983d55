#include "util/units.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string>
#include <system_error>
#include <utility>

namespace ephemera::util {

namespace {

bool space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}
bool digit(char c) {
  return c >= '0' && c <= '9';
}
bool letter(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

} // namespace

std::optional<int64_t> parse_integer(std::string_view text, int64_t min, int64_t max) {
  int64_t value = 0;
  const char* end = text.data() + text.size();
  auto [stop, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || stop != end || value < min || value > max) {
    return std::nullopt;
  }
  return value;
}

std::optional<double> parse_decimal_prefix(std::string_view text, size_t& end) {
  size_t i = 0;
  auto digits = [&] {
    size_t from = i;
    while (i < text.size() && digit(text[i])) {
      ++i;
    }
    return i > from;
  };
  if (!digits()) {
    return std::nullopt;
  }
  if (i < text.size() && text[i] == '.') {
    ++i;
    if (!digits()) {
      return std::nullopt;
    }
  }
  // from_chars, not stod: the same in every locale, and no exception for a long number.
  double value = 0;
  if (std::from_chars(text.data(), text.data() + i, value, std::chars_format::fixed).ec !=
      std::errc()) {
    return std::nullopt; // past a double's range
  }
  end = i;
  return value;
}

std::optional<uint64_t> parse_size(std::string_view text) {
  while (!text.empty() && space(text.front())) {
    text.remove_prefix(1);
  }
  while (!text.empty() && space(text.back())) {
    text.remove_suffix(1);
  }
  size_t i = 0;
  auto number = parse_decimal_prefix(text, i);
  if (!number) {
    return std::nullopt;
  }
  while (i < text.size() && space(text[i])) {
    ++i;
  }
  std::string unit(text.substr(i));
  if (!std::all_of(unit.begin(), unit.end(), letter)) {
    return std::nullopt;
  }
  std::transform(unit.begin(), unit.end(), unit.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const std::pair<std::string_view, double> units[] = {{"", 1},
                                                       {"b", 1},
                                                       {"k", 1e3},
                                                       {"kb", 1e3},
                                                       {"kib", 1024.0},
                                                       {"m", 1e6},
                                                       {"mb", 1e6},
                                                       {"mib", 1048576.0},
                                                       {"g", 1e9},
                                                       {"gb", 1e9},
                                                       {"gib", 1073741824.0},
                                                       {"t", 1e12},
                                                       {"tb", 1e12},
                                                       {"tib", 1099511627776.0}};
  for (const auto& [name, factor] : units) {
    if (unit == name) {
      // 2^64 is exact as a double; llround would stop at 2^63.
      double bytes = std::round(*number * factor);
      if (bytes >= 18446744073709551616.0) {
        return std::nullopt;
      }
      return static_cast<uint64_t>(bytes);
    }
  }
  return std::nullopt;
}

std::optional<double> parse_duration(std::string_view text) {
  size_t end = 0;
  auto v = parse_decimal_prefix(text, end);
  if (!v) {
    return std::nullopt;
  }
  const std::pair<std::string_view, double> units[] = {{"", 1},     {"s", 1},     {"m", 60},
                                                       {"h", 3600}, {"d", 86400}, {"w", 604800}};
  for (const auto& [unit, factor] : units) {
    if (text.substr(end) == unit) {
      return *v * factor;
    }
  }
  return std::nullopt;
}

std::string human_bytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", v, units[u]);
}

} // namespace ephemera::util
