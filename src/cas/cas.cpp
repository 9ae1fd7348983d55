// Save and restore of one content-addressed state: the save (walk, chunk, dedup against the
// base index, pack, index written last) and the restore (every chunk verified as it streams
// into the archive's staging). Both sides are kept in one file because they share the scope
// rules and the chunk reader, and reading them side by side is how the format is checked.

#include "cas/cas.hpp"

#include "cas/gc.hpp"
#include "store/keys.hpp"
#include "util/error.hpp"
#include "util/fault.hpp"
#include "util/fs.hpp"
#include "util/log.hpp"
#include "util/sha256.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <memory>
#include <sys/stat.h>
#include <unistd.h>
#include <unordered_map>

namespace ephemera::cas {

namespace fs = std::filesystem;
using archive::EntryType;
using util::ArchiveError;
using util::Error;

namespace {

struct HashKey {
  size_t operator()(const Hash& h) const {
    size_t v = 0;
    std::memcpy(&v, h.data(), sizeof v);
    return v;
  }
};

Hash sha256(const char* data, size_t size) {
  util::Sha256 h;
  h.update(data, size);
  return h.finish();
}

int64_t mtime_of(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

int64_t ctime_of(const struct stat& st) {
  return static_cast<int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec;
}

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// One save: the chunks it knows (the base's and its own new ones) and the index it builds.
class Saver {
public:
  Saver(store::Backend& backend, const Scope& scope, const Index* base, const SaveOptions& options)
      : m_backend(backend), m_scope(scope), m_options(options), m_chunker(options.sizes),
        m_writer(backend, scope.prefix() + "packs/", options.pack), m_base(base) {
    m_index.scope = scope.id();
    if (m_base != nullptr) {
      m_base_slot.assign(m_base->packs.size(), UINT32_MAX);
      for (const Entry& e : m_base->entries) {
        for (const ChunkRef& c : e.chunks) {
          m_base_chunks.emplace(c.hash, &c);
        }
      }
    }
    m_buffer.resize(4 * options.sizes.max);
  }

  void add(const archive::PackItem& item) {
    Entry e;
    e.path = item.name;
    e.type = item.type;
    e.mode = item.type == EntryType::symlink ? 0777 : item.mode & 01777; // never set-id bits
    e.mtime_ns = item.mtime_ns;
    if (item.type == EntryType::symlink) {
      e.link_target = item.link_target;
      ++m_result.symlinks;
    } else if (item.type == EntryType::directory) {
      ++m_result.directories;
    } else if (const Entry* file = linked_file(item)) {
      // A second name of a file saved already: saved as a hard link, as an archive holds it.
      e.hardlink = file->path;
      e.mode = file->mode;
      e.mtime_ns = file->mtime_ns;
      ++m_result.files;
    } else if (!add_file(item, e)) {
      return;
    } else if (item.nlink > 1) {
      m_links.emplace(std::make_pair(item.dev, item.ino), m_index.entries.size());
    }
    m_index.entries.push_back(std::move(e));
    if (m_options.progress) {
      auto now = std::chrono::steady_clock::now();
      if (now - m_last_progress >= std::chrono::milliseconds(250)) {
        m_last_progress = now;
        m_options.progress({m_result.files, m_result.unpacked_bytes, since(m_started)});
      }
    }
  }

  SaveResult finish() {
    m_writer.finish(m_index);
    for (const PackRef& p : m_index.packs) {
      m_result.stored_bytes += p.size;
    }
    std::string object = encode(m_index);
    m_result.index_sha256 = util::sha256_hex(object);
    m_result.index_key = store::cas_index_key(m_scope.id(), m_result.index_sha256);
    m_result.index_bytes = object.size();
    store::StringSource source(std::move(object));
    m_backend.put(m_result.index_key, source);
    util::fault_point("cas-index-written");
    // A reused pack that is gone (removed by gc since the base was read) would make this
    // state unrestorable: the caller saves again without a base. Checked once the index is
    // in the store, where a gc that runs now sees it (cas/gc.hpp, PackRecheck) and keeps the
    // packs it references.
    for (uint32_t p = 0; p < m_base_slot.size(); ++p) {
      if (m_base_slot[p] == UINT32_MAX) {
        continue;
      }
      const PackRef& ref = m_index.packs[m_base_slot[p]];
      auto info = m_backend.stat(pack_key(m_scope.prefix() + "packs/", ref.id));
      if (!info || info->size != ref.size) {
        throw BaseGone();
      }
    }
    m_result.pack_bytes = m_writer.uploaded_bytes();
    m_result.packs = m_writer.uploaded_packs();
    m_result.base_used = m_base != nullptr;
    return m_result;
  }

  struct BaseGone {};

private:
  // The file entry of this save that item is another name of (the same device and inode,
  // met earlier in path order), if any.
  const Entry* linked_file(const archive::PackItem& item) const {
    if (item.nlink < 2) {
      return nullptr;
    }
    auto it = m_links.find(std::make_pair(item.dev, item.ino));
    return it == m_links.end() ? nullptr : &m_index.entries[it->second];
  }

  // Reads the file once, chunk by chunk; false when it is gone and may be.
  bool add_file(const archive::PackItem& item, Entry& e) {
    if (m_options.seen != nullptr && reuse_seen(item, e)) {
      return true;
    }
    util::Fd fd(::open(item.source.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (fd.fd < 0) {
      if (errno == ENOENT && item.may_change) {
        return false;
      }
      throw ArchiveError(
          fmt::format("unable to read {}: {}{}", item.source, std::strerror(errno),
                      errno == ENOENT ? " (it disappeared while it was being saved)" : ""));
    }
    struct stat st {};
    if (::fstat(fd.fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      throw ArchiveError(fmt::format("{} is no longer a regular file", item.source));
    }
    if (!item.may_change &&
        (static_cast<uint64_t>(st.st_size) != item.size || mtime_of(st) != item.mtime_ns)) {
      changed(item);
    }
    e.mtime_ns = mtime_of(st);
    size_t filled = 0;
    bool eof = false;
    uint64_t total = 0;
    bool whole = static_cast<uint64_t>(st.st_size) < m_options.sizes.whole_below;
    while (true) {
      if (!eof && filled < m_options.sizes.max * 2) {
        ssize_t n = util::read_full(fd.fd, m_buffer.data() + filled, m_buffer.size() - filled);
        if (n < 0) {
          throw ArchiveError(
              fmt::format("unable to read {}: {}", item.source, std::strerror(errno)));
        }
        filled += static_cast<size_t>(n);
        eof = filled < m_buffer.size();
      }
      if (filled == 0) {
        break;
      }
      size_t at = 0;
      // Whole: a small file is one chunk (it fits the buffer unless it grew meanwhile).
      while (filled - at > 0 && (eof || filled - at >= m_options.sizes.max)) {
        const auto* p = reinterpret_cast<const uint8_t*>(m_buffer.data() + at);
        size_t n = whole && eof ? filled - at : m_chunker.cut(p, filled - at);
        e.chunks.push_back(store_chunk(m_buffer.data() + at, n));
        at += n;
        total += n;
      }
      std::memmove(m_buffer.data(), m_buffer.data() + at, filled - at);
      filled -= at;
      if (eof && filled == 0) {
        break;
      }
    }
    struct stat after {};
    bool same = ::fstat(fd.fd, &after) == 0 && total == static_cast<uint64_t>(st.st_size) &&
                mtime_of(after) == mtime_of(st) && ctime_of(after) == ctime_of(st);
    if (!item.may_change && (!same || total != item.size || mtime_of(after) != item.mtime_ns)) {
      changed(item);
    }
    e.size = total;
    ++m_result.files;
    ++m_result.files_read;
    m_result.unpacked_bytes += total;
    if (m_options.record != nullptr && same) {
      (*m_options.record)[item.source] = seen_of(after, e);
    }
    return true;
  }

  static Seen seen_of(const struct stat& st, const Entry& e) {
    Seen s{static_cast<uint64_t>(st.st_dev),
           static_cast<uint64_t>(st.st_ino),
           e.size,
           mtime_of(st),
           ctime_of(st),
           {}};
    s.chunks.reserve(e.chunks.size());
    for (const ChunkRef& c : e.chunks) {
      s.chunks.push_back(c.hash);
    }
    return s;
  }

  // The file's chunks without reading it, when it is as it was seen and every chunk is known.
  bool reuse_seen(const archive::PackItem& item, Entry& e) {
    auto it = m_options.seen->find(item.source);
    struct stat st {};
    if (it == m_options.seen->end() || ::lstat(item.source.c_str(), &st) != 0 ||
        !S_ISREG(st.st_mode)) {
      return false;
    }
    const Seen& s = it->second;
    if (s.dev != static_cast<uint64_t>(st.st_dev) || s.ino != static_cast<uint64_t>(st.st_ino) ||
        s.size != static_cast<uint64_t>(st.st_size) || s.mtime_ns != mtime_of(st) ||
        s.ctime_ns != ctime_of(st) || s.size != item.size) {
      return false;
    }
    // Every chunk known, and their lengths the file's size, before any is taken: taking one
    // adds its pack to the index.
    uint64_t total = 0;
    for (const Hash& h : s.chunks) {
      if (auto n = m_new_chunks.find(h); n != m_new_chunks.end()) {
        total += n->second.length;
      } else if (auto b = m_base_chunks.find(h); b != m_base_chunks.end()) {
        total += b->second->length;
      } else {
        return false;
      }
    }
    if (total != s.size) {
      return false;
    }
    std::vector<ChunkRef> refs;
    refs.reserve(s.chunks.size());
    for (const Hash& h : s.chunks) {
      refs.push_back(*known(h));
    }
    e.chunks = std::move(refs);
    e.size = total;
    e.mtime_ns = mtime_of(st);
    ++m_result.files;
    m_result.unpacked_bytes += total;
    if (m_options.record != nullptr) {
      (*m_options.record)[item.source] = s;
    }
    return true;
  }

  [[noreturn]] static void changed(const archive::PackItem& item) {
    throw ArchiveError(fmt::format("{} changed while it was being saved; nothing torn is stored "
                                   "(mark its rule with '%' if it may change during a save)",
                                   item.source));
  }

  // The chunk of this hash where this save already has it (new, or the base's), if anywhere.
  std::optional<ChunkRef> known(const Hash& h) {
    if (auto it = m_new_chunks.find(h); it != m_new_chunks.end()) {
      return it->second;
    }
    if (auto it = m_base_chunks.find(h); it != m_base_chunks.end()) {
      ChunkRef ref = *it->second;
      uint32_t& slot = m_base_slot[ref.pack];
      if (slot == UINT32_MAX) {
        slot = static_cast<uint32_t>(m_index.packs.size());
        m_index.packs.push_back(m_base->packs[ref.pack]);
      }
      ref.pack = slot;
      m_new_chunks.emplace(h, ref);
      return ref;
    }
    return std::nullopt;
  }

  ChunkRef store_chunk(const char* data, size_t size) {
    Hash h = sha256(data, size);
    if (auto ref = known(h)) {
      return *ref;
    }
    ChunkRef ref = m_writer.add(h, data, size, m_index);
    m_result.new_bytes += size;
    m_new_chunks.emplace(h, ref);
    return ref;
  }

  store::Backend& m_backend;
  const Scope& m_scope;
  const SaveOptions& m_options;
  Chunker m_chunker;
  PackWriter m_writer;
  const Index* m_base;
  Index m_index;
  SaveResult m_result;
  std::unordered_map<Hash, const ChunkRef*, HashKey> m_base_chunks;
  std::vector<uint32_t> m_base_slot; // base pack -> its slot in m_index.packs, once used
  std::unordered_map<Hash, ChunkRef, HashKey> m_new_chunks;
  std::map<std::pair<uint64_t, uint64_t>, size_t> m_links; // (dev, ino) -> its file entry
  std::string m_buffer;
  std::chrono::steady_clock::time_point m_started = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point m_last_progress = m_started;
};

} // namespace

std::string encode_seen(const SeenFiles& seen) {
  std::string out = "ephemera-cas-seen/1\n";
  auto put = [&out](uint64_t v) { out.append(reinterpret_cast<const char*>(&v), 8); };
  put(seen.size());
  for (const auto& [path, s] : seen) {
    put(path.size());
    out += path;
    put(s.dev);
    put(s.ino);
    put(s.size);
    put(static_cast<uint64_t>(s.mtime_ns));
    put(static_cast<uint64_t>(s.ctime_ns));
    put(s.chunks.size());
    for (const Hash& h : s.chunks) {
      out.append(reinterpret_cast<const char*>(h.data()), h.size());
    }
  }
  return out;
}

SeenFiles parse_seen(std::string_view in) {
  std::string_view magic = "ephemera-cas-seen/1\n";
  size_t at = 0;
  auto take = [&](size_t n) {
    if (n > in.size() - at) {
      throw Error("the record of seen files is truncated");
    }
    std::string_view v = in.substr(at, n);
    at += n;
    return v;
  };
  auto get = [&]() {
    uint64_t v = 0;
    std::memcpy(&v, take(8).data(), 8);
    return v;
  };
  if (in.substr(0, magic.size()) != magic) {
    throw Error("not a record of seen files");
  }
  take(magic.size());
  uint64_t n = get();
  if (n > k_max_entries) {
    throw Error("the record of seen files is too large");
  }
  SeenFiles out;
  uint64_t chunks = 0;
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t len = get();
    if (len > k_max_path) {
      throw Error("a path in the record of seen files is too long");
    }
    std::string path(take(len));
    Seen s;
    s.dev = get();
    s.ino = get();
    s.size = get();
    s.mtime_ns = static_cast<int64_t>(get());
    s.ctime_ns = static_cast<int64_t>(get());
    uint64_t c = get();
    chunks += c;
    if (chunks > k_max_chunks || c * 32 > in.size() - at) {
      throw Error("the record of seen files is too large or truncated");
    }
    s.chunks.resize(c);
    for (Hash& h : s.chunks) {
      std::memcpy(h.data(), take(32).data(), 32);
    }
    out[path] = std::move(s);
  }
  if (at != in.size()) {
    throw Error("bytes after the record of seen files");
  }
  return out;
}

std::string Scope::id() const {
  return store::cas_scope_id(repository, target, name, trusted, origin);
}

std::string Scope::prefix() const {
  return store::cas_prefix(id());
}

SaveResult save(store::Backend& backend, const Scope& scope,
                const std::vector<archive::PackItem>& items, const Index* base,
                const SaveOptions& options) {
  auto t0 = std::chrono::steady_clock::now();
  std::vector<const archive::PackItem*> sorted;
  sorted.reserve(items.size());
  for (const auto& i : items) {
    sorted.push_back(&i);
  }
  // Path order: the packs hold new content in the order a restore writes it.
  std::sort(sorted.begin(), sorted.end(),
            [](const auto* a, const auto* b) { return a->name < b->name; });
  for (size_t i = 1; i < sorted.size(); ++i) {
    if (sorted[i]->name == sorted[i - 1]->name) {
      throw ArchiveError(fmt::format("'{}' is listed twice", util::printable(sorted[i]->name)));
    }
  }
  // Never across scopes: a base of another scope (another trust level) is not a base.
  const Index* own = base != nullptr && base->scope == scope.id() ? base : nullptr;
  // A base whose packs are mostly dead content, or too many: this save is a new base.
  bool rebased = own != nullptr && should_rebase(*own, options.pack.pack_bytes);
  if (rebased) {
    own = nullptr;
  }
  for (int attempt = 0;; ++attempt) {
    try {
      Saver saver(backend, scope, attempt == 0 ? own : nullptr, options);
      for (const auto* i : sorted) {
        saver.add(*i);
      }
      SaveResult r = saver.finish();
      r.rebased = rebased;
      r.seconds = since(t0);
      return r;
    } catch (const Saver::BaseGone&) {
      util::log::warn("a pack of the previous state is gone from the store: saving in full");
    }
  }
}

Index load_index(store::Backend& backend, const Scope& scope, const std::string& key,
                 const std::string& sha256, uint64_t size) {
  std::string prefix = scope.prefix() + "index/";
  if (key.rfind(prefix, 0) != 0 || !store::valid_key(key)) {
    throw ArchiveError(fmt::format("index {} lies outside its scope {}", util::printable(key),
                                   util::printable(prefix)));
  }
  if (size > k_max_index_object) {
    throw ArchiveError(fmt::format("index {} of {} bytes (at most {})", util::printable(key), size,
                                   k_max_index_object));
  }
  store::StringSink sink(size);
  backend.get(key, sink);
  if (sink.data().size() != size || util::sha256_hex(sink.data()) != sha256) {
    throw ArchiveError(fmt::format("index {} is not the one its manifest names (size or SHA-256)",
                                   util::printable(key)));
  }
  return parse(sink.data(), scope.id());
}

RestoreResult restore(store::Backend& backend, const Scope& scope, const Index& index,
                      const RestoreOptions& options) {
  if (index.scope != scope.id()) {
    throw ArchiveError(fmt::format("the index belongs to scope '{}', not '{}'",
                                   util::printable(index.scope), util::printable(scope.id())));
  }
  uint64_t total = 0;
  for (const Entry& e : index.entries) {
    total += e.size;
  }
  if (total > options.unpack.max_unpacked_bytes) {
    throw ArchiveError(fmt::format("the saved state holds {} bytes, more than the {} allowed",
                                   total, options.unpack.max_unpacked_bytes));
  }
  ChunkReader reader(backend, scope.prefix() + "packs/", index);
  archive::UnpackOptions o = options.unpack;
  // Where each file goes, as the caller's resolve decides it, for the record.
  std::unordered_map<std::string, std::string> where;
  if (options.record != nullptr) {
    o.resolve = [&where, &options](std::string_view name, EntryType type) {
      auto d = options.unpack.resolve(name, type);
      if (d && type == EntryType::file) {
        where[std::string(name)] = (d->base / d->rel).string();
      }
      return d;
    };
  }
  // Each entry straight into the staging, its chunks verified on the way: nothing is
  // serialised or hashed a second time.
  archive::EntryUnpack unpack(o);
  for (const Entry& e : index.entries) {
    size_t next = 0;
    archive::StreamEntry s{e.path,        e.type, e.mode, e.mtime_ns, e.size,
                           e.link_target, e.hardlink};
    unpack.add(s, [&]() -> std::string_view {
      if (next == e.chunks.size()) {
        return {};
      }
      return reader.chunk(e.chunks[next++], e.path);
    });
  }
  RestoreResult r;
  r.unpacked = unpack.commit();
  r.fetched_bytes = reader.fetched_bytes();
  if (options.record != nullptr) {
    for (const Entry& e : index.entries) {
      if (!e.hardlink.empty()) {
        continue; // its file's record stands for it
      }
      auto it = where.find(e.path);
      struct stat st {};
      if (it != where.end() && ::lstat(it->second.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
          static_cast<uint64_t>(st.st_size) == e.size) {
        Seen s{static_cast<uint64_t>(st.st_dev),
               static_cast<uint64_t>(st.st_ino),
               e.size,
               mtime_of(st),
               ctime_of(st),
               {}};
        for (const ChunkRef& c : e.chunks) {
          s.chunks.push_back(c.hash);
        }
        (*options.record)[it->second] = std::move(s);
      }
    }
  }
  return r;
}

} // namespace ephemera::cas
