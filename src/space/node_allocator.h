// Allocation of 4 KiB metadata nodes inside METADATA chunks, with the states a copy-on-write
// engine needs: free, fresh (allocated by the running transaction), used (reachable from the
// committed roots), deferred (released by a committed transaction, reusable once no reader
// can reach it) and retired (a bad slot, never handed out again). Knows block numbers and
// chunks only: nothing about trees or devices.
//
// Threading: one writer changes states; readers may call IsFresh/State/marks concurrently for
// nodes they can reach (states are relaxed atomics, one byte per node).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "daxfs/status.h"

namespace daxfs::space {

enum class NodeState : uint8_t {
  kNotMetadata = 0,  // the block is not in a metadata region (or is reserved, e.g. a superblock)
  kFree = 1,
  kFresh = 2,
  kUsed = 3,
  kDeferred = 4,
  kRetired = 5,  // a bad slot: never allocated again (until the allocator is rebuilt at mount)
};
const char* NodeStateName(NodeState state);

struct NodeCounts {
  uint64_t total = 0;  // blocks in metadata regions, reserved ones excluded
  uint64_t free = 0;
  uint64_t fresh = 0;
  uint64_t used = 0;
  uint64_t deferred = 0;
  uint64_t retired = 0;
};

class NodeAllocator {
 public:
  // Space is `chunk_count` chunks of `chunk_blocks` blocks; the last chunk holds the remainder
  // of `total_blocks`.
  NodeAllocator(uint64_t total_blocks, uint64_t chunk_blocks);

  // Makes a chunk a metadata region whose blocks start free, except `reserved_prefix` blocks at
  // its start (the superblock slots in chunk 0), which stay kNotMetadata.
  Status AddChunk(uint64_t chunk, uint64_t reserved_prefix = 0);
  // Undoes AddChunk (used when a transaction that converted the chunk aborts). Every block of
  // the chunk must be free.
  Status RemoveChunk(uint64_t chunk);
  bool IsMetadataChunk(uint64_t chunk) const;

  // Mount-time rebuild: marks a free node used. EUCLEAN if it is not a metadata block, or if it
  // is already used (owned twice).
  Status MarkUsed(uint64_t block);

  // Takes a free node (next-fit from the last allocation) and makes it fresh. ENOSPC when none.
  Result<uint64_t> Allocate();
  // A fresh node that is no longer needed: free again at once.
  void FreeFresh(uint64_t block);
  // A used node released by the running transaction: deferred until `ReleaseDeferred`.
  void Defer(uint64_t block, uint64_t generation);
  // Makes every deferred node whose releasing generation is <= `safe_generation` free.
  void ReleaseDeferred(uint64_t safe_generation);
  // The running transaction committed: its fresh nodes become used.
  void CommitFresh(const std::vector<uint64_t>& fresh);
  // The running transaction aborted: `deferred_in_txn` go back to used.
  void UndoDefer(const std::vector<uint64_t>& deferred_in_txn);

  // Takes a slot out of service for good: a free slot becomes retired now; a fresh, used or
  // deferred one when it would next become free (it is never handed out again). EINVAL for a
  // block outside the metadata regions. Retiring twice is harmless.
  Status Retire(uint64_t block);
  // Retired slots and slots waiting to be retired, ascending.
  std::vector<uint64_t> RetiredBlocks() const;

  NodeState State(uint64_t block) const;
  bool IsFresh(uint64_t block) const { return State(block) == NodeState::kFresh; }
  NodeCounts Counts() const { return counts_; }

  // One caller-owned bit per node ("verified since it was last allocated"), cleared by Allocate.
  bool TestMark(uint64_t block) const;
  void SetMark(uint64_t block);

 private:
  struct Chunk {
    uint64_t first_block;
    uint64_t blocks;
    std::unique_ptr<std::atomic<uint8_t>[]> state;  // NodeState | kMarkBit
  };
  static constexpr uint8_t kMarkBit = 0x80;
  static constexpr uint8_t kStateMask = 0x7f;

  std::atomic<uint8_t>* Slot(uint64_t block) const;
  void SetState(uint64_t block, NodeState from, NodeState to);
  // The state a slot leaving `from` for free takes: retired if it waits for that.
  void MakeFree(uint64_t block, NodeState from);
  void Count(NodeState state, int64_t delta);

  uint64_t total_blocks_;
  uint64_t chunk_blocks_;
  std::vector<std::unique_ptr<Chunk>> chunks_;  // indexed by chunk number; null if not metadata
  std::vector<uint64_t> metadata_chunks_;       // allocation order
  struct Deferred {
    uint64_t block;
    uint64_t generation;
  };
  std::vector<Deferred> deferred_;
  std::vector<uint64_t> retire_pending_;  // sorted; not free yet, retired when freed
  NodeCounts counts_;
  size_t cursor_chunk_ = 0;  // index into metadata_chunks_
  uint64_t cursor_block_ = 0;
};

}  // namespace daxfs::space
