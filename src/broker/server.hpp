#pragma once

#include "store/backend.hpp"
#include "util/ed25519.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

// `ephemera serve`: an HTTP service in front of one store, holding its credentials and the
// key that signs manifests, so that build machines hold neither. It answers the store's
// primitives (stat, get, put, list, remove: backend.hpp) for exactly what each request's
// token may touch (scope.hpp), signs the manifests and markers written through it, answers
// reads of large objects with a presigned URL where the store has them, and keeps no state of
// its own: any number of instances serve one store.
//
// The protocol, every request but /v1/key carrying "Authorization: Bearer <token>":
//   GET    /v1/key                      the PEM public key manifests are signed with
//   GET    /v1/stat/<key>               {"size": N, "mtime": S} or 404
//   GET    /v1/objects/<key>[?offset=O&length=L]
//                                        the bytes (200), or 307 to a presigned URL
//   PUT    /v1/objects/<key>            the object's bytes as the body
//   DELETE /v1/objects/<key>
//   GET    /v1/list?prefix=P            [{"key": K, "size": N, "mtime": S}, ...], sorted
//   GET    /v1/leftovers?prefix=P       interrupted writes (operators): [{"key": K, "upload":
//                                        U, "size": N, "mtime": S}, ...], U "" but on S3
//   DELETE /v1/leftovers/<key>?upload=U one of them (operators)
// Keys are percent-encoded in paths and queries. Refusals answer 401 (no token), 403 (a
// token refused, or a request outside its scope), 404 (absent, or a save the token may not
// see), 413 (too large) or 429 (rate limit, with Retry-After), with a one-line reason; each is
// logged.
namespace ephemera::broker {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                 // 0: any free port
  std::filesystem::path port_file; // where the port is written once listening (optional)
  std::vector<std::string> protected_branches{"main", "master"};
  std::string audience; // tokens must name it, when not empty
  uint64_t max_object = 64ULL << 30;
  // Requests a second each token may make, with bursts of four times as many.
  double rate = 50;
  int threads = 16;
  std::chrono::seconds timeout{60};     // of a socket with no progress
  std::filesystem::path spool = "/tmp"; // uploads are held here until they reach the store
  uint64_t presign_above = 1 << 20;     // reads of larger objects go to a presigned URL
  std::chrono::seconds presign_ttl{600};
};

class Server {
public:
  // signing_key (private) signs manifests and markers; token_key checks tokens.
  Server(std::unique_ptr<store::Backend> backend, util::Ed25519Key signing_key,
         util::Ed25519Key token_key, ServerOptions options);
  ~Server();
  // Serves until SIGTERM or SIGINT. Throws util::Error when it cannot listen.
  void run();

private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

} // namespace ephemera::broker
