#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace ephemera::util {

// Base of every exception ephemera throws on purpose.
class Error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

// A place in a file the user wrote, 1-based; line 0 means "the whole file".
struct Position {
  std::string file;
  int line = 0;
  int column = 0;

  // "file:line:col", "file:line" or "file", whichever is known.
  std::string str() const;
};

enum class Severity { error, warning };

// One finding about user input, printed gcc-style: "file:line:col: error: message".
struct Diagnostic {
  Severity severity = Severity::error;
  Position pos;
  std::string message;

  std::string str() const;
};

// The user's input (a job file, a rule, a flag) is wrong: exit 2.
class InputError : public Error {
public:
  explicit InputError(std::string message);
  InputError(Position pos, std::string message);
  explicit InputError(std::vector<Diagnostic> diagnostics);

  // Every error and warning found; what() joins them, one a line.
  const std::vector<Diagnostic>& diagnostics() const { return m_diagnostics; }

private:
  std::vector<Diagnostic> m_diagnostics;
};

enum class StoreErrorKind { not_found, unauthorized, transient, permanent, timeout };

const char* to_string(StoreErrorKind kind);

// A store operation failed; the kind decides whether it is retried.
class StoreError : public Error {
public:
  StoreError(StoreErrorKind kind, const std::string& message) : Error(message), m_kind(kind) {}

  StoreErrorKind kind() const { return m_kind; }
  bool retryable() const {
    return m_kind == StoreErrorKind::transient || m_kind == StoreErrorKind::timeout;
  }

private:
  StoreErrorKind m_kind;
};

// An archive could not be made or was refused on restore.
class ArchiveError : public Error {
public:
  using Error::Error;
};

} // namespace ephemera::util
