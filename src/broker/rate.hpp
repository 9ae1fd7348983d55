#pragma once

#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>

namespace ephemera::broker {

// A token bucket per token: `rate` requests a second, bursts of `burst`. In memory, per
// broker instance (the broker keeps no shared state); at most k_max_tokens buckets, the full
// ones dropped first when there would be more.
class RateLimiter {
public:
  static constexpr size_t k_max_tokens = 100000;
  RateLimiter(double rate, double burst) : m_rate(rate), m_burst(burst) {}
  // Takes one request for id at time now (seconds): 0 when allowed, else the seconds until
  // one would be. A rate of 0 or less allows everything.
  double take(const std::string& id, double now);

private:
  struct Bucket {
    double tokens = 0;
    double at = 0;
  };
  double m_rate, m_burst;
  std::mutex m_mutex;
  std::unordered_map<std::string, Bucket> m_buckets;
};

} // namespace ephemera::broker
