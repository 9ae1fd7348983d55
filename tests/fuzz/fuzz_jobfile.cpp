// Job files: frontmatter extraction, TOML, stanza validation. Any input either loads or
// is refused with util::InputError; nothing else may escape, crash or hang.
#include "jobfile/reader.hpp"
#include "util/error.hpp"

#include <cstdint>
#include <fstream>
#include <string>
#include <unistd.h>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The first byte picks the kind: a buildomat script or a plain TOML file.
  bool script = size > 0 && (data[0] & 1) == 0;
  std::string path = "/dev/shm/ephemera-fuzz-" + std::to_string(::getpid()) + (script ? ".sh" : ".toml");
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    if (size > 1) {
      f.write(reinterpret_cast<const char*>(data + 1), static_cast<std::streamsize>(size - 1));
    }
  }
  try {
    auto job = ephemera::jobfile::load_job(path);
    for (const auto& s : job.persist) {
      if (s.name.value.empty() || s.rules.empty()) {
        __builtin_trap(); // a stanza that validated must have a name and rules
      }
    }
  } catch (const ephemera::util::InputError& e) {
    if (e.diagnostics().empty() && std::string(e.what()).empty()) {
      __builtin_trap(); // every refusal says why
    }
  }
  ::unlink(path.c_str());
  return 0;
}
