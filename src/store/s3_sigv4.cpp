// SigV4 signing of presigned links, and the encodings requests share with it.
#include "store/s3_sigv4.hpp"

#include "util/sha256.hpp"

#include <fmt/format.h>

#include <cctype>

namespace ephemera::store {

std::string uri_encode(std::string_view s, bool keep_slash) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == '~' ||
        (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

std::string canonical_query(const std::map<std::string, std::string>& query) {
  std::string out;
  for (const auto& [k, v] : query) { // std::map: sorted by key, as SigV4 wants
    out += out.empty() ? "" : "&";
    out += uri_encode(k, false) + "=" + uri_encode(v, false);
  }
  return out;
}

std::string amz_date(std::time_t t) {
  struct tm tm {};
  ::gmtime_r(&t, &tm);
  char date[32];
  std::strftime(date, sizeof date, "%Y%m%dT%H%M%SZ", &tm);
  return date;
}

std::string presign_get(const std::string& url_base, const std::string& host,
                        const std::string& canonical_uri, const std::string& region,
                        const std::string& access_key, const std::string& secret_key,
                        const std::string& session_token, const std::string& amz_date,
                        std::chrono::seconds ttl) {
  return presign("GET", url_base, host, canonical_uri, {}, region, access_key, secret_key,
                 session_token, amz_date, ttl);
}

std::string presign(const std::string& method, const std::string& url_base, const std::string& host,
                    const std::string& canonical_uri,
                    const std::map<std::string, std::string>& query, const std::string& region,
                    const std::string& access_key, const std::string& secret_key,
                    const std::string& session_token, const std::string& amz_date,
                    std::chrono::seconds ttl) {
  std::string date = amz_date.substr(0, 8);
  std::string scope = fmt::format("{}/{}/s3/aws4_request", date, region);
  std::map<std::string, std::string> q = query;
  q["X-Amz-Algorithm"] = "AWS4-HMAC-SHA256";
  q["X-Amz-Credential"] = access_key + "/" + scope;
  q["X-Amz-Date"] = amz_date;
  q["X-Amz-Expires"] = std::to_string(ttl.count());
  q["X-Amz-SignedHeaders"] = "host";
  if (!session_token.empty()) {
    q["X-Amz-Security-Token"] = session_token;
  }
  std::string canonical_q = canonical_query(q);
  std::string canonical = fmt::format("{}\n{}\n{}\nhost:{}\n\nhost\nUNSIGNED-PAYLOAD", method,
                                      canonical_uri, canonical_q, host);
  std::string to_sign =
      fmt::format("AWS4-HMAC-SHA256\n{}\n{}\n{}", amz_date, scope, util::sha256_hex(canonical));
  std::string k = util::hmac_sha256_raw("AWS4" + secret_key, date);
  k = util::hmac_sha256_raw(k, region);
  k = util::hmac_sha256_raw(k, "s3");
  k = util::hmac_sha256_raw(k, "aws4_request");
  std::string signature = util::hmac_sha256_hex(k, to_sign);
  return fmt::format("{}{}?{}&X-Amz-Signature={}", url_base, canonical_uri, canonical_q, signature);
}

} // namespace ephemera::store
