#pragma once

#include "archive/archive.hpp"

#include <chrono>
#include <cstdint>
#include <string>

namespace ephemera::session {

// Progress of a long save or restore on stderr: a live line on a terminal, a line every
// five seconds in a log. finish() clears the live line before the summary line is printed.
class ProgressLine {
public:
  explicit ProgressLine(std::string what);
  ~ProgressLine() { finish(); }
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  // Valid while this line lives.
  archive::ProgressFn fn();
  void finish();

private:
  void show(const archive::Progress& p);

  std::string m_what;
  bool m_tty;
  bool m_live = false;
  double m_last_logged = 0;
};

// "1234 files, 500.0 MiB, 120.0 MiB compressed, 3.10 s, 161.3 MB/s"
std::string cost_line(uint64_t files, uint64_t bytes, uint64_t compressed, double seconds);

double seconds_since(std::chrono::steady_clock::time_point start);

} // namespace ephemera::session
