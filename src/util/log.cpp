#include "util/log.hpp"

#include <atomic>
#include <cstdio>
#include <mutex>
#include <string>

namespace ephemera::util {

std::string printable(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (u < 0x20 || u == 0x7f) {
      out += fmt::format("\\x{:02x}", u);
    } else {
      out += c;
    }
  }
  return out;
}

} // namespace ephemera::util

namespace ephemera::util::log {

namespace {
std::atomic<Level> g_level{Level::normal};
std::mutex g_mutex;
} // namespace

void set_level(Level level) {
  g_level = level;
}

Level level() {
  return g_level;
}

void write(std::string_view severity, std::string_view message) {
  std::string line = "ephemera: ";
  line += severity;
  line += message;
  line += '\n';
  std::lock_guard lock(g_mutex);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

} // namespace ephemera::util::log
