// What the store's unit tests share: an environment variable set for one scope, the refusal a
// call must end in, and files written for a test.
#pragma once

#include "util/error.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>

namespace ephemera::test {

// Sets an environment variable (nullptr: unsets it) for one scope, then puts back what was.
class EnvVar {
public:
  EnvVar(const char* name, const char* value) : m_name(name) {
    if (const char* old = std::getenv(name)) {
      m_old = old;
    }
    value ? ::setenv(name, value, 1) : ::unsetenv(name);
  }
  ~EnvVar() { m_old ? ::setenv(m_name, m_old->c_str(), 1) : ::unsetenv(m_name); }
  EnvVar(const EnvVar&) = delete;
  EnvVar& operator=(const EnvVar&) = delete;

private:
  const char* m_name;
  std::optional<std::string> m_old;
};

// The message of the StoreError f throws, which must be a refusal (permanent): not
// not_found, nor a request that was tried instead (against a port where nothing listens, it
// fails as transient).
inline std::string refusal(const std::function<void()>& f) {
  try {
    f();
  } catch (const util::StoreError& e) {
    CHECK(e.kind() == util::StoreErrorKind::permanent);
    return e.what();
  }
  FAIL("no StoreError");
  return "";
}

// p holding content, its directories made; p.
inline std::filesystem::path file_with(const std::filesystem::path& p, const std::string& content) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << content;
  return p;
}

} // namespace ephemera::test
