#include "util/temp_name.hpp"

#include <fmt/format.h>

#include <cstdint>
#include <random>

namespace ephemera::util {

namespace {

constexpr std::string_view k_prefix = ".ephemera-";
constexpr size_t k_token_digits = 16;
constexpr size_t k_count_digits = 8;
constexpr size_t k_size = k_prefix.size() + k_token_digits + 1 + k_count_digits;

bool lower_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

} // namespace

std::string temp_name() {
  thread_local const uint64_t token = std::mt19937_64{std::random_device{}()}();
  thread_local uint32_t count = 0;
  return fmt::format("{}{:016x}-{:08x}", k_prefix, token, count++);
}

bool is_temp_name(std::string_view name) {
  if (name.size() != k_size || name.substr(0, k_prefix.size()) != k_prefix) {
    return false;
  }
  const size_t dash = k_prefix.size() + k_token_digits;
  for (size_t i = k_prefix.size(); i < name.size(); ++i) {
    if (i == dash ? name[i] != '-' : !lower_hex(name[i])) {
      return false;
    }
  }
  return true;
}

std::filesystem::path temp_name_beside(const std::filesystem::path& target) {
  return target.parent_path() / temp_name();
}

} // namespace ephemera::util
