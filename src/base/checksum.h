// Checksums for on-media blocks: XXH3-64 from libxxhash.
// Knows nothing about block layouts beyond "a checksum field at some offset".
#pragma once

#include <cstddef>
#include <cstdint>

namespace daxfs::base {

// XXH3-64 of [data, data + size) with a seed.
uint64_t Checksum64(const void* data, size_t size, uint64_t seed = 0);

}  // namespace daxfs::base
