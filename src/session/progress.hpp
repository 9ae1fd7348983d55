#pragma once

#include "archive/archive.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

namespace ephemera::session {

// Where a long piece of work stands, for its progress line.
struct ProgressState {
  std::string what;   // "restoring 'deps': downloading"
  uint64_t bytes = 0; // done so far
  uint64_t total = 0; // of bytes, when known (0: unknown)
  uint64_t files = 0; // done so far (0: not counted, as for a download)
  double seconds = 0; // since the work started
};

// The line for a terminal (bar = true: "[=====>    ] 45%", redrawn in place, cut to width
// columns) or a log (plain words): bytes done (of the total, when known), files, the rate
// and, when the total is known, the time left.
std::string progress_text(const ProgressState& state, bool bar, int width);

// Progress of one transfer, pack or unpack on stderr, the one implementation of every phase:
// nothing for the first two seconds (most work is over by then); after that, on a terminal,
// a live bar redrawn with \r at most 4 times a second, and in a log (stderr not a tty) a
// plain line every five seconds. finish() clears the live bar before the summary line is
// printed. Updates may come from any thread.
class ProgressLine {
public:
  // total: the bytes the work will reach, when known (0: unknown).
  explicit ProgressLine(std::string what, uint64_t total = 0);
  ~ProgressLine() { finish(); }
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  // For pack and unpack (archive::Progress); valid while this line lives.
  archive::ProgressFn fn();
  // For a transfer: told the bytes moved so far; valid while this line lives.
  std::function<void(uint64_t)> bytes_fn();
  void update(uint64_t bytes, uint64_t files);
  void finish();

  // How long the work may run before a line shows, and how often a log gets one.
  static constexpr double k_quiet_seconds = 2;
  static constexpr double k_log_every = 5;

private:
  std::mutex m_mutex;
  std::string m_what;
  uint64_t m_total;
  bool m_tty;
  bool m_live = false;
  std::chrono::steady_clock::time_point m_start = std::chrono::steady_clock::now();
  double m_last_drawn = -1;
  double m_last_logged = 0;
};

// "1234 files, 500.0 MiB, 120.0 MiB compressed, 3.10 s, 161.3 MB/s"
std::string cost_line(uint64_t files, uint64_t bytes, uint64_t compressed, double seconds);

double seconds_since(std::chrono::steady_clock::time_point start);

} // namespace ephemera::session
