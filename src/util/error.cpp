#include "util/error.hpp"

#include <fmt/format.h>

namespace ephemera::util {

std::string Position::str() const {
  if (line <= 0) {
    return file;
  }
  if (column <= 0) {
    return fmt::format("{}:{}", file, line);
  }
  return fmt::format("{}:{}:{}", file, line, column);
}

std::string Diagnostic::str() const {
  const char* level = severity == Severity::error ? "error" : "warning";
  if (pos.file.empty()) {
    return fmt::format("{}: {}", level, message);
  }
  return fmt::format("{}: {}: {}", pos.str(), level, message);
}

namespace {

std::string join(const std::vector<Diagnostic>& diagnostics) {
  std::string out;
  for (const auto& d : diagnostics) {
    if (!out.empty()) {
      out += '\n';
    }
    out += d.str();
  }
  return out;
}

} // namespace

InputError::InputError(std::string message)
    : Error(message), m_diagnostics{{Severity::error, {}, std::move(message)}} {}

InputError::InputError(Position pos, std::string message)
    : InputError(std::vector<Diagnostic>{{Severity::error, std::move(pos), std::move(message)}}) {}

InputError::InputError(std::vector<Diagnostic> diagnostics)
    : Error(join(diagnostics)), m_diagnostics(std::move(diagnostics)) {}

const char* to_string(StoreErrorKind kind) {
  switch (kind) {
  case StoreErrorKind::not_found:
    return "not_found";
  case StoreErrorKind::unauthorized:
    return "unauthorized";
  case StoreErrorKind::transient:
    return "transient";
  case StoreErrorKind::permanent:
    return "permanent";
  case StoreErrorKind::timeout:
    return "timeout";
  }
  return "unknown";
}

} // namespace ephemera::util
