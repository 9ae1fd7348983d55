// S3's XML answers (listings, multipart uploads, errors): any bytes from a server are
// read or refused with StoreError(permanent); never another exception, never a crash,
// nothing read comes back empty where a key is required, and resolving entities never
// makes text longer (so no answer can grow into more than was received).
#include "store/s3_xml.hpp"
#include "util/error.hpp"

#include <cstdint>
#include <string>

namespace {

void expect_permanent(const ephemera::util::StoreError& e) {
  if (e.kind() != ephemera::util::StoreErrorKind::permanent) {
    __builtin_trap();
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ephemera::store;
  std::string xml(reinterpret_cast<const char*>(data), size);
  try {
    auto page = s3xml::parse_list_objects(xml);
    for (const auto& o : page.objects) {
      if (o.key.empty()) {
        __builtin_trap();
      }
    }
    if (page.truncated && page.next_token.empty()) {
      __builtin_trap();
    }
  } catch (const ephemera::util::StoreError& e) {
    expect_permanent(e);
  }
  try {
    for (const auto& u : s3xml::parse_list_uploads(xml).uploads) {
      if (u.key.empty() || u.upload_id.empty()) {
        __builtin_trap();
      }
    }
  } catch (const ephemera::util::StoreError& e) {
    expect_permanent(e);
  }
  try {
    if (s3xml::parse_upload_id(xml).empty()) {
      __builtin_trap();
    }
  } catch (const ephemera::util::StoreError& e) {
    expect_permanent(e);
  }
  if (s3xml::unescape(xml).size() > xml.size()) {
    __builtin_trap();
  }
  auto error = s3xml::parse_error(xml); // never throws
  if (error.code.size() > xml.size() || error.message.size() > xml.size()) {
    __builtin_trap();
  }
  (void)s3xml::parse_time(xml);
  return 0;
}
