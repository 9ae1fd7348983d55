// A pool of threads for the parts of one transfer, with ordered steps.
#include "store/s3_parts.hpp"

#include <algorithm>
#include <thread>
#include <vector>

namespace ephemera::store {

namespace {

// Thrown in a part waiting for its turn when another part failed: ends that part quietly.
struct Stopped {};

} // namespace

Parts::Parts(uint64_t count, int threads) : m_count(count), m_threads(std::max(1, threads)) {}

void Parts::run(const std::function<void(uint64_t)>& work) {
  auto worker = [&] {
    while (true) {
      uint64_t part = 0;
      {
        std::lock_guard lock(m_mutex);
        if (m_failure || m_next_part >= m_count) {
          return;
        }
        part = m_next_part++;
      }
      try {
        work(part);
      } catch (const Stopped&) {
        return;
      } catch (...) {
        std::lock_guard lock(m_mutex);
        if (!m_failure) {
          m_failure = std::current_exception();
        }
        m_cv.notify_all();
        return;
      }
    }
  };
  std::vector<std::thread> threads;
  for (uint64_t i = 0; i < std::min<uint64_t>(m_count, static_cast<uint64_t>(m_threads)); ++i) {
    threads.emplace_back(worker);
  }
  for (auto& t : threads) {
    t.join();
  }
  if (m_failure) {
    std::rethrow_exception(m_failure);
  }
}

void Parts::in_turn(uint64_t part, const std::function<void()>& step) {
  {
    std::unique_lock lock(m_mutex);
    m_cv.wait(lock, [&] { return m_failure || m_turn == part; });
    if (m_failure) {
      throw Stopped{};
    }
  }
  step(); // alone: every later part waits for m_turn
  std::lock_guard lock(m_mutex);
  ++m_turn;
  m_cv.notify_all();
}

} // namespace ephemera::store
