#include "session/progress.hpp"

#include "report/report.hpp"
#include "util/log.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <sys/ioctl.h>
#include <unistd.h>

namespace ephemera::session {

namespace {

// "1:05", "12:00:00": a time left for people.
std::string clock_text(double seconds) {
  auto s = static_cast<uint64_t>(std::max(0.0, seconds) + 0.5);
  if (s >= 3600) {
    return fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
  }
  return fmt::format("{}:{:02}", s / 60, s % 60);
}

int terminal_width() {
  struct winsize ws {};
  if (::ioctl(2, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
    return ws.ws_col;
  }
  return 80;
}

} // namespace

std::string progress_text(const ProgressState& s, bool bar, int width) {
  double rate = s.seconds > 0 ? static_cast<double>(s.bytes) / s.seconds : 0;
  bool known = s.total > 0 && s.bytes <= s.total;
  double fraction = known ? static_cast<double>(s.bytes) / static_cast<double>(s.total) : 0;
  std::string amount =
      known ? fmt::format("{} of {}", report::human_bytes(s.bytes), report::human_bytes(s.total))
            : report::human_bytes(s.bytes);
  std::string files = s.files > 0 ? fmt::format(", {} files", s.files) : "";
  std::string left;
  if (known && rate > 0) {
    left = fmt::format(", {} left", clock_text(static_cast<double>(s.total - s.bytes) / rate));
  }
  std::string rate_text =
      rate >= 1e6 ? fmt::format("{:.1f} MB/s", rate / 1e6) : fmt::format("{:.1f} kB/s", rate / 1e3);
  if (!bar) {
    return fmt::format("ephemera: {}: {}{}{}, {}{}", s.what, amount,
                       known ? fmt::format(" ({:.0f}%)", fraction * 100) : "", files, rate_text,
                       left);
  }
  // A terminal line must fit its width (wider, it would wrap and \r would redraw only its
  // last row): the numbers stay, the gauge takes the room left (none below 5 cells), the file
  // count goes first, then the label is cut.
  size_t room = width > 1 ? static_cast<size_t>(width - 1) : 200;
  std::string head = s.what + " ";
  std::string eta = left.empty() ? "" : " " + left.substr(2); // ", 0:05 left" -> " 0:05 left"
  std::string tail =
      known ? fmt::format("{:3.0f}% {}/{} {}{}", fraction * 100, report::human_bytes(s.bytes),
                          report::human_bytes(s.total), rate_text, eta)
            : fmt::format("{} {}", amount, rate_text);
  if (std::string f = fmt::format(" {} files", s.files);
      s.files > 0 && head.size() + tail.size() + f.size() + 8 <= room) {
    tail += f;
  }
  std::string gauge;
  if (known && head.size() + tail.size() + 3 + 5 <= room) {
    size_t cells = std::min<size_t>(30, room - head.size() - tail.size() - 3);
    auto full = static_cast<size_t>(fraction * static_cast<double>(cells));
    gauge = "[" + std::string(full, '=') +
            (full < cells ? ">" + std::string(cells - full - 1, ' ') : "") + "] ";
  }
  std::string line = head + gauge + tail;
  if (line.size() > room) {
    line = head.substr(0, head.size() - std::min(head.size(), line.size() - room)) + tail;
    line.resize(std::min(line.size(), room));
  }
  return line;
}

ProgressLine::ProgressLine(std::string what, uint64_t total)
    : m_what(std::move(what)), m_total(total), m_tty(::isatty(2) == 1) {}

archive::ProgressFn ProgressLine::fn() {
  return [this](const archive::Progress& p) { update(p.bytes, p.files); };
}

std::function<void(uint64_t)> ProgressLine::bytes_fn() {
  return [this](uint64_t bytes) { update(bytes, 0); };
}

void ProgressLine::finish() {
  std::lock_guard lock(m_mutex);
  if (m_live) {
    std::fprintf(stderr, "\r\033[K");
    m_live = false;
  }
}

void ProgressLine::update(uint64_t bytes, uint64_t files) {
  if (util::log::level() < util::log::Level::normal) {
    return;
  }
  std::lock_guard lock(m_mutex);
  double seconds = seconds_since(m_start);
  if (seconds < k_quiet_seconds) {
    return;
  }
  ProgressState state{m_what, bytes, m_total, files, seconds};
  if (m_tty) {
    if (seconds - m_last_drawn < 0.25) {
      return;
    }
    m_last_drawn = seconds;
    std::fprintf(stderr, "\r%s\033[K", progress_text(state, true, terminal_width()).c_str());
    m_live = true;
  } else if (m_last_logged == 0 || seconds - m_last_logged >= k_log_every) {
    m_last_logged = seconds;
    std::fprintf(stderr, "%s\n", progress_text(state, false, 0).c_str());
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
