#pragma once

#include <curl/curl.h>

// libcurl, loaded by the first request that needs it rather than linked: with the TLS,
// Kerberos, LDAP, SSH and IDN libraries it brings it is 26 of the 46 libraries the dynamic
// loader would map at every start, and most hooks use a local store.
namespace ephemera::store {

struct CurlLib {
  decltype(&::curl_global_init) global_init = nullptr;
  decltype(&::curl_easy_init) easy_init = nullptr;
  decltype(&::curl_easy_cleanup) easy_cleanup = nullptr;
  decltype(&::curl_easy_setopt) easy_setopt = nullptr;
  decltype(&::curl_easy_perform) easy_perform = nullptr;
  decltype(&::curl_easy_getinfo) easy_getinfo = nullptr;
  decltype(&::curl_easy_strerror) easy_strerror = nullptr;
  decltype(&::curl_slist_append) slist_append = nullptr;
  decltype(&::curl_slist_free_all) slist_free_all = nullptr;

  // Loaded and initialised once per process. Throws util::StoreError(permanent) naming the
  // library and why, for `who` ("the S3 store", "the broker's client").
  static const CurlLib& get(const char* who);
};

} // namespace ephemera::store
