// What bench/s3.sh times against 'aws s3 cp': one object up or down through a backend.
//
//   bench_store put STORE_URL KEY FILE
//   bench_store get STORE_URL KEY FILE          as a restore fetches an archive (by its size)
//   bench_store get-stream STORE_URL KEY FILE   one plain GET
#include "store/backend.hpp"
#include "store/url.hpp"

#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>

using namespace ephemera;

namespace {

class FileSink : public store::Sink {
public:
  explicit FileSink(const char* path) : m_f(std::fopen(path, "wb")) {}
  ~FileSink() override {
    if (m_f != nullptr) {
      std::fclose(m_f);
    }
  }
  void write(const char* data, size_t size) override {
    if (m_f == nullptr || std::fwrite(data, 1, size, m_f) != size) {
      throw std::runtime_error("unable to write the download");
    }
  }

private:
  std::FILE* m_f;
};

} // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: bench_store put|get|get-stream STORE_URL KEY FILE\n");
    return 2;
  }
  try {
    auto backend = store::open_backend(argv[2]);
    std::string verb = argv[1];
    if (verb == "put") {
      store::FileSource src(argv[4]);
      backend->put(argv[3], src);
    } else if (verb == "get") {
      auto st = backend->stat(argv[3]);
      if (!st) {
        throw std::runtime_error(std::string(argv[3]) + " does not exist");
      }
      FileSink file(argv[4]);
      store::SizedSink sink(file, st->size);
      backend->get(argv[3], sink);
    } else if (verb == "get-stream") {
      FileSink sink(argv[4]);
      backend->get(argv[3], sink);
    } else {
      return 2;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_store: %s\n", e.what());
    return 1;
  }
  return 0;
}
