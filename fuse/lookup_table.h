// The kernel's lookup counts (FUSE's nlookup) per inode: every entry reply the kernel accepts
// adds one, every forget takes some away; an inode with a count above zero is one the kernel
// still knows and may ask about. Sharded, so threads on different inodes rarely meet.
// Knows nothing about the engine or libfuse.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <unordered_map>

namespace daxfs::fusefs {

class LookupTable {
 public:
  using Ino = uint64_t;
  static constexpr Ino kRoot = 1;

  // The root starts known once: the kernel holds it from mount without a lookup.
  LookupTable();

  // Adds `n` lookups; returns true when the inode was unknown before (0 -> n).
  bool Add(Ino ino, uint64_t n = 1);
  // Takes `n` away and returns what is left (0: the kernel forgot the inode). A forget of more
  // than is known is clamped at zero and counted in underflows().
  uint64_t Forget(Ino ino, uint64_t n);
  uint64_t Count(Ino ino) const;
  // Inodes with a count above zero.
  uint64_t known() const { return known_.load(std::memory_order_relaxed); }
  uint64_t underflows() const { return underflows_.load(std::memory_order_relaxed); }

 private:
  static constexpr size_t kShards = 64;
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<Ino, uint64_t> counts;
  };
  Shard& ShardOf(Ino ino) { return shards_[ino % kShards]; }
  const Shard& ShardOf(Ino ino) const { return shards_[ino % kShards]; }

  std::array<Shard, kShards> shards_;
  std::atomic<uint64_t> known_{0};
  std::atomic<uint64_t> underflows_{0};
};

}  // namespace daxfs::fusefs
