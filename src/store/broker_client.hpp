#pragma once

#include "store/backend.hpp"

#include <memory>
#include <string>

// The client side of `ephemera serve` (src/broker/server.hpp): a store at
// http(s)://broker.example[/path] whose every primitive is a request to the broker, carrying
// the job's token (EPHEMERA_TOKEN). The broker decides what the token may touch; reads of
// large objects it answers with a presigned URL, which this follows without the token.
namespace ephemera::store {

// base is the URL as given (http:// or https://, no query); a trailing '/' is dropped.
// Throws InputError for a malformed one.
std::unique_ptr<Backend> open_broker(const std::string& base);

// The PEM public key the broker at base signs with (GET /v1/key). Throws StoreError.
std::string broker_public_key(const std::string& base);

// Whether url names a broker (http:// or https://).
bool is_broker_url(const std::string& url);

} // namespace ephemera::store
