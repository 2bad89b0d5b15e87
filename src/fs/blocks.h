// Units of the filesystem layer: the block, the largest file, and saturating block arithmetic.
// Pure constants and functions; knows nothing of trees or operations.
#pragma once

#include <cstdint>
#include <limits>

#include "format/layout.h"

namespace daxfs::fs {

inline constexpr uint64_t kBlock = format::kBlockSize;
inline constexpr uint64_t kMaxFileSize = std::numeric_limits<int64_t>::max();  // 2^63 - 1 bytes
inline constexpr uint64_t kMaxFileBlocks = kMaxFileSize / kBlock + 1;          // 2^51
inline constexpr uint64_t kNoEnd = std::numeric_limits<uint64_t>::max();

// Blocks that hold `bytes` bytes (rounded up).
inline constexpr uint64_t BlocksCovering(uint64_t bytes) {
  return bytes / kBlock + (bytes % kBlock != 0);
}
// first + count, or kNoEnd when that wraps.
inline constexpr uint64_t SaturatingEnd(uint64_t first, uint64_t count) {
  return count > kNoEnd - first ? kNoEnd : first + count;
}

}  // namespace daxfs::fs
