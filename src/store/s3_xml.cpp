#include "store/s3_xml.hpp"

#include "util/error.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cstdio>
#include <cstring>
#include <ctime>

namespace ephemera::store::s3xml {

using util::StoreError;
using util::StoreErrorKind;

std::string unescape(std::string s) {
  const std::pair<const char*, const char*> entities[] = {
      {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&apos;", "'"}, {"&#13;", "\r"}, {"&amp;", "&"}};
  for (const auto& [from, to] : entities) {
    size_t pos = 0;
    while ((pos = s.find(from, pos)) != std::string::npos) {
      s.replace(pos, std::strlen(from), to);
      pos += std::strlen(to);
    }
  }
  return s;
}

std::vector<std::string> all(const std::string& xml, const std::string& tag) {
  std::vector<std::string> out;
  std::string open = "<" + tag + ">", close = "</" + tag + ">";
  size_t pos = 0;
  while ((pos = xml.find(open, pos)) != std::string::npos) {
    size_t end = xml.find(close, pos + open.size());
    if (end == std::string::npos) {
      throw StoreError(StoreErrorKind::permanent, fmt::format("invalid XML from the server: <{}> is not closed", tag));
    }
    out.push_back(xml.substr(pos + open.size(), end - pos - open.size()));
    pos = end + close.size();
  }
  return out;
}

std::string first(const std::string& xml, const std::string& tag) {
  auto found = all(xml, tag);
  return found.empty() ? "" : found.front();
}

int64_t parse_time(const std::string& s) {
  struct tm tm {};
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                  &tm.tm_min, &tm.tm_sec) != 6) {
    return 0;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return ::timegm(&tm);
}

namespace {

uint64_t parse_size(const std::string& text, const std::string& key) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
    throw StoreError(StoreErrorKind::permanent,
                     fmt::format("invalid XML from the server: the size of '{}' is '{}'", key, text));
  }
  return v;
}

bool parse_bool(const std::string& text) { return text == "true"; }

// A 200 whose body is something else (a proxy's or portal's page) is not an empty answer.
void expect_root(const std::string& xml, const std::string& root) {
  if (xml.find("<" + root + ">") == std::string::npos && xml.find("<" + root + " ") == std::string::npos) {
    std::string start = xml.substr(0, 60);
    for (auto& c : start) {
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) {
        c = '?';
      }
    }
    throw StoreError(StoreErrorKind::permanent,
                     fmt::format("invalid XML from the server: expected <{}>, got '{}'", root, start));
  }
}

} // namespace

ListPage parse_list_objects(const std::string& xml) {
  expect_root(xml, "ListBucketResult");
  ListPage page;
  for (const auto& c : all(xml, "Contents")) {
    Object o;
    o.key = unescape(first(c, "Key"));
    if (o.key.empty()) {
      throw StoreError(StoreErrorKind::permanent, "invalid XML from the server: a listed object has no <Key>");
    }
    o.size = parse_size(first(c, "Size"), o.key);
    o.mtime = parse_time(first(c, "LastModified"));
    page.objects.push_back(std::move(o));
  }
  page.truncated = parse_bool(first(xml, "IsTruncated"));
  page.next_token = unescape(first(xml, "NextContinuationToken"));
  if (page.truncated && page.next_token.empty()) {
    throw StoreError(StoreErrorKind::permanent, "the server truncated a listing without a continuation token");
  }
  return page;
}

UploadsPage parse_list_uploads(const std::string& xml) {
  expect_root(xml, "ListMultipartUploadsResult");
  UploadsPage page;
  for (const auto& u : all(xml, "Upload")) {
    Upload up;
    up.key = unescape(first(u, "Key"));
    up.upload_id = unescape(first(u, "UploadId"));
    if (up.key.empty() || up.upload_id.empty()) {
      throw StoreError(StoreErrorKind::permanent,
                       "invalid XML from the server: a multipart upload without <Key> or <UploadId>");
    }
    up.initiated = parse_time(first(u, "Initiated"));
    page.uploads.push_back(std::move(up));
  }
  page.truncated = parse_bool(first(xml, "IsTruncated"));
  page.next_key_marker = unescape(first(xml, "NextKeyMarker"));
  page.next_upload_id_marker = unescape(first(xml, "NextUploadIdMarker"));
  return page;
}

ErrorBody parse_error(const std::string& xml) {
  // An error body is read to explain a failure: a malformed one must not hide it.
  try {
    return {unescape(first(xml, "Code")), unescape(first(xml, "Message"))};
  } catch (const StoreError&) {
    return {};
  }
}

std::string parse_upload_id(const std::string& xml) {
  std::string id = unescape(first(xml, "UploadId"));
  if (id.empty()) {
    throw StoreError(StoreErrorKind::permanent, "the server started a multipart upload without an UploadId");
  }
  return id;
}

} // namespace ephemera::store::s3xml
