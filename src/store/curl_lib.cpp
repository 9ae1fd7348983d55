#include "store/curl_lib.hpp"

#include "util/error.hpp"

#include <fmt/format.h>

#include <dlfcn.h>
#include <string>
#include <type_traits>

namespace ephemera::store {

namespace {

CurlLib load(const char* who) {
  // Debian's flavours of libcurl 4 (OpenSSL, GnuTLS) share one interface.
  void* lib = nullptr;
  std::string why;
  for (const char* name : {"libcurl.so.4", "libcurl-gnutls.so.4", "libcurl-nss.so.4"}) {
    lib = ::dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (lib != nullptr) {
      break;
    }
    if (why.empty()) {
      const char* e = ::dlerror();
      why = e != nullptr ? e : name;
    }
  }
  using util::StoreError;
  using util::StoreErrorKind;
  if (lib == nullptr) {
    throw StoreError(StoreErrorKind::permanent,
                     fmt::format("{} needs libcurl (package libcurl4): {}", who, why));
  }
  CurlLib c;
  auto bind = [&](auto& fn, const char* symbol) {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(::dlsym(lib, symbol));
    if (fn == nullptr) {
      throw StoreError(
          StoreErrorKind::permanent,
          fmt::format("{} needs libcurl 7.75 or later: the one installed has no {}", who, symbol));
    }
  };
  bind(c.global_init, "curl_global_init");
  bind(c.easy_init, "curl_easy_init");
  bind(c.easy_cleanup, "curl_easy_cleanup");
  bind(c.easy_setopt, "curl_easy_setopt");
  bind(c.easy_perform, "curl_easy_perform");
  bind(c.easy_getinfo, "curl_easy_getinfo");
  bind(c.easy_strerror, "curl_easy_strerror");
  bind(c.slist_append, "curl_slist_append");
  bind(c.slist_free_all, "curl_slist_free_all");
  if (c.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    throw StoreError(StoreErrorKind::permanent, "unable to initialise libcurl");
  }
  return c;
}

} // namespace

const CurlLib& CurlLib::get(const char* who) {
  static const CurlLib curl = load(who);
  return curl;
}

} // namespace ephemera::store
