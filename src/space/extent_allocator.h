// Allocation of data blocks in DATA chunks: free runs, blocks fresh in the running transaction
// (writable in place), and deferred frees that wait until the releasing transaction is durable.
// Knows block numbers only: nothing about files, trees or devices.
// Not thread-safe: the filesystem calls it under its own mutex.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "daxfs/status.h"

namespace daxfs::space {

struct Run {
  uint64_t start = 0;
  uint64_t count = 0;
  friend bool operator==(const Run&, const Run&) = default;
};

class ExtentAllocator {
 public:
  // Adds free blocks (a newly typed DATA chunk, or free space found at mount).
  void AddFree(uint64_t start, uint64_t count);
  // Mount-time rebuild: takes blocks out of the free set as used. EUCLEAN naming the first block
  // that is not free (owned twice, or outside DATA chunks).
  Status MarkUsed(uint64_t start, uint64_t count);

  // Allocates `count` blocks, all or nothing (ENOSPC), as few runs as possible: one run starting
  // at `goal` if free, else the first run at or after `goal` that fits, else the first that fits
  // anywhere, else the largest runs in address order. The blocks become fresh.
  Result<std::vector<Run>> Allocate(uint64_t count, uint64_t goal);
  // Blocks no longer mapped. Fresh ones are free at once; the others are deferred with
  // `generation` (the running transaction's).
  void Release(uint64_t start, uint64_t count, uint64_t generation);
  // Deferred blocks released at or before `safe_generation` become free.
  void ReleaseDeferred(uint64_t safe_generation);
  // The running transaction committed: fresh blocks become used; its deferrals stand.
  void Commit();
  // The running transaction aborted: fresh blocks become free; its deferrals are undone.
  void Abort();

  bool IsFresh(uint64_t block) const;
  // True when every block of [start, start + count) is fresh.
  bool AllFresh(uint64_t start, uint64_t count) const;
  bool IsFree(uint64_t block) const;

  uint64_t free_blocks() const { return free_blocks_; }
  uint64_t fresh_blocks() const { return fresh_blocks_; }
  uint64_t deferred_blocks() const { return deferred_blocks_; }
  std::vector<Run> FreeRuns() const;

 private:
  // Interval maps start -> count, non-overlapping, adjacent runs merged.
  using RunMap = std::map<uint64_t, uint64_t>;
  static void Insert(RunMap* map, uint64_t start, uint64_t count);
  // Removes [start, start+count) from `map`; returns false (changing nothing) unless all of it is there.
  static bool Erase(RunMap* map, uint64_t start, uint64_t count);
  static bool Contains(const RunMap& map, uint64_t block);

  RunMap free_;
  RunMap fresh_;
  struct Deferred {
    uint64_t start, count, generation;
  };
  std::vector<Deferred> deferred_;
  size_t deferred_committed_ = 0;  // deferred_[0..this) belong to committed transactions
  uint64_t free_blocks_ = 0;
  uint64_t fresh_blocks_ = 0;
  uint64_t deferred_blocks_ = 0;
};

}  // namespace daxfs::space
