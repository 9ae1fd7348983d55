#pragma once

#include "store/backend.hpp"
#include "util/error.hpp"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

// Ranged reads of a store elsewhere, made ahead of the one who needs them: a restore names
// every range it will read, in the order it will read them, and takes their bytes in that
// order while a few threads fetch the next ones. Only bytes come back; what they mean (and
// whether they are what the index says) is the taker's to check before any reaches a file.
namespace ephemera::cas {

// A read that came back with another length than asked for: what the store holds there is
// not what was asked for.
class ReadRefused : public util::ArchiveError {
public:
  ReadRefused(uint32_t object, const std::string& message)
      : util::ArchiveError(message), m_object(object) {}
  uint32_t object() const { return m_object; }

private:
  uint32_t m_object;
};

struct RangeRead {
  uint32_t object = 0; // into the fetcher's keys
  uint64_t offset = 0;
  uint64_t length = 0; // at least 1
};

class RangeFetcher {
public:
  // Starts `threads` threads (at least one) on reads, in their order: a read is started only
  // while the bytes of those started and not yet taken, its own included, stay within
  // max_ahead (a read longer than that is started alone, once nothing else is held), and at
  // most `threads` are in flight. keys[read.object] is each read's object key.
  RangeFetcher(store::Backend& backend, std::vector<std::string> keys, std::vector<RangeRead> reads,
               int threads, uint64_t max_ahead);
  // Stops: no read starts after this, the transfers in flight are asked to stop
  // (Sink::cancelled), and every thread has ended when it returns.
  ~RangeFetcher();
  RangeFetcher(const RangeFetcher&) = delete;
  RangeFetcher& operator=(const RangeFetcher&) = delete;

  // Whether the next read to take is exactly this one (the taker checks before it takes).
  bool next_is(uint32_t object, uint64_t offset, uint64_t length) const;
  // The next read's bytes, exactly its length of them, once they are here. Throws the first
  // failure of any read as it was thrown (a StoreError of the backend, or ReadRefused for
  // a read that came back with another length), as soon as it is known, and again on every
  // later call: after a failure nothing more is read. util::Error when every read was taken.
  std::string take();

  // The most bytes held at once (in flight and fetched, not yet taken): for tests.
  uint64_t peak_ahead() const;

private:
  class StopSink;
  void run();

  store::Backend& m_backend;
  const std::vector<std::string> m_keys;
  const std::vector<RangeRead> m_reads;
  const uint64_t m_max_ahead;
  const size_t m_thread_count;
  mutable std::mutex m_mutex;
  std::condition_variable m_cv;
  size_t m_started = 0; // reads started by a thread
  size_t m_taken = 0;   // reads taken
  uint64_t m_ahead = 0; // bytes of the reads started and not taken
  uint64_t m_peak = 0;
  std::map<size_t, std::string> m_done; // fetched, not taken
  std::exception_ptr m_error;
  std::atomic<bool> m_stop{false};
  std::vector<std::thread> m_threads;
};

} // namespace ephemera::cas
