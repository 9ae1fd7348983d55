// Request bodies, framed and bounded before the HTTP library reads any of them.

#include "broker/body.hpp"

#include <fmt/format.h>

#include <cctype>
#include <charconv>

namespace ephemera::broker {

namespace {

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// The Content-Length's value, when it is one: digits only (no sign, space or list).
std::optional<uint64_t> length_of(const std::string& text) {
  uint64_t n = 0;
  const char* end = text.data() + text.size();
  auto [at, ec] = std::from_chars(text.data(), end, n);
  if (text.empty() || ec != std::errc() || at != end) {
    return std::nullopt;
  }
  return n;
}

// cpp-httplib frames "chunked" alone, in any case.
bool is_chunked(std::string_view coding) {
  std::string_view want = "chunked";
  if (coding.size() != want.size()) {
    return false;
  }
  for (size_t i = 0; i < want.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(coding[i])) != want[i]) {
      return false;
    }
  }
  return true;
}

} // namespace

uint64_t body_limit(std::string_view method, std::string_view path, uint64_t max_object) {
  if (method == "PUT" && starts_with(path, "/v1/objects/")) {
    return max_object;
  }
  if (method == "POST" && (starts_with(path, "/v1/complete/") || starts_with(path, "/v1/abort/"))) {
    return k_max_completion;
  }
  return 0;
}

bool has_body(const Framing& framing) {
  if (framing.transfer_encoding) {
    return true;
  }
  return framing.content_length && *framing.content_length != "0";
}

std::optional<BodyRefusal> refuse_body(std::string_view method, std::string_view path,
                                       const Framing& framing, uint64_t max_object) {
  if (method != "GET" && method != "HEAD" && method != "PUT" && method != "POST" &&
      method != "DELETE") {
    return BodyRefusal{405, "the broker answers GET, HEAD, PUT, POST and DELETE only"};
  }
  uint64_t limit = body_limit(method, path, max_object);
  if (framing.transfer_encoding) {
    if (!is_chunked(*framing.transfer_encoding) || framing.content_length) {
      return BodyRefusal{400, "a body is framed by a Content-Length or by chunked alone"};
    }
    if (limit == 0) {
      return BodyRefusal{413, "this request takes no body"};
    }
    return std::nullopt; // the route's reader stops at its limit
  }
  if (framing.content_length) {
    auto n = length_of(*framing.content_length);
    if (!n) {
      return BodyRefusal{400, "the Content-Length is not a number"};
    }
    if (*n > limit) {
      if (limit == 0) {
        return BodyRefusal{413, "this request takes no body"};
      }
      return BodyRefusal{413,
                         fmt::format("a body over the {} bytes this request may carry", limit)};
    }
  }
  return std::nullopt;
}

} // namespace ephemera::broker
