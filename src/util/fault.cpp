#include "util/fault.hpp"

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <string>

namespace ephemera::util {

void fault_point(std::string_view name) {
  const char* env = std::getenv("EPHEMERA_FAULT");
  if (env == nullptr || *env == '\0') {
    return;
  }
  std::string_view want(env);
  long nth = 1;
  if (auto colon = want.rfind(':'); colon != std::string_view::npos) {
    nth = std::strtol(std::string(want.substr(colon + 1)).c_str(), nullptr, 10);
    want = want.substr(0, colon);
  }
  if (want != name) {
    return;
  }
  static std::atomic<long> reached{0};
  if (++reached >= nth) {
    std::raise(SIGKILL);
  }
}

} // namespace ephemera::util
