#pragma once

#include <cstdint>
#include <string>
#include <vector>

// Reading the XML bodies S3 answers with. The bodies are flat and machine-made, so
// elements are found by name, not by a general XML parser; anything malformed is a
// StoreError(permanent) naming what was wrong, never another exception.
namespace ephemera::store::s3xml {

// The most of one XML answer that is read: far above a page of 1000 keys of 1024 bytes
// each, every byte written as an entity; a larger body is refused, not read.
constexpr size_t k_max_document = 16 << 20;

// XML's five entities and numeric character references (&#10;, &#x1F;) resolved in one
// pass; anything else is kept as it is.
std::string unescape(const std::string& s);
// The text of every <tag>...</tag> in xml, in order.
std::vector<std::string> all(const std::string& xml, const std::string& tag);
// The first, or "" when there is none.
std::string first(const std::string& xml, const std::string& tag);
// "2026-11-25T15:07:57.000Z" -> seconds since the epoch; 0 when it is not such a time.
int64_t parse_time(const std::string& s);

struct Object {
  std::string key; // whole, still with the store's prefix
  uint64_t size = 0;
  int64_t mtime = 0;
};

// One page of ListObjectsV2; next_token is "" on the last page. A page over k_max_document
// is refused.
struct ListPage {
  std::vector<Object> objects;
  bool truncated = false;
  std::string next_token;
};
ListPage parse_list_objects(const std::string& xml);

struct Upload {
  std::string key;
  std::string upload_id;
  int64_t initiated = 0;
};

// One page of ListMultipartUploads.
struct UploadsPage {
  std::vector<Upload> uploads;
  bool truncated = false;
  std::string next_key_marker;
  std::string next_upload_id_marker;
};
UploadsPage parse_list_uploads(const std::string& xml);

// An <Error> body: Code and Message, "" where missing.
struct ErrorBody {
  std::string code;
  std::string message;
};
ErrorBody parse_error(const std::string& xml);

// The UploadId of CreateMultipartUpload's answer; throws when there is none.
std::string parse_upload_id(const std::string& xml);

} // namespace ephemera::store::s3xml
