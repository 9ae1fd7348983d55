#pragma once

#include "archive/unpack_writer.hpp"

#include <cstdint>
#include <filesystem>
#include <list>
#include <set>
#include <string>
#include <sys/stat.h>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

// The unpacker's staging transaction: where entries are made out of sight, the journal of
// what was staged, and the commit that moves it all into place or the rollback that removes
// it. Internal to src/archive; sweep_staged (archive.hpp) is its public end.
namespace ephemera::archive::detail {

// The record of the staging names an unpack makes, in a file of the caller's choosing (the
// state dir): each name is written there before it is made, so a restore killed before its
// commit or rollback leaves a list of exactly what it staged (sweep_staged removes it).
class Journal {
public:
  // An empty path: nothing is recorded.
  explicit Journal(std::filesystem::path path) : m_path(std::move(path)) {}
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Records that name is about to be made in base/rel (rel "" is base itself). The first
  // record creates the file (never through a symlink, never over another file) and is
  // fsynced with its directory; later ones are written through to the kernel, which keeps
  // them when the process is killed. Throws ArchiveError.
  void add(const std::string& base, const std::string& rel, const std::string& name);
  // After the commit or the rollback: nothing staged is left.
  void remove();

private:
  std::filesystem::path m_path;
  int m_fd = -1;
};

// A directory the unpack has reached. `fresh`: this unpack made it, inside a directory
// staged under a temporary name, so nothing in it existed before and entries are created
// under their own names; otherwise they are written under temporary names and renamed.
//
// Every directory is reached through its parent's descriptor, by name, never through a
// symlink (the job may swap a directory for a link while its own restore runs), and a
// directory opened again must be the one first seen (device and inode).
struct Dir {
  std::string physical; // where it is now, for messages
  bool fresh = false;
  struct timespec mtime {}; // of a directory that existed: put back if a failed restore touched it
  const Dir* parent = nullptr; // nullptr: an anchor's base, opened by its path
  std::string leaf;            // its name in parent now (a staged directory's staging name)
  std::string base;            // the anchor's base it is below, and the path below it
  std::string rel;
  mutable dev_t dev = 0; // as first opened (0: not yet)
  mutable ino_t ino = 0;
};

// Extraction is all-or-nothing for the paths a job sees. A directory that does not exist
// yet is made under a temporary name beside its destination, filled, and renamed into
// place at the end (one rename for a whole new tree); a file in a directory that existed is
// written under a temporary name and renamed into place at the end. Until then nothing
// appears at a destination path, and on failure (destruction before commit) everything made
// is removed. Every method throws ArchiveError, naming the entry `name` it was called for.
class Staging {
public:
  explicit Staging(std::filesystem::path journal) : m_journal(std::move(journal)) {}
  // Rolls back unless committed; removes the journal. Whoever writes into the staged
  // directories (the writer pool) must have stopped.
  ~Staging();
  Staging(const Staging&) = delete;
  Staging& operator=(const Staging&) = delete;

  // The directory base/rel (rel "" is base itself), made as needed: base and its missing
  // parents directly, anything below base staged or inside a staged directory. No existing
  // component below base is a symlink or other non-directory, nor a file or link this
  // archive placed.
  const Dir& directory(const std::string& name, const std::string& base, const std::string& rel);
  // The same for a directory entry of the archive, whose mode and times are set at commit.
  void directory_entry(const std::string& name, const std::string& base, const std::string& rel,
                       uint32_t mode, int64_t sec, long nsec);
  // The name under which the file or link `leaf` of parent (open as dirfd) is created now:
  // leaf itself in a fresh directory, else a staging name renamed to leaf at commit. final
  // (base/rel) is where it stands once committed.
  std::string place(const std::string& name, const std::string& final, const Dir& parent,
                    const FdRef& dirfd, const std::string& leaf);
  // The directory's descriptor: from the cache, or opened by name in its parent's (bases by
  // path, and kept), never through a symlink, and refused if it is not the directory it was.
  FdRef open_dir(const Dir& dir, const std::string& name);
  // Renames everything staged into place through the directories' descriptors, then sets
  // the directory entries' modes and times (on descriptors of the directories themselves).
  void commit();

private:
  // A directory entry's mode and times, set once everything is in place.
  struct DirMeta {
    const Dir* dir;
    uint32_t mode;
    int64_t sec;
    long nsec;
  };
  struct StagedFile {
    const Dir* dir;
    std::string staged;
    std::string final;
  };

  std::string stage(const Dir& dir);
  struct timespec make_base(const std::string& name, const std::string& base);
  void rollback();

  Journal m_journal;
  std::unordered_map<std::string, Dir> m_dirs; // final path -> where
  std::unordered_map<const Dir*, std::pair<FdRef, std::list<const Dir*>::iterator>> m_fds;
  std::list<const Dir*> m_lru;
  std::unordered_map<const Dir*, FdRef> m_bases; // kept open to the end
  std::vector<StagedFile> m_staged_files;
  std::vector<std::pair<Dir*, std::string>> m_staged_dirs; // staged, its final leaf
  std::vector<std::filesystem::path> m_created_dirs;
  std::set<const Dir*> m_touched; // existing directories written in
  std::vector<DirMeta> m_dir_meta;
  std::unordered_set<std::string> m_nondirs; // final paths of files and links
  bool m_committed = false;
};

} // namespace ephemera::archive::detail
