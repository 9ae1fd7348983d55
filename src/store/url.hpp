#pragma once

#include "store/backend.hpp"

#include <memory>
#include <string>

namespace ephemera::store {

struct OpenOptions {};

// A bare path or file:///path is the local store; s3://bucket/prefix is S3. Anything else
// fails with a hint. Throws InputError for a malformed URL.
std::unique_ptr<Backend> open_backend(const std::string& url, const OpenOptions& options);

// ${XDG_CACHE_HOME:-$HOME/.cache}/ephemera
std::string default_store_url();

// The URL without anything secret (user info), for logs and reports.
std::string redact_url(const std::string& url);

} // namespace ephemera::store
