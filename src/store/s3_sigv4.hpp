// SigV4 for S3: URI encoding, the canonical query string and query-signed (presigned) GET
// links. Pure functions of their arguments, so they are checked against AWS's published
// examples; requests themselves are signed by libcurl (CURLOPT_AWS_SIGV4, s3_curl.cpp).
#pragma once

#include <chrono>
#include <ctime>
#include <map>
#include <string>
#include <string_view>

namespace ephemera::store {

// Percent-encode every byte outside A-Za-z0-9-_.~ (and '/' too unless keep_slash).
std::string uri_encode(std::string_view s, bool keep_slash);

// "k1=v1&k2=v2", keys and values encoded, in key order (std::map's), as SigV4 signs it.
std::string canonical_query(const std::map<std::string, std::string>& query);

// t as SigV4 writes times: "20130524T000000Z" (UTC).
std::string amz_date(std::time_t t);

// A SigV4 presigned GET URL (query signing, UNSIGNED-PAYLOAD).
std::string presign_get(const std::string& url_base, const std::string& host,
                        const std::string& canonical_uri, const std::string& region,
                        const std::string& access_key, const std::string& secret_key,
                        const std::string& session_token, const std::string& amz_date,
                        std::chrono::seconds ttl);
// The same for any method, with query parameters of the request's own signed with it (the
// part number and upload id of a multipart upload's part).
std::string presign(const std::string& method, const std::string& url_base, const std::string& host,
                    const std::string& canonical_uri,
                    const std::map<std::string, std::string>& query, const std::string& region,
                    const std::string& access_key, const std::string& secret_key,
                    const std::string& session_token, const std::string& amz_date,
                    std::chrono::seconds ttl);

} // namespace ephemera::store
