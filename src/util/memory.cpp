#include "util/memory.hpp"

#include <malloc.h>

namespace ephemera::util {

void tune_allocator() {
  ::mallopt(M_MMAP_THRESHOLD, 64 << 20);
  ::mallopt(M_TRIM_THRESHOLD, 256 << 20);
}

} // namespace ephemera::util
