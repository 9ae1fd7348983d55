#include "cas/chunker.hpp"

#include "util/error.hpp"

#include <bit>

namespace ephemera::cas {

namespace {

// The gear table: 256 fixed pseudo-random words (splitmix64 from a fixed seed), the same in
// every build and every store, so that the same bytes are cut the same way by every writer.
constexpr std::array<uint64_t, 256> make_gear() {
  std::array<uint64_t, 256> g{};
  uint64_t x = 0x65706865'6d657261ULL; // "ephemera"
  for (auto& v : g) {
    x += 0x9e3779b97f4a7c15ULL;
    uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    v = z ^ (z >> 31);
  }
  return g;
}
constexpr std::array<uint64_t, 256> k_gear = make_gear();

// A mask of `bits` one bits spread over the upper 48 bits of the hash (FastCDC's spread
// masks: the gear hash's low bits depend only on the last few bytes).
uint64_t spread_mask(int bits) {
  uint64_t mask = 0;
  int placed = 0;
  for (int pos = 63; pos >= 16 && placed < bits; pos -= 2) {
    mask |= uint64_t{1} << pos;
    ++placed;
  }
  for (int pos = 62; pos >= 16 && placed < bits; pos -= 2) {
    mask |= uint64_t{1} << pos;
    ++placed;
  }
  return mask;
}

} // namespace

Chunker::Chunker(const ChunkSizes& sizes) : m_sizes(sizes) {
  if (!std::has_single_bit(sizes.avg) || sizes.min == 0 || sizes.min >= sizes.avg ||
      sizes.avg >= sizes.max) {
    throw util::Error("chunk sizes must satisfy 0 < min < avg < max with avg a power of two");
  }
  int bits = std::countr_zero(sizes.avg);
  // Normalisation level 2: two bits harder before avg, two easier after it.
  m_mask_small = spread_mask(bits + 2);
  m_mask_large = spread_mask(bits - 2);
}

size_t Chunker::cut(const uint8_t* data, size_t size) const {
  if (size <= m_sizes.min) {
    return size;
  }
  size_t end = size < m_sizes.max ? size : m_sizes.max;
  size_t normal = size < m_sizes.avg ? size : m_sizes.avg;
  uint64_t h = 0;
  size_t i = m_sizes.min;
  for (; i < normal; ++i) {
    h = (h << 1) + k_gear[data[i]];
    if ((h & m_mask_small) == 0) {
      return i + 1;
    }
  }
  for (; i < end; ++i) {
    h = (h << 1) + k_gear[data[i]];
    if ((h & m_mask_large) == 0) {
      return i + 1;
    }
  }
  return end;
}

} // namespace ephemera::cas
