#include "cas/pack.hpp"

#include "util/error.hpp"
#include "util/fault.hpp"
#include "util/fs.hpp"
#include "util/log.hpp"
#include "util/sha256.hpp"
#include "util/temp_name.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

namespace ephemera::cas {

namespace fs = std::filesystem;
using util::ArchiveError;
using util::Error;

namespace {

// Decoded frames kept for chunks that come back to a frame (files of equal content far
// apart in path order share their chunks).
constexpr size_t k_cached_frames = 32;
// Runs of frames kept at once (each at most ChunkReader::k_max_run compressed bytes).
constexpr size_t k_runs = 4;
// Frames queued for the second thread at most.
constexpr size_t k_max_queued = 4;

Hash sha256(const char* data, size_t size) {
  util::Sha256 h;
  h.update(data, size);
  return h.finish();
}

// The SHA-256 of the first size bytes of fd.
Hash hash_of(int fd, uint64_t size) {
  util::Sha256 h;
  std::string buf(1 << 20, '\0');
  for (uint64_t at = 0; at < size;) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), size - at));
    ssize_t n = util::read_full(fd, buf.data(), want, static_cast<off_t>(at));
    if (n < 0 || static_cast<size_t>(n) != want) {
      throw Error(fmt::format("unable to read back a pack: {}",
                              n < 0 ? std::strerror(errno) : "short read"));
    }
    h.update(buf.data(), want);
    at += want;
  }
  return h.finish();
}

} // namespace

std::string pack_key(const std::string& prefix, const Hash& id) {
  return prefix + hex(id) + ".pack";
}

// The pack file being assembled: unlinked from the start (O_TMPFILE where the file system
// has it), so a killed save leaves nothing behind.
struct PackWriter::Open {
  uint32_t slot = 0;
  util::Fd fd{-1};
  fs::path dir;
  util::Sha256 hash;
  PackRef ref;
};

namespace {

// An unlinked file, O_TMPFILE where the file system has it: nothing is left when the process
// is killed.
int unlinked_file(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) {
    fs::path name = util::temp_name_beside(dir / "pack");
    fd = ::open(name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0) {
      ::unlink(name.c_str());
    }
  }
  if (fd < 0) {
    throw Error(
        fmt::format("unable to create a file in {}: {}", dir.string(), std::strerror(errno)));
  }
  return fd;
}

// The assembled pack, read back by descriptor for the upload (and again for a retry).
class FdSource : public store::Source {
public:
  FdSource(int fd, uint64_t size) : m_fd(fd), m_size(size) {}
  uint64_t size() const override { return m_size; }
  size_t read(char* buf, size_t max) override {
    size_t want = static_cast<size_t>(std::min<uint64_t>(max, m_size - m_pos));
    ssize_t n = util::read_full(m_fd, buf, want, static_cast<off_t>(m_pos));
    if (n < 0 || static_cast<size_t>(n) != want) {
      throw Error(fmt::format("unable to read back a pack: {}",
                              n < 0 ? std::strerror(errno) : "short read"));
    }
    m_pos += want;
    return want;
  }
  void rewind() override { m_pos = 0; }

private:
  int m_fd;
  uint64_t m_size;
  uint64_t m_pos = 0;
};

} // namespace

PackWriter::PackWriter(store::Backend& backend, std::string prefix, const PackOptions& options)
    : m_backend(backend), m_prefix(std::move(prefix)), m_options(options) {
  m_thread = std::thread([this] { run(); });
}

PackWriter::~PackWriter() {
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_closing = true;
    m_queue.clear();
    if (!m_error) {
      m_error = std::make_exception_ptr(Error("save abandoned"));
    }
  }
  m_cv.notify_all();
  if (m_thread.joinable()) {
    m_thread.join();
  }
}

void PackWriter::rethrow() {
  std::lock_guard<std::mutex> lock(m_mutex);
  if (m_error) {
    std::rethrow_exception(m_error);
  }
}

ChunkRef PackWriter::add(const Hash& hash, const char* data, size_t size, Index& index) {
  if (!m_have_pack) {
    m_slot = static_cast<uint32_t>(index.packs.size());
    index.packs.emplace_back();
    m_have_pack = true;
    m_frame = 0;
    m_pack_content = 0;
  }
  ChunkRef ref;
  ref.pack = m_slot;
  ref.frame = m_frame;
  ref.offset = static_cast<uint32_t>(m_buffer.size());
  ref.length = static_cast<uint32_t>(size);
  ref.hash = hash;
  m_buffer.append(data, size);
  m_pack_content += size;
  if (m_pack_content >= m_options.pack_bytes) {
    cut_frame(true);
  } else if (m_buffer.size() >= m_options.frame_bytes) {
    cut_frame(false);
  }
  return ref;
}

void PackWriter::cut_frame(bool last) {
  Job job{m_slot, std::move(m_buffer), last};
  m_buffer.clear();
  std::unique_lock<std::mutex> lock(m_mutex);
  m_cv.wait(lock, [this] { return m_queue.size() < k_max_queued || m_error; });
  if (m_error) {
    std::rethrow_exception(m_error);
  }
  m_queue.push_back(std::move(job));
  lock.unlock();
  m_cv.notify_all();
  ++m_frame;
  if (last) {
    m_have_pack = false;
  }
}

void PackWriter::finish(Index& index) {
  if (m_have_pack) {
    cut_frame(true);
  }
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_closing = true;
  }
  m_cv.notify_all();
  m_thread.join();
  rethrow();
  for (auto& [slot, ref] : m_done) {
    index.packs[slot] = std::move(ref);
  }
  m_done.clear();
}

void PackWriter::run() {
  try {
    while (true) {
      Job job;
      {
        std::unique_lock<std::mutex> lock(m_mutex);
        m_cv.wait(lock, [this] { return !m_queue.empty() || m_closing; });
        if (m_queue.empty() || m_error) {
          return;
        }
        job = std::move(m_queue.front());
        m_queue.pop_front();
      }
      m_cv.notify_all();
      if (!job.content.empty()) {
        compress(job);
      }
      if (job.last) {
        upload(job.slot);
      }
    }
  } catch (...) {
    std::lock_guard<std::mutex> lock(m_mutex);
    if (!m_error) {
      m_error = std::current_exception();
    }
    m_cv.notify_all();
  }
}

void PackWriter::compress(Job& job, bool hashed) {
  if (!m_open) {
    m_open = std::make_unique<Open>();
    m_open->slot = job.slot;
    m_open->dir = m_options.temp_dir.empty() ? fs::temp_directory_path() : m_options.temp_dir;
    m_open->fd.fd = unlinked_file(m_open->dir);
  }
  std::string& out = m_compressed;
  out.resize(ZSTD_compressBound(job.content.size()));
  size_t n = ZSTD_compress(out.data(), out.size(), job.content.data(), job.content.size(),
                           m_options.level);
  if (ZSTD_isError(n) != 0) {
    throw Error(fmt::format("unable to compress a pack frame: {}", ZSTD_getErrorName(n)));
  }
  if (!util::write_all(m_open->fd.fd, std::string_view(out.data(), n))) {
    throw Error(fmt::format("unable to write a pack in {}: {}", m_open->dir.string(),
                            std::strerror(errno)));
  }
  if (hashed) {
    m_open->hash.update(out.data(), n);
  }
  Frame f;
  f.offset = m_open->ref.size;
  f.compressed = static_cast<uint32_t>(n);
  f.size = static_cast<uint32_t>(job.content.size());
  m_open->ref.frames.push_back(f);
  m_open->ref.size += n;
}

void PackWriter::upload(uint32_t slot) {
  std::unique_ptr<Open> open = std::move(m_open);
  open->ref.id = open->hash.finish();
  // Another name than one whose stored bytes were refused: those bytes may stay where they are
  // (a broker keeps a content-addressed object it has), and would be this pack's.
  for (uint32_t n = 0; std::find(m_options.avoid.begin(), m_options.avoid.end(),
                                 hex(open->ref.id)) != m_options.avoid.end();
       ++n) {
    Job extra{slot,
              fmt::format("ephemera: not the bytes stored as pack {} ({})\n", hex(open->ref.id), n),
              false};
    m_open = std::move(open);
    compress(extra, false);
    open = std::move(m_open);
    open->ref.id = hash_of(open->fd.fd, open->ref.size);
  }
  FdSource source(open->fd.fd, open->ref.size);
  std::string key = pack_key(m_prefix, open->ref.id);
  m_backend.put(key, source);
  util::fault_point("cas-pack-uploaded");
  m_uploaded += open->ref.size;
  ++m_packs;
  m_done[slot] = std::move(open->ref);
}

ChunkReader::ChunkReader(store::Backend& backend, std::string prefix, const Index& index)
    : m_backend(backend), m_prefix(std::move(prefix)), m_index(index) {
  m_needed.resize(index.packs.size());
  for (size_t p = 0; p < index.packs.size(); ++p) {
    m_needed[p].assign(index.packs[p].frames.size(), false);
  }
  for (const Entry& e : index.entries) {
    for (const ChunkRef& c : e.chunks) {
      m_needed[c.pack][c.frame] = true;
    }
  }
  m_fds.assign(index.packs.size(), -1);
  m_ahead.assign(index.packs.size(), -1);
  for (size_t p = 0; p < index.packs.size(); ++p) {
    const PackRef& pack = index.packs[p];
    std::string key = pack_key(m_prefix, pack.id);
    auto info = m_backend.stat(key);
    if (!info) {
      throw PackRefused(pack.id,
                        fmt::format("pack {} of the index is missing", util::printable(key)));
    }
    if (info->size != pack.size) {
      throw PackRefused(
          pack.id, fmt::format("pack {} is {} bytes, the index says {}: its ranges would lie past "
                               "its end or not cover it",
                               util::printable(key), info->size, pack.size));
    }
  }
  uint64_t content = 0;
  for (const Entry& e : index.entries) {
    content += e.size;
  }
  m_max_decoded = 16 * content + (256ULL << 20);
  std::vector<RangeRead> reads = plan(); // before anything the destructor would release
  m_dctx = ZSTD_createDCtx();
  if (m_dctx == nullptr) {
    throw Error("unable to start decompressing the packs");
  }
  try {
    if (!index.packs.empty()) {
      m_fds[0] = m_backend.open_local(pack_key(m_prefix, index.packs[0].id));
    }
    if (!reads.empty() && m_fds[0] < 0) {
      std::vector<std::string> keys;
      keys.reserve(index.packs.size());
      for (const PackRef& pack : index.packs) {
        keys.push_back(pack_key(m_prefix, pack.id));
      }
      m_fetcher = std::make_unique<RangeFetcher>(m_backend, std::move(keys), std::move(reads),
                                                 m_backend.parallel_reads(), k_max_ahead);
    }
  } catch (...) {
    if (!m_fds.empty() && m_fds[0] >= 0) {
      ::close(m_fds[0]);
    }
    ZSTD_freeDCtx(static_cast<ZSTD_DCtx*>(m_dctx));
    throw;
  }
}

std::vector<RangeRead> ChunkReader::plan() {
  m_planning = true;
  for (const Entry& e : m_index.entries) {
    for (const ChunkRef& c : e.chunks) {
      frame(c.pack, c.frame, e.path);
    }
  }
  m_planning = false;
  m_runs.clear();
  m_cache.clear();
  m_ahead.assign(m_index.packs.size(), -1);
  m_decoded = 0;
  m_fetched = 0;
  return std::move(m_plan);
}

ChunkReader::~ChunkReader() {
  for (int fd : m_fds) {
    if (fd >= 0) {
      ::close(fd);
    }
  }
  ZSTD_freeDCtx(static_cast<ZSTD_DCtx*>(m_dctx));
}

// Reads ahead from frame over the consecutive frames the state needs, when frame is past
// what was read ahead of its pack; a frame the restore comes back to (a chunk shared by files
// far apart) is fetched alone, without dropping the run in progress.
const ChunkReader::Run& ChunkReader::fetch_run(uint32_t pack, uint32_t frame) {
  const PackRef& p = m_index.packs[pack];
  uint32_t count = 1;
  uint64_t bytes = p.frames[frame].compressed;
  bool ahead = static_cast<int64_t>(frame) > m_ahead[pack];
  while (ahead && frame + count < p.frames.size() && m_needed[pack][frame + count] &&
         bytes + p.frames[frame + count].compressed <= k_max_run) {
    bytes += p.frames[frame + count].compressed;
    ++count;
  }
  uint64_t offset = p.frames[frame].offset;
  std::string key = pack_key(m_prefix, p.id);
  Run run{pack, frame, count, {}};
  int& fd = m_fds[pack];
  if (m_planning) {
    m_plan.push_back(RangeRead{pack, offset, bytes});
  } else if (m_fetcher && m_fetcher->next_is(pack, offset, bytes)) {
    try {
      run.bytes = m_fetcher->take(); // exactly `bytes` of them: the fetcher checks
    } catch (const ReadRefused& e) {
      throw PackRefused(m_index.packs[e.object()].id, e.what());
    }
  } else {
    if (fd < 0 && !m_fetcher) {
      fd = m_backend.open_local(key);
    }
    if (fd >= 0) {
      run.bytes.resize(bytes);
      struct stat st {};
      ssize_t n = ::fstat(fd, &st) == 0 && static_cast<uint64_t>(st.st_size) == p.size
                      ? util::read_full(fd, run.bytes.data(), bytes, static_cast<off_t>(offset))
                      : -1;
      if (n < 0 || static_cast<uint64_t>(n) != bytes) {
        throw PackRefused(
            p.id, fmt::format("pack {} is shorter than the index says", util::printable(key)));
      }
    } else {
      store::StringSink sink(bytes);
      m_backend.get_range(key, offset, bytes, sink);
      if (sink.data().size() != bytes) {
        throw PackRefused(p.id, fmt::format("pack {} gave {} bytes at {}, not {}",
                                            util::printable(key), sink.data().size(), offset,
                                            bytes));
      }
      run.bytes = sink.data();
    }
  }
  m_fetched += m_planning ? 0 : bytes;
  if (ahead) {
    m_ahead[pack] = frame + count - 1;
    if (m_runs.size() >= k_runs) {
      m_runs.pop_back();
    }
    m_runs.push_front(std::move(run));
    return m_runs.front();
  }
  // Alone: kept at the back, the first to go.
  if (m_runs.size() >= k_runs) {
    m_runs.pop_back();
  }
  m_runs.push_back(std::move(run));
  return m_runs.back();
}

const std::string& ChunkReader::frame(uint32_t pack, uint32_t frame, std::string_view what) {
  uint64_t id = (uint64_t{pack} << 32) | frame;
  if (!m_cache.empty() && m_cache.front().first == id) {
    return m_cache.front().second; // the chunk before was of this frame: the common case
  }
  for (auto it = m_cache.begin(); it != m_cache.end(); ++it) {
    if (it->first == id) {
      m_cache.splice(m_cache.begin(), m_cache, it);
      return m_cache.front().second;
    }
  }
  const Run* run = nullptr;
  for (const Run& r : m_runs) {
    if (r.pack == pack && frame >= r.first && frame < r.first + r.count) {
      run = &r;
      break;
    }
  }
  if (run == nullptr) {
    run = &fetch_run(pack, frame);
  }
  const PackRef& p = m_index.packs[pack];
  const Frame& f = p.frames[frame];
  if (m_planning) {
    // What the restore will decode, bounded before a byte is read; no bytes to decode yet.
    m_decoded += f.size;
    if (m_decoded > m_max_decoded) {
      too_much_decoded();
    }
    if (m_cache.size() >= k_cached_frames) {
      m_cache.pop_back();
    }
    m_cache.emplace_front(id, std::string());
    return m_cache.front().second;
  }
  const char* src = run->bytes.data() + (f.offset - p.frames[run->first].offset);
  // The least recent decoded frame's buffer, reused: a fresh MiB for every frame costs its
  // page faults again.
  std::string out;
  if (m_cache.size() >= k_cached_frames) {
    out = std::move(m_cache.back().second);
    m_cache.pop_back();
  }
  out.resize(f.size);
  // Exactly one frame of exactly its declared size: anything else is a forged pack.
  size_t n = ZSTD_findFrameCompressedSize(src, f.compressed);
  size_t d = ZSTD_isError(n) != 0 || n != f.compressed
                 ? n
                 : ZSTD_decompressDCtx(static_cast<ZSTD_DCtx*>(m_dctx), out.data(), out.size(), src,
                                       f.compressed);
  if (ZSTD_isError(n) != 0 || n != f.compressed || ZSTD_isError(d) != 0 || d != f.size) {
    throw PackRefused(p.id,
                      fmt::format("frame {} of pack {} (for '{}') does not decode to its {} bytes",
                                  frame, hex(p.id), util::printable(what), f.size));
  }
  m_decoded += f.size;
  if (m_decoded > m_max_decoded) {
    too_much_decoded();
  }
  m_cache.emplace_front(id, std::move(out));
  return m_cache.front().second;
}

void ChunkReader::too_much_decoded() const {
  throw ArchiveError(
      fmt::format("the index makes a restore decode more than {} bytes for {} of content "
                  "(its chunks hop between frames)",
                  m_max_decoded, (m_max_decoded - (256ULL << 20)) / 16));
}

std::string_view ChunkReader::chunk(const ChunkRef& ref, std::string_view what) {
  const std::string& content = frame(ref.pack, ref.frame, what);
  std::string_view bytes(content.data() + ref.offset, ref.length);
  if (sha256(bytes.data(), bytes.size()) != ref.hash) {
    throw PackRefused(m_index.packs[ref.pack].id,
                      fmt::format("a chunk of '{}' in pack {} is not the content the index names "
                                  "(SHA-256 mismatch)",
                                  util::printable(what), hex(m_index.packs[ref.pack].id)));
  }
  return bytes;
}

} // namespace ephemera::cas
