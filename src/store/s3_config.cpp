// Reading the S3 store's URL and environment into an S3Config.
#include "store/s3_config.hpp"

#include "store/backend.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/units.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>

namespace ephemera::store {

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

std::string query_value(const std::string& query, const std::string& key) {
  size_t start = 0;
  while (start < query.size()) {
    size_t end = query.find('&', start);
    std::string part =
        query.substr(start, end == std::string::npos ? std::string::npos : end - start);
    auto eq = part.find('=');
    if (part.substr(0, eq) == key) {
      return eq == std::string::npos ? "" : part.substr(eq + 1);
    }
    if (end == std::string::npos) {
      break;
    }
    start = end + 1;
  }
  return "";
}

constexpr long k_day = 86400;

} // namespace

long env_limit(const char* name, long fallback, long min, long max, const char* unit) {
  std::string text = env(name);
  if (text.empty()) {
    return fallback;
  }
  if (auto value = util::parse_integer(text, min, max); value && text[0] != '-') {
    return static_cast<long>(*value);
  }
  throw util::InputError(fmt::format("{}='{}' is not a whole number of {} from {} to {}", name,
                                     util::printable(text.substr(0, 40)), unit, min, max));
}

S3Config parse_s3_url(const std::string& rest) {
  S3Config c;
  std::string path = rest.substr(0, rest.find('?'));
  std::string query = rest.find('?') == std::string::npos ? "" : rest.substr(rest.find('?') + 1);
  auto slash = path.find('/');
  c.bucket = path.substr(0, slash);
  if (c.bucket.empty()) {
    throw util::InputError("an S3 store URL needs a bucket: s3://bucket/prefix");
  }
  // A bucket name goes into every path (or the host name) as it is: S3's own characters only.
  if (c.bucket.size() > 63 || c.bucket == "." || c.bucket == ".." ||
      c.bucket.find_first_not_of(
          "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") !=
          std::string::npos) {
    throw util::InputError(
        fmt::format("'{}' is not an S3 bucket name (letters, digits, '.', '-' and '_')",
                    util::printable(c.bucket)));
  }
  if (slash != std::string::npos) {
    c.prefix = path.substr(slash + 1);
    while (!c.prefix.empty() && c.prefix.front() == '/') {
      c.prefix.erase(0, 1);
    }
    if (!c.prefix.empty() && c.prefix.back() != '/') {
      c.prefix += '/';
    }
    if (!c.prefix.empty() && !valid_key(c.prefix.substr(0, c.prefix.size() - 1))) {
      throw util::InputError(
          fmt::format("the S3 store prefix '{}' has an empty, '.' or '..' component or a "
                      "control character",
                      util::printable(c.prefix)));
    }
  }
  c.region = query_value(query, "region");
  if (c.region.empty()) {
    c.region = !env("AWS_REGION").empty()           ? env("AWS_REGION")
               : !env("AWS_DEFAULT_REGION").empty() ? env("AWS_DEFAULT_REGION")
                                                    : "us-east-1";
  }
  c.endpoint = query_value(query, "endpoint");
  if (c.endpoint.empty()) {
    c.endpoint = env("EPHEMERA_S3_ENDPOINT");
  }
  bool custom = !c.endpoint.empty();
  if (!custom) {
    c.endpoint = fmt::format("https://s3.{}.amazonaws.com", c.region);
  }
  if (c.endpoint.find("://") == std::string::npos) {
    c.endpoint = "https://" + c.endpoint;
  }
  // The endpoint becomes every request's host and every presigned link's: a user:password
  // in it would be sent as the host and written into reports.
  auto authority = c.endpoint.substr(c.endpoint.find("://") + 3);
  if (authority.substr(0, authority.find('/')).find('@') != std::string::npos) {
    throw util::InputError("the S3 endpoint must not hold credentials (user:password@): set "
                           "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY instead");
  }
  std::string addressing = query_value(query, "addressing");
  c.path_style = addressing.empty() ? custom : addressing == "path";
  if (!addressing.empty() && addressing != "path" && addressing != "virtual") {
    throw util::InputError(
        fmt::format("addressing='{}': use path or virtual", util::printable(addressing)));
  }
  c.access_key = env("AWS_ACCESS_KEY_ID");
  c.secret_key = env("AWS_SECRET_ACCESS_KEY");
  c.session_token = env("AWS_SESSION_TOKEN");
  c.stall_timeout = env_limit("EPHEMERA_S3_STALL_SECONDS", c.stall_timeout, 1, k_day, "seconds");
  c.request_timeout =
      env_limit("EPHEMERA_S3_TIMEOUT_SECONDS", c.request_timeout, 1, k_day, "seconds");
  c.deadline = env_limit("EPHEMERA_S3_DEADLINE", c.deadline, 1, 7 * k_day, "seconds");
  c.connect_timeout =
      env_limit("EPHEMERA_S3_CONNECT_SECONDS", c.connect_timeout, 1, k_day, "seconds");
  c.parallel = static_cast<int>(env_limit("EPHEMERA_S3_PARALLEL", c.parallel, 1, 64, "parts"));
  return c;
}

} // namespace ephemera::store
