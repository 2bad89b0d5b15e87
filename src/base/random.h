// Seeded pseudo-random numbers for tests, fuzz drivers and benchmarks (never for on-media data).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <string>

namespace daxfs::base {

// SplitMix64: tiny, fast, reproducible from a 64-bit seed.
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n); n > 0.
  uint64_t Uniform(uint64_t n) { return Next() % n; }
  bool OneIn(uint64_t n) { return Uniform(n) == 0; }

 private:
  uint64_t state_;
};

// The seed for a randomized test: $DAXFS_SEED if set, else `fallback`.
inline uint64_t SeedFromEnv(uint64_t fallback) {
  const char* s = std::getenv("DAXFS_SEED");
  return s ? std::strtoull(s, nullptr, 0) : fallback;
}

}  // namespace daxfs::base
