#include "store/url.hpp"

#include "store/broker_client.hpp"
#include "store/local.hpp"
#include "store/s3.hpp"
#include "util/error.hpp"

#include <fmt/format.h>

#include <cstdlib>

namespace ephemera::store {

namespace {

using Factory = std::unique_ptr<Backend> (*)(const std::string& rest);

std::unique_ptr<Backend> open_file(const std::string& rest) {
  if (rest.empty() || rest[0] != '/') {
    throw util::InputError(fmt::format("file:// store URLs need an absolute path: file:///path"));
  }
  return std::make_unique<LocalBackend>(rest);
}

struct Scheme {
  const char* name;
  Factory factory;
};

std::unique_ptr<Backend> open_http_url(const std::string& rest) {
  return open_broker("http://" + rest);
}

std::unique_ptr<Backend> open_https_url(const std::string& rest) {
  return open_broker("https://" + rest);
}

const Scheme k_schemes[] = {
    {"file", open_file},
    {"s3", open_s3},
    {"http", open_http_url},
    {"https", open_https_url},
};

} // namespace

std::unique_ptr<Backend> open_backend(const std::string& url) {
  auto sep = url.find("://");
  if (sep == std::string::npos) {
    if (url.empty()) {
      throw util::InputError("the store URL is empty");
    }
    return std::make_unique<LocalBackend>(url);
  }
  std::string scheme = url.substr(0, sep);
  for (const auto& s : k_schemes) {
    if (scheme == s.name) {
      return s.factory(url.substr(sep + 3));
    }
  }
  throw util::InputError(fmt::format("unknown store '{}://': use a path, file:///path or "
                                     "s3://bucket/prefix or a broker's http(s)://host",
                                     scheme));
}

std::string default_store_url() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x != nullptr && *x == '/') {
    return std::string(x) + "/ephemera";
  }
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr && *home != '\0' ? home : "/tmp") + "/.cache/ephemera";
}

std::string redact_url(const std::string& url) {
  auto sep = url.find("://");
  if (sep == std::string::npos) {
    return url;
  }
  auto at = url.find('@', sep + 3);
  auto slash = url.find('/', sep + 3);
  if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
    return url.substr(0, sep + 3) + url.substr(at + 1);
  }
  return url;
}

} // namespace ephemera::store
