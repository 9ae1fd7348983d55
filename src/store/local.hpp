#pragma once

#include "store/backend.hpp"

#include <filesystem>
#include <mutex>
#include <set>

namespace ephemera::store {

// A directory: objects are files, written to a temporary name, fsynced and renamed, so
// concurrent writers of one key never corrupt each other and readers never see a part.
//
// Confined to its root: anyone who can write into the store can plant symlinks in it, and
// gc runs as root. The root's own path is resolved once, following symlinks (the operator
// chose it, and may point it anywhere), the first time an operation needs it; its
// descriptor is held from then on. Below it every operation walks the key one component
// at a time from that descriptor and follows no symlink, neither a directory on the way
// nor the object itself: an operation that meets one fails (StoreError, permanent, naming
// it) and a listing skips it with a warning. remove() of an object that is a symlink
// removes the link, never what it names.
class LocalBackend : public Backend, public LeftoverCleaner {
public:
  explicit LocalBackend(std::filesystem::path root);
  ~LocalBackend() override;
  LocalBackend(const LocalBackend&) = delete;
  LocalBackend& operator=(const LocalBackend&) = delete;

  std::optional<ObjectInfo> stat(const std::string& key) override;
  void get(const std::string& key, Sink& sink) override;
  int open_local(const std::string& key) override;
  void get_range(const std::string& key, uint64_t offset, uint64_t length, Sink& sink) override;
  void put(const std::string& key, Source& source) override;
  std::vector<ObjectInfo> list(const std::string& prefix) override;
  void remove(const std::string& key) override;
  std::string url(const std::string& key) const override;
  LeftoverCleaner* leftover_cleaner() override { return this; }

  // The temporary files of interrupted puts.
  std::vector<Leftover> leftovers(const std::string& prefix) override;
  // Only a temporary file's name is removed this way, never an object's.
  void remove_leftover(const Leftover& leftover) override;

private:
  class Parents;
  // The root's descriptor; -1 while the root does not exist (unless create, which makes it).
  // Throws StoreError when it cannot be opened for another reason.
  int root_fd(bool create);
  // The directories above key's object, opened from the root; see Parents.
  Parents parents(const std::string& key, const char* what, bool create);
  std::filesystem::path path_of(const std::string& key) const;
  std::vector<ObjectInfo> scan(const std::string& prefix, bool temps);
  void warn_once(const std::string& message);

  std::filesystem::path m_root;
  std::mutex m_mutex; // guards m_root_fd's opening and m_warned
  int m_root_fd = -1;
  std::set<std::string> m_warned;
};

} // namespace ephemera::store
