#include "cas/index.hpp"

#include "util/error.hpp"
#include "util/log.hpp"
#include "util/sha256.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <memory>
#include <tuple>
#include <zstd.h>

namespace ephemera::cas {

namespace {

using util::Error;

[[noreturn]] void bad(const std::string& why) {
  throw util::ArchiveError("invalid index: " + why);
}

[[noreturn]] void bad_entry(std::string_view path, const std::string& why) {
  bad(fmt::format("entry '{}': {}", util::printable(path), why));
}

// A relative path of non-empty components, none "." or "..", without NUL bytes.
bool plain_path(std::string_view p) {
  if (p.empty() || p.size() > k_max_path || p.front() == '/' ||
      p.find('\0') != std::string_view::npos) {
    return false;
  }
  size_t start = 0;
  while (true) {
    size_t slash = p.find('/', start);
    std::string_view c =
        p.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (c.empty() || c == "." || c == "..") {
      return false;
    }
    if (slash == std::string_view::npos) {
      return true;
    }
    start = slash + 1;
  }
}

class Writer {
public:
  void u8(uint8_t v) { m_out.push_back(static_cast<char>(v)); }
  void u32(uint32_t v) { put(&v, 4); }
  void u64(uint64_t v) { put(&v, 8); }
  void bytes(std::string_view s) { m_out.append(s); }
  void str(std::string_view s) {
    u32(static_cast<uint32_t>(s.size()));
    bytes(s);
  }
  void hash(const Hash& h) { m_out.append(reinterpret_cast<const char*>(h.data()), h.size()); }
  std::string& out() { return m_out; }

private:
  void put(const void* v, size_t n) {
    // Little-endian on every host this builds for (x86-64, arm64).
    static_assert(std::endian::native == std::endian::little);
    m_out.append(static_cast<const char*>(v), n);
  }
  std::string m_out;
};

class Reader {
public:
  explicit Reader(std::string_view in) : m_in(in) {}
  uint8_t u8() { return static_cast<uint8_t>(take(1)[0]); }
  uint32_t u32() {
    uint32_t v = 0;
    std::memcpy(&v, take(4).data(), 4);
    return v;
  }
  uint64_t u64() {
    uint64_t v = 0;
    std::memcpy(&v, take(8).data(), 8);
    return v;
  }
  std::string_view bytes(size_t n) { return take(n); }
  std::string_view str(uint32_t max, const char* what) {
    uint32_t n = u32();
    if (n > max) {
      bad(fmt::format("{} of {} bytes (at most {})", what, n, max));
    }
    return take(n);
  }
  Hash hash() {
    Hash h;
    std::memcpy(h.data(), take(32).data(), 32);
    return h;
  }
  // A count that is within max, and for which the rest of the body holds at least
  // min_each bytes per item: checked before anything is allocated for it.
  uint64_t count(uint64_t n, uint64_t max, uint64_t min_each, const char* what) {
    if (n > max) {
      bad(fmt::format("{} {} (at most {})", n, what, max));
    }
    if (n * min_each > left()) {
      bad(fmt::format("{} {} declared, but the index ends first", n, what));
    }
    return n;
  }
  size_t left() const { return m_in.size() - m_pos; }

private:
  std::string_view take(size_t n) {
    if (n > left()) {
      bad("truncated");
    }
    std::string_view v = m_in.substr(m_pos, n);
    m_pos += n;
    return v;
  }
  std::string_view m_in;
  size_t m_pos = 0;
};

// The rules that do not concern the byte layout, checked for what encode writes and for
// what parse read.
// A hard link names an earlier file entry (entries are in path order, so one before it) that
// is not itself a hard link, and has its mode and mtime: one file under two names.
void check_hardlink(const Index& index, const Entry& e) {
  if (e.type != archive::EntryType::file || e.size != 0 || !e.chunks.empty()) {
    bad_entry(e.path, "a hard link with content of its own, or of other than a file");
  }
  const Entry* first = index.entries.data();
  const Entry* self = &e;
  const Entry* it = std::lower_bound(first, self, e.hardlink,
                                     [](const Entry& a, const std::string& p) { return a.path < p; });
  if (it == self || it->path != e.hardlink || it->type != archive::EntryType::file ||
      !it->hardlink.empty()) {
    bad_entry(e.path, fmt::format("a hard link to '{}', which is not an earlier file entry",
                                  util::printable(e.hardlink)));
  }
  if (it->mode != e.mode || it->mtime_ns != e.mtime_ns) {
    bad_entry(e.path, "a hard link whose mode or mtime is not its file's");
  }
}

void validate(const Index& index) {
  if (index.scope.empty() || index.scope.size() > k_max_scope) {
    bad("its scope is empty or too long");
  }
  if (index.packs.size() > k_max_packs) {
    bad(fmt::format("{} packs (at most {})", index.packs.size(), k_max_packs));
  }
  if (index.entries.size() > k_max_entries) {
    bad(fmt::format("{} entries (at most {})", index.entries.size(), k_max_entries));
  }
  uint64_t frames = 0;
  for (size_t p = 0; p < index.packs.size(); ++p) {
    const PackRef& pack = index.packs[p];
    frames += pack.frames.size();
    if (frames > k_max_frames) {
      bad(fmt::format("more than {} frames", k_max_frames));
    }
    if (pack.size == 0 || pack.size > k_max_pack_size || pack.frames.empty()) {
      bad(fmt::format("pack {} has size {} and {} frames", hex(pack.id), pack.size,
                      pack.frames.size()));
    }
    uint64_t at = 0;
    for (const Frame& f : pack.frames) {
      if (f.offset != at || f.compressed == 0 || f.size == 0 || f.size > k_max_frame_content ||
          f.compressed > ZSTD_compressBound(f.size)) {
        bad(fmt::format("pack {}: a frame at {} of {} bytes holding {} does not follow its "
                        "predecessor or is out of bounds",
                        hex(pack.id), f.offset, f.compressed, f.size));
      }
      at += f.compressed;
    }
    if (at != pack.size) {
      bad(fmt::format("pack {}: its frames end at {}, not at its size {}", hex(pack.id), at,
                      pack.size));
    }
  }
  std::vector<bool> used(index.packs.size(), false);
  // Chunk ranges, to find two that overlap without being the same chunk.
  std::vector<std::tuple<uint32_t, uint32_t, uint32_t, uint32_t, const Hash*>> ranges;
  uint64_t chunks = 0;
  const std::string* previous = nullptr;
  for (const Entry& e : index.entries) {
    if (!plain_path(e.path)) {
      bad_entry(e.path, "not a plain relative path");
    }
    if (previous != nullptr && !(*previous < e.path)) {
      bad_entry(e.path, "out of order or a duplicate");
    }
    previous = &e.path;
    if ((e.mode & ~01777U) != 0) {
      bad_entry(e.path, fmt::format("mode {:o}", e.mode));
    }
    if (e.type != archive::EntryType::file && (e.size != 0 || !e.chunks.empty())) {
      bad_entry(e.path, "content on a directory or symlink");
    }
    if ((e.type == archive::EntryType::symlink) != !e.link_target.empty()) {
      bad_entry(e.path, "a link target on other than a symlink, or a symlink without one");
    }
    if (e.link_target.size() > k_max_path || e.link_target.find('\0') != std::string::npos) {
      bad_entry(e.path, "its link target is too long or holds a NUL byte");
    }
    if (!e.hardlink.empty()) {
      check_hardlink(index, e);
    }
    chunks += e.chunks.size();
    if (chunks > k_max_chunks) {
      bad(fmt::format("more than {} chunks", k_max_chunks));
    }
    uint64_t sum = 0;
    for (const ChunkRef& c : e.chunks) {
      if (c.pack >= index.packs.size()) {
        bad_entry(e.path, fmt::format("a chunk in pack {} of {}", c.pack, index.packs.size()));
      }
      const PackRef& pack = index.packs[c.pack];
      if (c.frame >= pack.frames.size()) {
        bad_entry(e.path, fmt::format("a chunk in frame {} of {} of pack {}", c.frame,
                                      pack.frames.size(), hex(pack.id)));
      }
      if (c.length == 0 || uint64_t{c.offset} + c.length > pack.frames[c.frame].size) {
        bad_entry(e.path, fmt::format("a chunk at {}+{} past the end of frame {} of pack {}",
                                      c.offset, c.length, c.frame, hex(pack.id)));
      }
      used[c.pack] = true;
      sum += c.length;
      ranges.emplace_back(c.pack, c.frame, c.offset, c.length, &c.hash);
    }
    if (sum != e.size) {
      bad_entry(e.path, fmt::format("its chunks hold {} bytes, its size is {}", sum, e.size));
    }
  }
  for (size_t p = 0; p < used.size(); ++p) {
    if (!used[p]) {
      bad(fmt::format("pack {} is listed but holds no chunk of it", hex(index.packs[p].id)));
    }
  }
  std::sort(ranges.begin(), ranges.end(), [](const auto& a, const auto& b) {
    return std::tie(std::get<0>(a), std::get<1>(a), std::get<2>(a), std::get<3>(a)) <
           std::tie(std::get<0>(b), std::get<1>(b), std::get<2>(b), std::get<3>(b));
  });
  for (size_t i = 1; i < ranges.size(); ++i) {
    const auto& [pa, fa, oa, la, ha] = ranges[i - 1];
    const auto& [pb, fb, ob, lb, hb] = ranges[i];
    if (pa != pb || fa != fb) {
      continue;
    }
    if (oa == ob && la == lb) {
      if (*ha != *hb) {
        bad(fmt::format("one chunk of pack {} with two hashes", hex(index.packs[pa].id)));
      }
      continue;
    }
    if (uint64_t{oa} + la > ob) {
      bad(fmt::format("overlapping chunks {}+{} and {}+{} in frame {} of pack {}", oa, la, ob, lb,
                      fa, hex(index.packs[pa].id)));
    }
  }
}

} // namespace

std::string hex(const Hash& h) {
  return util::to_hex(h.data(), h.size());
}

std::string encode(const Index& index) {
  validate(index);
  Writer w;
  w.bytes(k_index_magic);
  w.str(index.scope);
  w.u32(static_cast<uint32_t>(index.packs.size()));
  for (const PackRef& p : index.packs) {
    w.hash(p.id);
    w.u64(p.size);
    w.u32(static_cast<uint32_t>(p.frames.size()));
    for (const Frame& f : p.frames) {
      w.u32(f.compressed);
      w.u32(f.size);
    }
  }
  w.u32(static_cast<uint32_t>(index.entries.size()));
  for (const Entry& e : index.entries) {
    w.str(e.path);
    bool linked = !e.hardlink.empty();
    w.u8(linked                                   ? 3
         : e.type == archive::EntryType::file      ? 0
         : e.type == archive::EntryType::directory ? 1
                                                   : 2);
    w.u32(e.mode);
    w.u64(static_cast<uint64_t>(e.mtime_ns));
    if (linked) {
      w.str(e.hardlink);
    } else if (e.type == archive::EntryType::file) {
      w.u64(e.size);
      w.u32(static_cast<uint32_t>(e.chunks.size()));
      for (const ChunkRef& c : e.chunks) {
        w.u32(c.pack);
        w.u32(c.frame);
        w.u32(c.offset);
        w.u32(c.length);
        w.hash(c.hash);
      }
    } else if (e.type == archive::EntryType::symlink) {
      w.str(e.link_target);
    }
  }
  const std::string& body = w.out();
  if (body.size() > k_max_index_body) {
    bad(fmt::format("{} bytes (at most {})", body.size(), k_max_index_body));
  }
  std::string out(ZSTD_compressBound(body.size()), '\0');
  size_t n = ZSTD_compress(out.data(), out.size(), body.data(), body.size(), 6);
  if (ZSTD_isError(n) != 0) {
    throw Error(fmt::format("unable to compress an index: {}", ZSTD_getErrorName(n)));
  }
  out.resize(n);
  if (out.size() > k_max_index_object) {
    bad(fmt::format("{} compressed bytes (at most {})", out.size(), k_max_index_object));
  }
  return out;
}

Index parse_body(std::string_view body, std::string_view expected_scope) {
  Reader r(body);
  if (body.substr(0, k_index_magic.size()) != k_index_magic) {
    bad("not an ephemera-cas-index/1 object");
  }
  r.bytes(k_index_magic.size());
  Index index;
  index.scope = r.str(k_max_scope, "a scope");
  if (index.scope != expected_scope) {
    bad(fmt::format("it belongs to scope '{}', not '{}'", util::printable(index.scope),
                    util::printable(expected_scope)));
  }
  uint64_t packs = r.count(r.u32(), k_max_packs, 44, "packs");
  index.packs.resize(packs);
  uint64_t frames = 0;
  for (PackRef& p : index.packs) {
    p.id = r.hash();
    p.size = r.u64();
    uint64_t n = r.count(r.u32(), k_max_frames - frames, 8, "frames");
    frames += n;
    p.frames.resize(n);
    uint64_t at = 0;
    for (Frame& f : p.frames) {
      f.offset = at;
      f.compressed = r.u32();
      f.size = r.u32();
      at += f.compressed;
    }
  }
  uint64_t entries = r.count(r.u32(), k_max_entries, 17, "entries");
  index.entries.resize(entries);
  uint64_t chunks = 0;
  for (Entry& e : index.entries) {
    e.path = r.str(k_max_path, "a path");
    uint8_t type = r.u8();
    if (type > 3) {
      bad_entry(e.path, fmt::format("unknown type {}", type));
    }
    e.type = type == 0 || type == 3 ? archive::EntryType::file
             : type == 1            ? archive::EntryType::directory
                                    : archive::EntryType::symlink;
    e.mode = r.u32();
    e.mtime_ns = static_cast<int64_t>(r.u64());
    if (type == 3) {
      e.hardlink = r.str(k_max_path, "a hard link's file");
      if (e.hardlink.empty()) {
        bad_entry(e.path, "a hard link to no file");
      }
    } else if (e.type == archive::EntryType::file) {
      e.size = r.u64();
      uint64_t n = r.count(r.u32(), k_max_chunks - chunks, 48, "chunks");
      chunks += n;
      e.chunks.resize(n);
      for (ChunkRef& c : e.chunks) {
        c.pack = r.u32();
        c.frame = r.u32();
        c.offset = r.u32();
        c.length = r.u32();
        c.hash = r.hash();
      }
    } else if (e.type == archive::EntryType::symlink) {
      e.link_target = r.str(k_max_path, "a link target");
      if (e.link_target.empty()) {
        bad_entry(e.path, "a symlink without a target");
      }
    }
  }
  if (r.left() != 0) {
    bad(fmt::format("{} bytes after its last entry", r.left()));
  }
  validate(index);
  return index;
}

Index parse(std::string_view object, std::string_view expected_scope) {
  if (object.size() > k_max_index_object) {
    bad(fmt::format("{} bytes (at most {})", object.size(), k_max_index_object));
  }
  std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> d(ZSTD_createDCtx(), ZSTD_freeDCtx);
  // Decompressed in steps into a body that may grow to the bound, never past it.
  std::string body;
  ZSTD_inBuffer in{object.data(), object.size(), 0};
  while (true) {
    if (body.size() >= k_max_index_body) {
      bad(fmt::format("more than {} bytes once decompressed", k_max_index_body));
    }
    size_t step =
        std::min<size_t>(std::max<size_t>(body.size(), 1 << 20), k_max_index_body - body.size());
    size_t old = body.size();
    body.resize(old + step);
    ZSTD_outBuffer out{body.data() + old, step, 0};
    size_t hint = ZSTD_decompressStream(d.get(), &out, &in);
    body.resize(old + out.pos);
    if (ZSTD_isError(hint) != 0) {
      bad(fmt::format("not a zstd stream: {}", ZSTD_getErrorName(hint)));
    }
    if (in.pos == in.size && out.pos < step) {
      // All input read and the decoder wanted no more room: the end, or a truncated frame.
      if (hint != 0) {
        bad("its zstd stream is truncated");
      }
      break;
    }
  }
  return parse_body(body, expected_scope);
}

} // namespace ephemera::cas
