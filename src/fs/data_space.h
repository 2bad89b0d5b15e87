// Data space: the free blocks of DATA chunks (space::ExtentAllocator), typing new DATA chunks
// when they run out, and forgetting the chunks an aborted transaction untyped. Rebuilt at mount
// from the rmap (or, without it, from every extent map). Knows chunks and block numbers; nothing
// of files, extents or refcounts (the extent map decides when blocks go back).
#pragma once

#include <cstdint>
#include <vector>

#include "fs/op.h"
#include "space/extent_allocator.h"

namespace daxfs::txn {
class Pool;
}

namespace daxfs::fs {

class DataSpace {
 public:
  explicit DataSpace(txn::Pool* pool) : pool_(pool) {}

  // Allocates `count` data blocks (all or nothing), preferring one run at `goal`; types new DATA
  // chunks as needed (ENOSPC when even those are not enough: nothing typed). The blocks are
  // fresh: writable in place until commit.
  Result<std::vector<space::Run>> Allocate(WriteOp& op, uint64_t count, uint64_t goal);
  // Gives back device blocks no longer mapped: fresh ones at once, committed ones deferred.
  void Release(WriteOp& op, uint64_t device_block, uint64_t count);
  // An operation is about to fail after Allocate typed chunks for it (its blocks already
  // released): when it is the first of its transaction, the abort untypes them.
  void ForgetChunksOfFailingOp(WriteOp& op);

  // The transaction's life (the filesystem's transaction hooks).
  void TxnBegan();
  void TxnCommitted() { free_.Commit(); }
  void TxnAborted() { free_.Abort(); }

  // Mount: free space = DATA chunks minus every file-owned rmap range, or minus every extent
  // without a kept rmap.
  Status Rebuild(const ReadOp& op);

  // What is free, fresh and deferred (queries only).
  const space::ExtentAllocator& blocks() const { return free_; }
  // Takes blocks out of free space (retired bad blocks, a repair), or adds free ones.
  Status MarkUsed(uint64_t start, uint64_t count) { return free_.MarkUsed(start, count); }
  void AddFree(uint64_t start, uint64_t count) { free_.AddFree(start, count); }

 private:
  Status DropAbortedChunks();
  void AddDataChunks();
  Status RebuildFromRmap(const ReadOp& op);

  txn::Pool* pool_;
  space::ExtentAllocator free_;
  // DATA chunks typed by Allocate whose transaction has not committed yet: if it aborts, the
  // chunk is untyped and its blocks must be forgotten.
  struct PendingChunk {
    uint64_t chunk;
    uint64_t generation;
  };
  std::vector<PendingChunk> pending_;
};

}  // namespace daxfs::fs
