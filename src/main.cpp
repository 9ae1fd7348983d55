#include "cli/cli.hpp"

#include <malloc.h>

int main(int argc, char** argv) {
  // A walk keeps tens of thousands of small paths and grows vectors of them. By default
  // glibc gives every block over 128 KiB fresh pages from mmap and returns them on free, so
  // each growth of a vector is paid again in page faults, which on a virtual machine cost
  // more than the walk's system calls. From the heap, freed blocks are reused instead.
  ::mallopt(M_MMAP_THRESHOLD, 64 << 20);
  return ephemera::cli::run(argc, argv);
}
