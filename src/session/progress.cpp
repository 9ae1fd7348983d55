#include "session/progress.hpp"

#include "report/report.hpp"
#include "util/log.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <unistd.h>

namespace ephemera::session {

ProgressLine::ProgressLine(std::string what) : m_what(std::move(what)), m_tty(::isatty(2) == 1) {}

archive::ProgressFn ProgressLine::fn() {
  return [this](const archive::Progress& p) { show(p); };
}

void ProgressLine::finish() {
  if (m_live) {
    std::fprintf(stderr, "\r\033[K");
    m_live = false;
  }
}

void ProgressLine::show(const archive::Progress& p) {
  if (util::log::level() < util::log::Level::normal) {
    return;
  }
  double mbs = p.seconds > 0 ? static_cast<double>(p.bytes) / 1e6 / p.seconds : 0;
  std::string line = fmt::format("ephemera: {}: {} files, {:.1f} MB, {:.1f} MB/s", m_what, p.files,
                                 static_cast<double>(p.bytes) / 1e6, mbs);
  if (m_tty) {
    std::fprintf(stderr, "\r%s\033[K", line.c_str());
    m_live = true;
  } else if (p.seconds - m_last_logged >= 5) {
    m_last_logged = p.seconds;
    std::fprintf(stderr, "%s\n", line.c_str());
  }
}

std::string cost_line(uint64_t files, uint64_t bytes, uint64_t compressed, double seconds) {
  double rate = seconds > 0 ? static_cast<double>(bytes) / 1e6 / seconds : 0;
  return fmt::format("{} files, {}, {} compressed, {:.2f} s, {:.1f} MB/s", files,
                     report::human_bytes(bytes), report::human_bytes(compressed), seconds, rate);
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

} // namespace ephemera::session
