// A content-addressed state written out as a plain archive (`ephemera export`): the restore's
// reading side, with a tar writer where the restore has its staging.
#include "cas/cas.hpp"
#include "util/error.hpp"
#include "util/log.hpp"

#include <fmt/format.h>

#include <chrono>

namespace ephemera::cas {

ExportResult export_tar(store::Backend& backend, const Scope& scope, const Index& index,
                        uint64_t max_bytes, archive::TarWriter& out,
                        const archive::ProgressFn& progress) {
  if (index.scope != scope.id()) {
    throw util::Error(fmt::format("the index belongs to scope '{}', not '{}'",
                                  util::printable(index.scope), util::printable(scope.id())));
  }
  uint64_t total = 0;
  for (const Entry& e : index.entries) {
    total += e.size;
  }
  if (total > max_bytes) {
    throw util::ArchiveError(
        fmt::format("the index holds {} bytes of content, more than the {} its manifest declares",
                    total, max_bytes));
  }
  ChunkReader reader(backend, scope.prefix() + "packs/", index);
  ExportResult r;
  auto start = std::chrono::steady_clock::now();
  auto last = start;
  for (const Entry& e : index.entries) {
    size_t next = 0;
    archive::StreamEntry s{e.path,        e.type, e.mode, e.mtime_ns, e.size,
                           e.link_target, e.hardlink};
    out.add(s, [&]() -> std::string_view {
      if (next == e.chunks.size()) {
        return {};
      }
      return reader.chunk(e.chunks[next++], e.path);
    });
    r.files += e.type == archive::EntryType::file ? 1 : 0;
    r.directories += e.type == archive::EntryType::directory ? 1 : 0;
    r.symlinks += e.type == archive::EntryType::symlink ? 1 : 0;
    r.bytes += e.size;
    auto now = std::chrono::steady_clock::now();
    if (progress && now - last >= std::chrono::milliseconds(250)) {
      last = now;
      progress({r.files, r.bytes, std::chrono::duration<double>(now - start).count()});
    }
  }
  r.fetched_bytes = reader.fetched_bytes();
  return r;
}

} // namespace ephemera::cas
