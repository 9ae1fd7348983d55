// Index objects read from a store: any bytes are either an index that keeps every rule of
// the format (and survives its own encoding unchanged) or refused with util::Error; never
// another exception, never a crash, never an allocation beyond the format's bounds. The
// first byte chooses the layer: odd, the decompressed body; even, the zstd object.
#include "cas/index.hpp"
#include "util/error.hpp"

#include <cstdint>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) {
    return 0;
  }
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::string scope = "acme/app/linux/deps/trusted";
  try {
    auto index =
        (data[0] & 1) != 0 ? ephemera::cas::parse_body(in, scope) : ephemera::cas::parse(in, scope);
    std::string again = ephemera::cas::encode(index);
    auto back = ephemera::cas::parse(again, scope);
    if (ephemera::cas::encode(back) != again || back.entries.size() != index.entries.size()) {
      __builtin_trap();
    }
  } catch (const ephemera::util::Error&) {
  }
  return 0;
}
