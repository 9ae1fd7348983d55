#include "broker/rate.hpp"

#include <algorithm>

namespace ephemera::broker {

double RateLimiter::take(const std::string& id, double now) {
  if (m_rate <= 0) {
    return 0;
  }
  std::lock_guard lock(m_mutex);
  if (m_buckets.size() >= k_max_tokens && m_buckets.count(id) == 0) {
    for (auto it = m_buckets.begin(); it != m_buckets.end();) {
      bool full = it->second.tokens + (now - it->second.at) * m_rate >= m_burst;
      it = full ? m_buckets.erase(it) : std::next(it);
    }
    if (m_buckets.size() >= k_max_tokens) {
      m_buckets.erase(m_buckets.begin());
    }
  }
  auto [it, fresh] = m_buckets.try_emplace(id, Bucket{m_burst, now});
  auto& b = it->second;
  b.tokens = std::min(m_burst, b.tokens + std::max(0.0, now - b.at) * m_rate);
  b.at = now;
  if (b.tokens < 1) {
    return (1 - b.tokens) / m_rate;
  }
  b.tokens -= 1;
  return 0;
}

bool RecordQuota::take(const std::string& id, double expires, double now) {
  std::lock_guard lock(m_mutex);
  if (m_counts.size() >= k_max_tokens && m_counts.count(id) == 0) {
    for (auto it = m_counts.begin(); it != m_counts.end();) {
      it = it->second.expires < now ? m_counts.erase(it) : std::next(it);
    }
    if (m_counts.size() >= k_max_tokens) {
      return false;
    }
  }
  auto& count = m_counts[id];
  count.expires = expires;
  if (count.records >= k_per_token) {
    return false;
  }
  ++count.records;
  return true;
}

} // namespace ephemera::broker
