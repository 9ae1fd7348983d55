#pragma once

#include "store/backend.hpp"

#include <memory>
#include <string>

namespace ephemera::store {

// A bare path or file:///path is the local store; s3://bucket/prefix is S3; http(s)://host
// a broker. Anything else fails with a hint. Throws InputError for a malformed URL. A new
// backend is a class implementing Backend (backend.hpp; its capabilities where it has them),
// a factory, and a row in url.cpp's table of schemes; tests/store/conformance.cpp is what it
// must pass.
std::unique_ptr<Backend> open_backend(const std::string& url);

// ${XDG_CACHE_HOME:-$HOME/.cache}/ephemera
std::string default_store_url();

// The URL without anything secret (user info), for logs and reports.
std::string redact_url(const std::string& url);

} // namespace ephemera::store
