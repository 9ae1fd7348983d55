#include "store/s3_xml.hpp"

#include "util/error.hpp"
#include "util/log.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string_view>

namespace ephemera::store::s3xml {

using util::StoreError;
using util::StoreErrorKind;

namespace {

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

// The text an entity at the start of `ref` ("&...;") stands for, or false when it is none.
bool entity(std::string_view ref, std::string& out) {
  static const std::pair<std::string_view, char> named[] = {
      {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}, {"&amp;", '&'}};
  for (const auto& [name, c] : named) {
    if (ref == name) {
      out += c;
      return true;
    }
  }
  if (ref.size() < 4 || ref[1] != '#') {
    return false;
  }
  bool hex = ref[2] == 'x' || ref[2] == 'X';
  auto digits = ref.substr(hex ? 3 : 2, ref.size() - (hex ? 4 : 3));
  uint32_t cp = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), cp, hex ? 16 : 10);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || cp == 0 ||
      cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
    return false;
  }
  append_utf8(out, cp);
  return true;
}

} // namespace

std::string unescape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  while (pos < s.size()) {
    size_t amp = s.find('&', pos);
    if (amp == std::string::npos) {
      break;
    }
    out.append(s, pos, amp - pos);
    size_t semi = s.find(';', amp);
    // The longest entity is "&#x10FFFF;": only that far is looked at, so the pass stays linear.
    if (semi != std::string::npos && semi - amp < 12 &&
        entity(std::string_view(s).substr(amp, semi - amp + 1), out)) {
      pos = semi + 1;
    } else {
      out += '&';
      pos = amp + 1;
    }
  }
  if (pos < s.size()) {
    out.append(s, pos, std::string::npos);
  }
  return out;
}

std::vector<std::string> all(const std::string& xml, const std::string& tag) {
  std::vector<std::string> out;
  std::string open = "<" + tag + ">", close = "</" + tag + ">";
  size_t pos = 0;
  while ((pos = xml.find(open, pos)) != std::string::npos) {
    size_t end = xml.find(close, pos + open.size());
    if (end == std::string::npos) {
      throw StoreError(StoreErrorKind::permanent,
                       fmt::format("invalid XML from the server: <{}> is not closed", tag));
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
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6) {
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
                     fmt::format("invalid XML from the server: the size of '{}' is '{}'",
                                 util::printable(key.substr(0, 200)),
                                 util::printable(text.substr(0, 40))));
  }
  return v;
}

bool parse_bool(const std::string& text) {
  return text == "true";
}

// A 200 whose body is something else (a proxy's or portal's page) is not an empty answer.
void expect_root(const std::string& xml, const std::string& root) {
  if (xml.find("<" + root + ">") == std::string::npos &&
      xml.find("<" + root + " ") == std::string::npos) {
    throw StoreError(StoreErrorKind::permanent,
                     fmt::format("invalid XML from the server: expected <{}>, got '{}'", root,
                                 util::printable(xml.substr(0, 60))));
  }
}

void expect_size(const std::string& xml) {
  if (xml.size() > k_max_document) {
    throw StoreError(
        StoreErrorKind::permanent,
        fmt::format(
            "invalid XML from the server: an answer of {} bytes, more than the {} any is read",
            xml.size(), k_max_document));
  }
}

} // namespace

ListPage parse_list_objects(const std::string& xml) {
  expect_size(xml);
  expect_root(xml, "ListBucketResult");
  ListPage page;
  for (const auto& c : all(xml, "Contents")) {
    Object o;
    o.key = unescape(first(c, "Key"));
    if (o.key.empty()) {
      throw StoreError(StoreErrorKind::permanent,
                       "invalid XML from the server: a listed object has no <Key>");
    }
    o.size = parse_size(first(c, "Size"), o.key);
    o.mtime = parse_time(first(c, "LastModified"));
    page.objects.push_back(std::move(o));
  }
  page.truncated = parse_bool(first(xml, "IsTruncated"));
  page.next_token = unescape(first(xml, "NextContinuationToken"));
  if (page.truncated && page.next_token.empty()) {
    throw StoreError(StoreErrorKind::permanent,
                     "the server truncated a listing without a continuation token");
  }
  return page;
}

UploadsPage parse_list_uploads(const std::string& xml) {
  expect_size(xml);
  expect_root(xml, "ListMultipartUploadsResult");
  UploadsPage page;
  for (const auto& u : all(xml, "Upload")) {
    Upload up;
    up.key = unescape(first(u, "Key"));
    up.upload_id = unescape(first(u, "UploadId"));
    if (up.key.empty() || up.upload_id.empty()) {
      throw StoreError(
          StoreErrorKind::permanent,
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
    throw StoreError(StoreErrorKind::permanent,
                     "the server started a multipart upload without an UploadId");
  }
  return id;
}

} // namespace ephemera::store::s3xml
