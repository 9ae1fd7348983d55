// The S3 backend's one thread pool: the parts of an upload or a download, each on a thread
// of its own, with the bytes that must pass in order (read from a source, written to a
// sink) passed one part at a time, in part order.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>

namespace ephemera::store {

class Parts {
public:
  // `count` parts on up to `threads` threads (at least one).
  Parts(uint64_t count, int threads);

  // Runs work(part) for every part, each thread taking the next part once it is done with
  // one, so at most `threads` parts are in hand at a time. The first exception stops the
  // rest: no part is started after it, a part waiting in in_turn gives up, and once every
  // thread has ended it is rethrown. Every work(part) must call in_turn(part, ...) once.
  void run(const std::function<void(uint64_t part)>& work);

  // Runs step once every earlier part's step has run, one part at a time. Within run only.
  void in_turn(uint64_t part, const std::function<void()>& step);

private:
  uint64_t m_count;
  int m_threads;
  std::mutex m_mutex;
  std::condition_variable m_cv;
  uint64_t m_next_part = 0; // the next part a thread takes
  uint64_t m_turn = 0;      // the part whose step runs next
  std::exception_ptr m_failure;
};

} // namespace ephemera::store
