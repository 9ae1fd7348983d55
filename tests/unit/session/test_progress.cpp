// The progress line's words, for a terminal and for a log.
#include "session/progress.hpp"

#include <catch2/catch.hpp>

using namespace ephemera::session;

TEST_CASE("progress in a log: bytes of the total, percent, rate and time left", "[progress]") {
  ProgressState s{"restoring 'deps': downloading", 50 << 20, 200 << 20, 0, 10};
  CHECK(progress_text(s, false, 0) == "ephemera: restoring 'deps': downloading: 50.0 MiB of "
                                      "200.0 MiB (25%), 5.2 MB/s, 0:30 left");
  s.bytes = 300 << 10;
  s.seconds = 2;
  s.total = 0; // unknown: no percent, no time left
  s.files = 12;
  CHECK(progress_text(s, false, 0) ==
        "ephemera: restoring 'deps': downloading: 300.0 KiB, 12 files, 153.6 kB/s");
}

TEST_CASE("progress on a terminal: a bar, cut to the terminal's width", "[progress]") {
  ProgressState s{"saving 'deps': packing", 1 << 30, 4ULL << 30, 1000, 4};
  CHECK(progress_text(s, true, 200) ==
        "saving 'deps': packing [=======>                      ]  25% 1.0 GiB/4.0 GiB "
        "268.4 MB/s 0:12 left 1000 files");
  // 80 columns: the numbers stay whole, the gauge is what shrinks.
  s.what = "restoring 'deps': downloading";
  s.files = 0;
  CHECK(progress_text(s, true, 80) == "restoring 'deps': downloading [=>   ] "
                                      " 25% 1.0 GiB/4.0 GiB 268.4 MB/s 0:12 left");
  CHECK(progress_text(s, true, 40).size() == 39);
  CHECK(progress_text(s, true, 40).find("25% 1.0 GiB/4.0 GiB") != std::string::npos);
  s.bytes = s.total;
  CHECK(progress_text(s, true, 200).find("=] 100% ") != std::string::npos);
}
