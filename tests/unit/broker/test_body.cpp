// What a request may carry as its body, decided before any of it is read.
#include "broker/body.hpp"

#include <catch2/catch.hpp>

using namespace ephemera;
using broker::Framing;

namespace {

constexpr uint64_t k_max = 10 << 20;

Framing length(std::string n) {
  return Framing{std::move(n), std::nullopt};
}
Framing chunked(std::string coding = "chunked") {
  return Framing{std::nullopt, std::move(coding)};
}

int status(std::string_view method, std::string_view path, const Framing& f) {
  auto r = broker::refuse_body(method, path, f, k_max);
  return r ? r->status : 0;
}

} // namespace

TEST_CASE("body: only puts of objects, completions and aborts take a body", "[broker]") {
  CHECK(broker::body_limit("PUT", "/v1/objects/v1/a.tar.zst", k_max) == k_max);
  CHECK(broker::body_limit("POST", "/v1/complete/v1/a.tar.zst", k_max) == broker::k_max_completion);
  CHECK(broker::body_limit("POST", "/v1/abort/v1/a.tar.zst", k_max) == broker::k_max_completion);
  for (auto [method, path] :
       std::vector<std::pair<std::string, std::string>>{{"POST", "/v1/uploads/v1/a.tar.zst"},
                                                        {"DELETE", "/v1/objects/v1/a.tar.zst"},
                                                        {"DELETE", "/v1/leftovers/v1/a.tar.zst"},
                                                        {"GET", "/v1/objects/v1/a.tar.zst"},
                                                        {"PUT", "/v1/complete/v1/a.tar.zst"},
                                                        {"POST", "/v1/objects/v1/a.tar.zst"},
                                                        {"PUT", "/v1/nothing"},
                                                        {"PUT", "/v1/objectsx"}}) {
    INFO(method << " " << path);
    CHECK(broker::body_limit(method, path, k_max) == 0);
    CHECK(status(method, path, length("1")) == 413);
    CHECK(status(method, path, chunked()) == 413);
    CHECK(status(method, path, length("0")) == 0);
    CHECK(status(method, path, Framing{}) == 0);
  }
}

TEST_CASE("body: a declared length past the route's limit is refused unread", "[broker]") {
  CHECK(status("PUT", "/v1/objects/k", length(std::to_string(k_max))) == 0);
  CHECK(status("PUT", "/v1/objects/k", length(std::to_string(k_max + 1))) == 413);
  CHECK(status("PUT", "/v1/objects/k", length("18446744073709551616")) == 400); // 2^64
  CHECK(status("POST", "/v1/complete/k", length(std::to_string(broker::k_max_completion))) == 0);
  CHECK(status("POST", "/v1/complete/k", length(std::to_string(broker::k_max_completion + 1))) ==
        413);
  // Chunked goes to a reader of its own that stops at the limit.
  CHECK(status("PUT", "/v1/objects/k", chunked()) == 0);
  CHECK(status("PUT", "/v1/objects/k", chunked("Chunked")) == 0);
}

TEST_CASE("body: framing that a proxy could read otherwise is refused", "[broker]") {
  for (auto n : {"+1", "-1", " 1", "1 ", "1,1", "0x10", ""}) {
    INFO(n);
    CHECK(status("PUT", "/v1/objects/k", length(n)) == 400);
  }
  CHECK(status("PUT", "/v1/objects/k", chunked("gzip")) == 400);
  CHECK(status("PUT", "/v1/objects/k", chunked("gzip, chunked")) == 400);
  CHECK(status("PUT", "/v1/objects/k", Framing{"10", "chunked"}) == 400);
}

TEST_CASE("body: methods without a route are refused before their body", "[broker]") {
  for (auto m : {"PATCH", "PRI", "OPTIONS", "TRACE", "CONNECT", "put"}) {
    INFO(m);
    CHECK(status(m, "/v1/objects/k", length("1")) == 405);
  }
  for (auto m : {"GET", "HEAD", "PUT", "POST", "DELETE"}) {
    CHECK(status(m, "/v1/objects/k", Framing{}) == 0);
  }
}

TEST_CASE("body: a request that declares no body has none", "[broker]") {
  CHECK_FALSE(broker::has_body(Framing{}));
  CHECK_FALSE(broker::has_body(length("0")));
  CHECK(broker::has_body(length("1")));
  CHECK(broker::has_body(chunked()));
}
