#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// Storage backends stay dumb: key-addressed, streamed primitives. Manifests, digests,
// lookup and retention live once, above them (catalog.hpp).
namespace ephemera::store {

// Whether key is a well-formed object key, as every key must be where it enters the
// program (built by the catalog, read from a manifest, listed by a server): not empty, at
// most 1024 bytes, no leading '/', '/'-separated components none of which is empty, "." or
// "..", and no byte below 0x20 or 0x7f. A key that passes names the same object on every
// backend: nothing between here and the store may rewrite it.
bool valid_key(std::string_view key);
// Throws util::StoreError(permanent) naming the key (escaped) and what is wrong with it.
void check_key(std::string_view key, std::string_view what = "object key");
// A listing prefix: "" (everything), or a key with at most one '/' after it ("v1/",
// "v1/repo/e3/key-"), so that every key it can list lies inside it. Throws as check_key.
void check_prefix(std::string_view prefix);

// The most a manifest or an invalidation marker may be: what the catalog reads into memory.
constexpr uint64_t k_max_small_object = 1 << 20;

// Told the bytes a transfer has moved so far (they only grow, but for a retry from the start).
using TransferProgress = std::function<void(uint64_t)>;

struct ObjectInfo {
  std::string key;
  uint64_t size = 0;
  int64_t mtime = 0; // seconds since the epoch
};

// Receives an object's bytes.
class Sink {
public:
  virtual ~Sink() = default;
  virtual void write(const char* data, size_t size) = 0;
  // The most this sink accepts: a backend refuses a larger object before its first byte
  // where it can tell, and stops the transfer as soon as the bound is passed.
  virtual uint64_t max_bytes() const { return UINT64_MAX; }
};

// Gives an object's bytes; rewindable so a failed upload can be retried.
class Source {
public:
  virtual ~Source() = default;
  virtual uint64_t size() const = 0;
  // Up to max bytes into buf; 0 at the end.
  virtual size_t read(char* buf, size_t max) = 0;
  virtual void rewind() = 0;
};

class Backend {
public:
  virtual ~Backend() = default;
  virtual std::optional<ObjectInfo> stat(const std::string& key) = 0;
  // Throws StoreError(not_found) when the object does not exist.
  virtual void get(const std::string& key, Sink& sink) = 0;
  // Bytes [offset, offset + length) of the object. Throws StoreError(not_found) when it
  // does not exist and StoreError(permanent) when the range reaches past its end.
  virtual void get_range(const std::string& key, uint64_t offset, uint64_t length, Sink& sink) = 0;
  // The whole object, whose size the caller knows (an archive, from its manifest): a backend
  // that can fetch ranges in parallel does, still delivering the bytes to sink in order. An
  // object of another size is an error (permanent) wherever the backend can tell.
  virtual void get_sized(const std::string& key, uint64_t size, Sink& sink) {
    (void)size;
    get(key, sink);
  }
  // Readers see the old object or the new one, never a part.
  virtual void put(const std::string& key, Source& source) = 0;
  // Every object whose key starts with prefix, sorted by key.
  virtual std::vector<ObjectInfo> list(const std::string& prefix) = 0;
  // Removing a missing object is not an error.
  virtual void remove(const std::string& key) = 0;
  // Pieces of writes that were interrupted (a killed process), which list() never shows,
  // for gc to remove once they are old; remove() takes their keys.
  virtual std::vector<ObjectInfo> leftovers(const std::string& prefix) {
    (void)prefix;
    return {};
  }
  // The object opened read-only where it lies, when the backend is a directory on this
  // machine (the caller closes it); -1 for backends elsewhere. Throws StoreError(not_found).
  virtual int open_local(const std::string& key) {
    (void)key;
    return -1;
  }
  // Where the object is, for people: file:///... or s3://bucket/key. Never credentials.
  virtual std::string url(const std::string& key) const = 0;
  // A time-limited HTTPS link where the backend has one.
  virtual std::optional<std::string> presign(const std::string& key,
                                             std::chrono::seconds ttl) const {
    (void)key;
    (void)ttl;
    return std::nullopt;
  }
};

class FileSource : public Source {
public:
  explicit FileSource(const std::filesystem::path& path);
  ~FileSource() override;
  uint64_t size() const override { return m_size; }
  size_t read(char* buf, size_t max) override;
  void rewind() override;

private:
  std::filesystem::path m_path;
  int m_fd = -1;
  uint64_t m_size = 0;
};

class StringSource : public Source {
public:
  explicit StringSource(std::string data) : m_data(std::move(data)) {}
  uint64_t size() const override { return m_data.size(); }
  size_t read(char* buf, size_t max) override;
  void rewind() override { m_pos = 0; }

private:
  std::string m_data;
  size_t m_pos = 0;
};

// Holds the bytes in memory, at most max of them: one more is StoreError(permanent).
class StringSink : public Sink {
public:
  explicit StringSink(uint64_t max = UINT64_MAX) : m_max(max) {}
  void write(const char* data, size_t size) override;
  uint64_t max_bytes() const override { return m_max; }
  const std::string& data() const { return m_data; }

private:
  std::string m_data;
  uint64_t m_max;
};

} // namespace ephemera::store
