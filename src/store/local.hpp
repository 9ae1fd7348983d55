#pragma once

#include "store/backend.hpp"

#include <filesystem>

namespace ephemera::store {

// A directory: objects are files, written to a temporary name, fsynced and renamed, so
// concurrent writers of one key never corrupt each other and readers never see a part.
class LocalBackend : public Backend {
public:
  explicit LocalBackend(std::filesystem::path root);
  std::optional<ObjectInfo> stat(const std::string& key) override;
  void get(const std::string& key, Sink& sink) override;
  int open_local(const std::string& key) override;
  void get_sized(const std::string& key, uint64_t size, Sink& sink) override;
  void get_range(const std::string& key, uint64_t offset, uint64_t length, Sink& sink) override;
  void put(const std::string& key, Source& source) override;
  std::vector<ObjectInfo> list(const std::string& prefix) override;
  std::vector<ObjectInfo> leftovers(const std::string& prefix) override;
  void remove(const std::string& key) override;
  std::string url(const std::string& key) const override;

private:
  std::filesystem::path path_of(const std::string& key) const;
  std::vector<ObjectInfo> scan(const std::string& prefix, bool temps);
  std::filesystem::path m_root;
};

} // namespace ephemera::store
