// The reads a restore makes of a store elsewhere, fetched ahead by a few threads.
#include "cas/fetch.hpp"

#include "util/error.hpp"
#include "util/log.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace ephemera::cas {

namespace {

// Thrown into a transfer the fetcher stopped: not a StoreError, so nothing retries it.
struct Stopped {};

// Reads in flight or fetched and not taken, at most, whatever their size: the count of the
// map the fetched ones wait in stays small when reads are tiny.
constexpr size_t k_reads_ahead_per_thread = 16;

} // namespace

// One read's bytes, at most its length of them, dropped at the next bytes once the fetcher
// stops, and a transfer waiting for bytes asked to stop.
class RangeFetcher::StopSink : public store::Sink {
public:
  StopSink(const std::atomic<bool>& stop, uint64_t length) : m_stop(stop), m_length(length) {
    m_data.reserve(length);
  }
  void write(const char* data, size_t size) override {
    if (m_stop.load()) {
      throw Stopped{};
    }
    if (size > m_length - m_data.size()) {
      throw util::StoreError(util::StoreErrorKind::permanent,
                             fmt::format("it is larger than the {} bytes asked for", m_length));
    }
    m_data.append(data, size);
  }
  uint64_t max_bytes() const override { return m_length; }
  bool cancelled() const override { return m_stop.load(); }
  std::string& data() { return m_data; }

private:
  const std::atomic<bool>& m_stop;
  uint64_t m_length;
  std::string m_data;
};

RangeFetcher::RangeFetcher(store::Backend& backend, std::vector<std::string> keys,
                           std::vector<RangeRead> reads, int threads, uint64_t max_ahead)
    : m_backend(backend), m_keys(std::move(keys)), m_reads(std::move(reads)),
      m_max_ahead(max_ahead),
      m_thread_count(std::min<size_t>(static_cast<size_t>(std::max(1, threads)), m_reads.size())) {
  m_threads.reserve(m_thread_count);
  try {
    for (size_t i = 0; i < m_thread_count; ++i) {
      m_threads.emplace_back([this] { run(); });
    }
  } catch (...) {
    m_stop = true;
    m_cv.notify_all();
    for (auto& t : m_threads) {
      t.join();
    }
    throw;
  }
}

RangeFetcher::~RangeFetcher() {
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_stop = true;
  }
  m_cv.notify_all();
  for (auto& t : m_threads) {
    t.join();
  }
}

void RangeFetcher::run() {
  const size_t max_reads = k_reads_ahead_per_thread * m_thread_count;
  while (true) {
    size_t i = 0;
    {
      std::unique_lock<std::mutex> lock(m_mutex);
      // The next read, once it fits beside what is held (alone when it is longer than all).
      m_cv.wait(lock, [&] {
        if (m_stop || m_error || m_started == m_reads.size()) {
          return true;
        }
        uint64_t length = m_reads[m_started].length;
        return m_started - m_taken < max_reads &&
               (m_ahead == 0 || length <= m_max_ahead - std::min(m_ahead, m_max_ahead));
      });
      if (m_stop || m_error || m_started == m_reads.size()) {
        return;
      }
      i = m_started++;
      m_ahead += m_reads[i].length;
      m_peak = std::max(m_peak, m_ahead);
    }
    const RangeRead& read = m_reads[i];
    const std::string& key = m_keys.at(read.object);
    try {
      StopSink sink(m_stop, read.length);
      m_backend.get_range(key, read.offset, read.length, sink);
      if (m_stop) {
        return;
      }
      // Never more (the sink holds at most the length), and never fewer.
      if (sink.data().size() != read.length) {
        throw ReadRefused(read.object,
                          fmt::format("{} gave {} bytes at {}, not {}", util::printable(key),
                                      sink.data().size(), read.offset, read.length));
      }
      std::lock_guard<std::mutex> lock(m_mutex);
      m_done.emplace(i, std::move(sink.data()));
    } catch (const Stopped&) {
      return;
    } catch (...) {
      std::lock_guard<std::mutex> lock(m_mutex);
      if (!m_error && !m_stop) {
        m_error = std::current_exception();
      }
      m_cv.notify_all();
      return;
    }
    m_cv.notify_all();
  }
}

bool RangeFetcher::next_is(uint32_t object, uint64_t offset, uint64_t length) const {
  std::lock_guard<std::mutex> lock(m_mutex);
  if (m_taken == m_reads.size()) {
    return false;
  }
  const RangeRead& r = m_reads[m_taken];
  return r.object == object && r.offset == offset && r.length == length;
}

std::string RangeFetcher::take() {
  std::unique_lock<std::mutex> lock(m_mutex);
  if (m_taken == m_reads.size()) {
    throw util::Error("every planned read of the packs was taken");
  }
  m_cv.wait(lock, [&] { return m_error || m_done.count(m_taken) != 0; });
  if (m_error) {
    std::rethrow_exception(m_error);
  }
  auto it = m_done.find(m_taken);
  std::string bytes = std::move(it->second);
  m_done.erase(it);
  m_ahead -= m_reads[m_taken].length;
  ++m_taken;
  lock.unlock();
  m_cv.notify_all();
  return bytes;
}

uint64_t RangeFetcher::peak_ahead() const {
  std::lock_guard<std::mutex> lock(m_mutex);
  return m_peak;
}

} // namespace ephemera::cas
