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
  // The object's size when the caller knows it (an archive's, from its manifest): a backend
  // that can fetch ranges in parallel then does, still writing the bytes in order, and an
  // object of another size is an error (permanent) wherever the backend can tell.
  virtual std::optional<uint64_t> expected_size() const { return std::nullopt; }
  // Whether the reader no longer wants the bytes: a backend asks this while a transfer waits
  // for them, ends the transfer soon after (within about a second) and tries it no more.
  virtual bool cancelled() const { return false; }
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

// A piece of a write that was interrupted (a killed process): list() never shows it, and it
// takes space until it is removed. Not an object: remove() never takes one.
struct Leftover {
  std::string key;    // local: the temporary file's key; S3: the object it was to become
  std::string upload; // S3: the id of the unfinished multipart upload; "" elsewhere
  uint64_t size = 0;
  int64_t mtime = 0; // seconds since the epoch, on the store's clock
  // For people and for gc's plan: the key, then " (upload <id>)" where there is one.
  std::string name() const;
};

// Capability: time-limited HTTPS links.
class Presigner {
public:
  virtual ~Presigner() = default;
  // A link anyone holding it can GET the object by until ttl has passed. Throws as get().
  virtual std::string presign(const std::string& key, std::chrono::seconds ttl) const = 0;
};

// Capability: multipart uploads whose parts someone else sends straight to the store, by
// presigned links (the broker's clients). Readers see nothing of an upload until it completes;
// one never completed is a leftover (LeftoverCleaner) for gc.
class PartPresigner {
public:
  virtual ~PartPresigner() = default;
  // The size of every part but the last of an upload of `size` bytes.
  virtual uint64_t part_size(uint64_t size) const = 0;
  // Starts an upload of key; its id. Throws StoreError.
  virtual std::string start_upload(const std::string& key) = 0;
  // A link that PUTs part `number` (1-based) of the upload until ttl has passed; its answer's
  // ETag goes to complete_upload.
  virtual std::string presign_part(const std::string& key, const std::string& upload,
                                   uint64_t number, std::chrono::seconds ttl) const = 0;
  // Makes the object of the parts, their ETags in part order. Throws StoreError.
  virtual void complete_upload(const std::string& key, const std::string& upload,
                               const std::vector<std::string>& etags) = 0;
  // Drops the upload and its parts; one already gone is not an error.
  virtual void abort_upload(const std::string& key, const std::string& upload) = 0;
};

// Capability: finding and removing what interrupted writes left, for gc once they are old.
class LeftoverCleaner {
public:
  virtual ~LeftoverCleaner() = default;
  // Those whose key starts with prefix (checked as list() checks it).
  virtual std::vector<Leftover> leftovers(const std::string& prefix) = 0;
  // Removes one that leftovers() gave; one that is already gone is not an error. Throws
  // StoreError(permanent) for a leftover this backend never makes (a local key that is not
  // a temporary file's name, an S3 one without an upload id).
  virtual void remove_leftover(const Leftover& leftover) = 0;
};

// A store's dumb primitives, key-addressed and streamed: manifests, digests, lookup and
// retention live once, above them (catalog.hpp). What only some backends can do is a
// capability, nullptr where the backend lacks it. A new backend implements this (and its
// capabilities), gets a factory and a row in url.cpp's table of schemes, and must pass
// tests/store/conformance.cpp.
class Backend {
public:
  virtual ~Backend() = default;
  virtual std::optional<ObjectInfo> stat(const std::string& key) = 0;
  // The whole object (see Sink::expected_size). Throws StoreError(not_found) when it does
  // not exist.
  virtual void get(const std::string& key, Sink& sink) = 0;
  // Bytes [offset, offset + length) of the object. Throws StoreError(not_found) when it
  // does not exist and StoreError(permanent) when the range reaches past its end.
  virtual void get_range(const std::string& key, uint64_t offset, uint64_t length, Sink& sink) = 0;
  // Readers see the old object or the new one, never a part.
  virtual void put(const std::string& key, Source& source) = 0;
  // Every object whose key starts with prefix, sorted by key.
  virtual std::vector<ObjectInfo> list(const std::string& prefix) = 0;
  // Removes exactly the object named key; removing a missing object is not an error.
  virtual void remove(const std::string& key) = 0;
  // Where the object is, for people: file:///... or s3://bucket/key. Never credentials.
  virtual std::string url(const std::string& key) const = 0;
  // The object opened read-only where it lies, when the backend is a directory on this
  // machine (the caller closes it); -1 for backends elsewhere. Throws StoreError(not_found).
  virtual int open_local(const std::string& key) {
    (void)key;
    return -1;
  }
  // How many ranged reads (get_range) are worth having in flight at once, from threads of
  // their own (a store elsewhere, whose every request waits for a round trip); 1 where
  // reads are local or the backend cannot tell. Above 1, get_range may be called from
  // several threads at once.
  virtual int parallel_reads() const { return 1; }

  virtual const Presigner* presigner() const { return nullptr; }
  virtual LeftoverCleaner* leftover_cleaner() { return nullptr; }
  virtual PartPresigner* part_presigner() { return nullptr; }
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

// Hands the bytes on to another sink, telling the backend the object's size (expected_size):
// for a caller that knows it and whose own sink does not say.
class SizedSink : public Sink {
public:
  SizedSink(Sink& inner, uint64_t size) : m_inner(inner), m_size(size) {}
  void write(const char* data, size_t size) override { m_inner.write(data, size); }
  uint64_t max_bytes() const override { return m_inner.max_bytes(); }
  std::optional<uint64_t> expected_size() const override { return m_size; }
  bool cancelled() const override { return m_inner.cancelled(); }

private:
  Sink& m_inner;
  uint64_t m_size;
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
