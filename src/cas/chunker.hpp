#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

// Content-defined chunking (FastCDC: a gear hash with normalised cut masks), so that an
// insertion inside a large file moves the chunk boundaries after it only as far as the next
// cut, and the unchanged rest of the file still maps to chunks a previous save holds.
namespace ephemera::cas {

struct ChunkSizes {
  // Files smaller than whole_below are one chunk; larger ones are cut into chunks of
  // min..max bytes, aiming at avg (a power of two). Chosen by measurement (README): 16 KiB /
  // 64 KiB / 256 KiB, files from 64 KiB.
  size_t whole_below = 64 * 1024;
  size_t min = 16 * 1024;
  size_t avg = 64 * 1024;
  size_t max = 256 * 1024;
};

class Chunker {
public:
  // sizes.avg must be a power of two with min < avg < max; anything else throws util::Error.
  explicit Chunker(const ChunkSizes& sizes = {});

  // Length of the first chunk of data[0, size): size itself when size <= min; otherwise the
  // first content-defined cut after min, or max. The caller passes at least max bytes
  // unless they are the end of the file, so a cut never depends on how the file was read.
  size_t cut(const uint8_t* data, size_t size) const;

  const ChunkSizes& sizes() const { return m_sizes; }

private:
  ChunkSizes m_sizes;
  uint64_t m_mask_small = 0; // before avg: more bits, cuts are rarer
  uint64_t m_mask_large = 0; // after avg: fewer bits, cuts come sooner
};

} // namespace ephemera::cas
