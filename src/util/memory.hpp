#pragma once

namespace ephemera::util {

// Tunes the allocator for a process that walks, packs or unpacks tens of thousands of
// files. By default glibc gives each block over 128 KiB fresh pages from mmap and returns
// them on free, and gives the heap's top back once 128 KiB of it is free, so a growing
// vector of paths, or a queue of files drained by another thread, pays for its pages
// again and again in page faults, which on a virtual machine cost more than the system
// calls of the walk. With these settings freed blocks are reused instead: the peak is
// the same, it is just not given back before the process ends. Call first in main.
void tune_allocator();

} // namespace ephemera::util
