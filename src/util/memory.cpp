#include "util/memory.hpp"

#include <cstdint>
#include <cstdlib>
#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

namespace ephemera::util {

namespace {

constexpr size_t k_heap = 64 << 20;
constexpr uintptr_t k_huge = 2 << 20;

} // namespace

void tune_allocator() {
  ::mallopt(M_MMAP_THRESHOLD, k_heap);
  ::mallopt(M_TRIM_THRESHOLD, 4 * k_heap);
  // Have the heap grow by 64 MiB at once (as padding above one small block: nothing is
  // touched, not even under MALLOC_PERTURB_, which fills every block handed out) and ask
  // for 2 MiB pages in it: zstd's 40 MiB of stream buffers and a walk's paths then cost a
  // few dozen faults instead of thousands (glibc.malloc.hugetlb=1 does the same, but only
  // from the environment). Where transparent huge pages are off this changes nothing.
  ::mallopt(M_TOP_PAD, k_heap);
  auto* before = static_cast<char*>(::sbrk(0));
  void* volatile block = std::malloc(256 << 10); // more than the heap has left: it grows
  auto* after = static_cast<char*>(::sbrk(0));
  std::free(block);                // stays in the heap: under the trim threshold
  ::mallopt(M_TOP_PAD, 128 << 10); // glibc's default
  if (before == reinterpret_cast<char*>(-1) || after == reinterpret_cast<char*>(-1) ||
      after - before < static_cast<ptrdiff_t>(k_heap / 2)) {
    return; // the heap did not grow here (another allocator, or no brk): nothing to advise
  }
  auto first = (reinterpret_cast<uintptr_t>(before) + k_huge - 1) & ~(k_huge - 1);
  auto last = reinterpret_cast<uintptr_t>(after) & ~(k_huge - 1);
  if (last > first) {
    ::madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
  }
}

} // namespace ephemera::util
