#pragma once

#include "cas/fetch.hpp"
#include "cas/index.hpp"
#include "store/backend.hpp"
#include "util/error.hpp"

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <filesystem>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

// Pack objects: new chunks appended in the order they come (path order), grouped into
// independent zstd frames of about a MiB, tens of MB of content to a pack. A pack is a plain
// multi-frame zstd stream (`zstd -d` reads it whole); the index says where each frame lies,
// so a restore fetches and decodes a run of frames alone.
namespace ephemera::cas {

struct PackOptions {
  int level = 3;
  size_t frame_bytes = 1 << 20;      // content per frame, cut at chunk boundaries
  uint64_t pack_bytes = 64ULL << 20; // content per pack
  std::filesystem::path temp_dir;    // where a pack is assembled before its upload
  // Names a new pack must not go up under: packs whose stored bytes a restore here refused
  // (PackRefused). A store that keeps an object it already has (a broker does, for a
  // content-addressed name) would keep those bytes, so such a pack gets one more frame, of
  // content no chunk uses, and with it another name.
  std::vector<std::string> avoid; // hex SHA-256s
};

// A restore's refusal of what the store holds under a pack's name: missing, of another size
// than its index says, frames that do not decode, or chunks that are not the index's. Names
// the pack, so that a save on this machine builds on nothing that uses it.
class PackRefused : public util::ArchiveError {
public:
  PackRefused(const Hash& pack, const std::string& message)
      : util::ArchiveError(message), m_pack(pack) {}
  const Hash& pack() const { return m_pack; }

private:
  Hash m_pack;
};

// Appends chunks to packs and uploads each pack as it fills, under prefix + hex(sha256) +
// ".pack". Frames are compressed and packs uploaded on a second thread while the caller
// reads and hashes the next files. Not copyable; one per save.
class PackWriter {
public:
  PackWriter(store::Backend& backend, std::string prefix, const PackOptions& options);
  ~PackWriter();
  PackWriter(const PackWriter&) = delete;
  PackWriter& operator=(const PackWriter&) = delete;

  // Queues a chunk; returns where it will lie. Its pack is index.packs[ref.pack], a slot this
  // writer adds to index.packs when it opens the pack and fills in at finish(). Rethrows the
  // second thread's first failure.
  ChunkRef add(const Hash& hash, const char* data, size_t size, Index& index);
  // Compresses and uploads what is queued, waits for it, fills the packs' slots in index.
  void finish(Index& index);

  uint64_t uploaded_bytes() const { return m_uploaded; }
  uint32_t uploaded_packs() const { return m_packs; }

private:
  struct Job {
    uint32_t slot = 0;
    std::string content; // one frame's
    bool last = false;   // the pack's last frame: upload it after this one
  };
  struct Open; // the pack the second thread is writing

  void cut_frame(bool last);
  void run();
  // Appends job's frame to the open pack; hashed, unless the pack's hash is finished.
  void compress(Job& job, bool hashed = true);
  void upload(uint32_t slot);
  void rethrow();

  store::Backend& m_backend;
  std::string m_prefix;
  PackOptions m_options;
  // The caller's side: the pack and frame being filled.
  bool m_have_pack = false;
  uint32_t m_slot = 0;
  uint32_t m_frame = 0;
  uint64_t m_pack_content = 0;
  std::string m_buffer;
  // Between the two threads.
  std::mutex m_mutex;
  std::condition_variable m_cv;
  std::deque<Job> m_queue;
  bool m_closing = false;
  std::exception_ptr m_error;
  // The second thread's side.
  std::unique_ptr<Open> m_open;
  std::map<uint32_t, PackRef> m_done;
  std::string m_compressed; // one frame's, reused
  uint64_t m_uploaded = 0;
  uint32_t m_packs = 0;
  std::thread m_thread;
};

// Reads chunks for a restore: frames fetched in runs of consecutive needed frames (one
// ranged read each, or pread where the store is a local directory), decoded, and each chunk
// checked against its SHA-256 before it is handed out. From a store elsewhere the runs are
// read ahead: the reads a restore of the whole index makes are worked out first (the same
// decisions, with no bytes), then fetched in that order by backend.parallel_reads() threads
// (RangeFetcher), at most k_max_ahead bytes of them held, while the caller decodes, checks
// and writes the ones before.
class ChunkReader {
public:
  // The most compressed bytes read in one run of frames, and read ahead and not yet taken:
  // with the k_runs runs held for decoding, 32 MiB at most.
  static constexpr uint64_t k_max_run = 4ULL << 20;
  static constexpr uint64_t k_max_ahead = 4 * k_max_run;

  // Every pack of index is checked first: it must exist at prefix + hex(id) + ".pack" with
  // the index's size, else util::ArchiveError, before a byte of content is read; so is the bound on
  // what the chunks make a restore decode (see chunk()). The reads ahead start here and are
  // meant for chunk() called for every chunk of index.entries in their order, as a restore
  // or an export does; any other order is served too, reading what it needs when it needs it.
  ChunkReader(store::Backend& backend, std::string prefix, const Index& index);
  ~ChunkReader();
  ChunkReader(const ChunkReader&) = delete;
  ChunkReader& operator=(const ChunkReader&) = delete;

  // The chunk's bytes, verified: throws util::ArchiveError naming `what` when they are not the
  // bytes of its hash (or its frame does not decode to its declared size), and when the
  // frames decoded so far exceed 16 times the state's content plus 256 MiB (an index whose
  // chunks hop between frames to make a restore decode without end). Valid until the next
  // call.
  std::string_view chunk(const ChunkRef& ref, std::string_view what);

  uint64_t fetched_bytes() const { return m_fetched; }

private:
  // Compressed runs of frames fetched ahead, a few packs at a time, most recent first: the
  // state's files come in path order from each pack, interleaved across packs.
  struct Run {
    uint32_t pack = 0;
    uint32_t first = 0;
    uint32_t count = 0;
    std::string bytes;
  };

  const std::string& frame(uint32_t pack, uint32_t frame, std::string_view what);
  const Run& fetch_run(uint32_t pack, uint32_t frame);
  // The reads of a restore of the whole index, in its order: frame() and fetch_run() run
  // over every chunk with m_planning set, which records each read instead of making it.
  std::vector<RangeRead> plan();
  [[noreturn]] void too_much_decoded() const;

  store::Backend& m_backend;
  std::string m_prefix;
  const Index& m_index;
  std::vector<std::vector<bool>> m_needed;
  std::vector<int> m_fds;       // per pack: open_local's descriptor, or -1
  std::list<Run> m_runs;        // see Run
  std::vector<int64_t> m_ahead; // per pack: the last frame read ahead, or -1
  // Decoded frames, most recent first.
  std::list<std::pair<uint64_t, std::string>> m_cache;
  uint64_t m_fetched = 0;
  uint64_t m_decoded = 0;
  uint64_t m_max_decoded = 0; // see k_decode_factor
  void* m_dctx = nullptr;
  bool m_planning = false;
  std::vector<RangeRead> m_plan;           // filled while m_planning
  std::unique_ptr<RangeFetcher> m_fetcher; // a store elsewhere: the plan, read ahead
};

std::string pack_key(const std::string& prefix, const Hash& id);

} // namespace ephemera::cas
