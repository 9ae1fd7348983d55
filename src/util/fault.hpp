#pragma once

#include <string_view>

// Named points where a test may kill the process, to prove that a crash at exactly that
// moment leaves the store whole: EPHEMERA_FAULT=NAME kills the process (SIGKILL, as kill -9
// does) the first time it reaches fault_point(NAME), EPHEMERA_FAULT=NAME:N the N-th time.
// Unset, or naming another point, it does nothing; it is read on every call (cheap: the
// points sit between store requests).
namespace ephemera::util {

void fault_point(std::string_view name);

} // namespace ephemera::util
