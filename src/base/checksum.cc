// XXH3 wrapper, kept in one place so the algorithm can change behind a feature flag.
#include "base/checksum.h"

#include <xxhash.h>

namespace daxfs::base {

uint64_t Checksum64(const void* data, size_t size, uint64_t seed) {
  return XXH3_64bits_withSeed(data, size, seed);
}

}  // namespace daxfs::base
