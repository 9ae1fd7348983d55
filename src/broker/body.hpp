#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

// What a request to the broker may carry as its body, decided from its request line and
// headers alone, before a byte of the body is read: cpp-httplib reads the body of a request
// that no body-streaming route takes into memory (up to --max-object with a Content-Length;
// without any bound chunked or with no length at all) before any handler, the token check
// included, runs.
namespace ephemera::broker {

// The most a route's body may be: PUT /v1/objects/... up to max_object (each kind of object
// has its own, smaller limit in the handler), a completion or abort of an upload up to
// k_max_completion, every other request none.
inline constexpr uint64_t k_max_completion = 2 << 20; // 10,000 parts' ETags
uint64_t body_limit(std::string_view method, std::string_view path, uint64_t max_object);

// How the request's headers frame its body.
struct Framing {
  std::optional<std::string> content_length; // the header's value, if it has one
  std::optional<std::string> transfer_encoding;
};

// A refusal of the request before its body is read.
struct BodyRefusal {
  int status; // 400, 405 or 413
  std::string why;
};

// Why the request may not be served as it is framed (nullopt: it may): a method the broker
// has no route for (405); a body declared on a route that takes none, or a Content-Length
// past the route's limit (413); a Content-Length that is not a number, or a transfer coding
// other than chunked alone (400: a proxy in front could frame it otherwise than the broker).
std::optional<BodyRefusal> refuse_body(std::string_view method, std::string_view path,
                                       const Framing& framing, uint64_t max_object);

// Whether a request framed so carries a body at all: one with neither header has none
// (RFC 9112 6.3), which cpp-httplib would instead read until the client closes.
bool has_body(const Framing& framing);

} // namespace ephemera::broker
