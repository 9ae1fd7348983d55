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

// How many event records each token has had written: at most k_per_token, so that a token
// (a fork's among them) cannot fill the store with records however long it lives. In memory,
// per broker instance, like the rate limit; a token's count is kept until it expires.
class RecordQuota {
public:
  static constexpr size_t k_per_token = 64;
  static constexpr size_t k_max_tokens = 100000;
  // Takes one record for id, whose token expires at `expires` (seconds): false when the token
  // has had its k_per_token, or when k_max_tokens unexpired tokens are counted already (then
  // nothing is forgotten to make room: a count dropped would be a quota refilled).
  bool take(const std::string& id, double expires, double now);

private:
  struct Count {
    size_t records = 0;
    double expires = 0;
  };
  std::mutex m_mutex;
  std::unordered_map<std::string, Count> m_counts;
};

} // namespace ephemera::broker
