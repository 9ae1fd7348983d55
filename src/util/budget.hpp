#pragma once

#include "util/error.hpp"

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

// The time a phase may take (pre's --budget): one deadline for the whole process, read by
// every transfer and unpack wherever it runs (a download's parallel parts run on threads of
// their own), so that none has to be handed it through interfaces that know nothing of it.
// Header-only: the archive and store code that checks it is linked alone by the fuzz targets.
namespace ephemera::util {

// The phase's budget ran out: what was under way gives up, leaving nothing, and the job
// goes on cold. Not a StoreError: no retry may follow it.
class BudgetExceeded : public Error {
public:
  using Error::Error;
};

namespace budget {

using Clock = std::chrono::steady_clock;

namespace detail {
inline std::atomic<int64_t> g_deadline_ns{0}; // Clock's epoch; 0: no budget
inline std::atomic<int64_t> g_seconds_ms{0};
inline std::string g_source; // written by start() only, before any thread reads it
} // namespace detail

// Starts a budget of `seconds` from now; source says where it was set ("--budget 120s",
// "EPHEMERA_BUDGET=120s"), for the messages. Call before any transfer starts.
inline void start(double seconds, std::string source) {
  detail::g_source = std::move(source);
  detail::g_seconds_ms = static_cast<int64_t>(seconds * 1000);
  auto at = Clock::now() +
            std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  detail::g_deadline_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(at.time_since_epoch()).count();
}

// No budget (the default).
inline void clear() {
  detail::g_deadline_ns = 0;
}

inline std::optional<Clock::time_point> deadline() {
  int64_t ns = detail::g_deadline_ns.load();
  if (ns == 0) {
    return std::nullopt;
  }
  return Clock::time_point(
      std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(ns)));
}

// What is left of the budget (never negative); nullopt when there is none.
inline std::optional<std::chrono::milliseconds> left() {
  auto d = deadline();
  if (!d) {
    return std::nullopt;
  }
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(*d - Clock::now());
  return std::max(ms, std::chrono::milliseconds(0));
}

inline bool passed() {
  auto l = left();
  return l && l->count() == 0;
}

// Whether a transfer's timeout, set to what was left of the budget, was the budget's: curl's
// timers may fire a little before the deadline they were set to, so passed() can still be
// false then.
inline bool ran_out_by_timeout() {
  auto l = left();
  return l && *l <= std::chrono::milliseconds(250);
}

// "the time budget of 120 s (--budget 120s)"
inline std::string describe() {
  return fmt::format("the time budget of {:g} s ({})",
                     static_cast<double>(detail::g_seconds_ms.load()) / 1000, detail::g_source);
}

// The error for `what` (a download, an unpack) stopped by the budget.
inline BudgetExceeded exceeded(std::string_view what) {
  return BudgetExceeded(fmt::format("{}: out of time: {} ran out", what, describe()));
}

// Throws exceeded(what) once the budget has run out; nothing when there is none.
inline void check(std::string_view what) {
  if (passed()) {
    throw exceeded(what);
  }
}

} // namespace budget
} // namespace ephemera::util
