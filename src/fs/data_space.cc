// Data space (data_space.h): allocation with DATA chunks typed on demand, the pending chunks of
// the open transaction, and the mount-time rebuild.
#include "fs/data_space.h"

#include <fmt/core.h>

#include <algorithm>
#include <map>

#include "base/log.h"
#include "txn/pool.h"

namespace daxfs::fs {

using format::ExtentRecord;

Result<std::vector<space::Run>> DataSpace::Allocate(WriteOp& op, uint64_t count, uint64_t goal) {
  if (count == 0) return std::vector<space::Run>{};
  RETURN_IF_ERROR(DropAbortedChunks());
  Result<std::vector<space::Run>> runs = free_.Allocate(count, goal);
  if (runs.ok() || runs.status().code() != ENOSPC) return runs;

  // Type DATA chunks until the blocks fit; first make sure they can, so that nothing is typed
  // in vain.
  format::Superblock sb = pool_->superblock();
  std::vector<bool> typed(sb.chunk_count, false);
  for (auto& [chunk, type] : pool_->Chunks()) typed[chunk] = true;
  uint64_t untyped_blocks = 0;
  for (uint64_t c = 0; c < sb.chunk_count; ++c) {
    if (!typed[c]) untyped_blocks += sb.ChunkBlockCount(c);
  }
  if (free_.free_blocks() + untyped_blocks < count) {
    return Status::NoSpace(fmt::format("need {} data blocks: {} free and {} in unallocated chunks",
                                       count, free_.free_blocks(), untyped_blocks));
  }
  while (free_.free_blocks() < count) {
    Result<uint64_t> chunk = op.txn().AllocateChunk(format::ChunkType::kData);
    if (!chunk.ok()) {
      ForgetChunksOfFailingOp(op);
      return chunk.status().code() == ENOSPC
                 ? Status::NoSpace("no chunk left for data: " + chunk.status().message())
                 : chunk.status();
    }
    free_.AddFree(sb.ChunkFirstBlock(*chunk), sb.ChunkBlockCount(*chunk));
    pending_.push_back({*chunk, op.txn().generation()});
  }
  return free_.Allocate(count, goal);
}

void DataSpace::Release(WriteOp& op, uint64_t device_block, uint64_t count) {
  if (count == 0) return;
  free_.Release(device_block, count, op.txn().generation());
}

void DataSpace::TxnBegan() { free_.ReleaseDeferred(pool_->superblock().generation); }

// A chunk typed DATA stays typed once its transaction commits; if the transaction aborts, the
// pool forgets the typing, and so must the free space before it hands out a block of that chunk.
Status DataSpace::DropAbortedChunks() {
  if (pending_.empty()) return Status::Ok();
  format::Superblock sb = pool_->superblock();
  std::map<uint64_t, format::ChunkType> types;
  for (auto& [chunk, type] : pool_->Chunks()) types[chunk] = type;
  Status result;
  std::erase_if(pending_, [&](const PendingChunk& p) {
    auto it = types.find(p.chunk);
    if (it != types.end() && it->second == format::ChunkType::kData) {
      return sb.generation >= p.generation;  // committed: no longer pending
    }
    Status s = free_.MarkUsed(sb.ChunkFirstBlock(p.chunk), sb.ChunkBlockCount(p.chunk));
    if (!s.ok() && result.ok()) {
      result = Status::Corruption(
          fmt::format("data chunk {} was untyped by an abort but {}", p.chunk, s.message()));
    }
    return true;
  });
  return result;
}

// The runner aborts the transaction when its first operation fails, which untypes those chunks;
// later operations of a group leave the transaction, and the chunks, in place.
void DataSpace::ForgetChunksOfFailingOp(WriteOp& op) {
  if (!op.first_in_txn()) return;
  format::Superblock sb = pool_->superblock();
  std::erase_if(pending_, [&](const PendingChunk& p) {
    if (p.generation != op.txn().generation()) return false;
    Status s = free_.MarkUsed(sb.ChunkFirstBlock(p.chunk), sb.ChunkBlockCount(p.chunk));
    if (!s.ok()) {
      base::Log(base::LogLevel::kError, "data chunk {} typed by a failing operation: {}", p.chunk,
                s.ToString());
    }
    return true;
  });
}

// ---- Mount.

void DataSpace::AddDataChunks() {
  format::Superblock sb = pool_->superblock();
  for (auto& [chunk, type] : pool_->Chunks()) {
    if (type == format::ChunkType::kData)
      free_.AddFree(sb.ChunkFirstBlock(chunk), sb.ChunkBlockCount(chunk));
  }
}

Status DataSpace::Rebuild(const ReadOp& op) {
  // A kept rmap always holds the superblock's record: an empty one was never kept (an image
  // from before the rmap was maintained), so the extent maps are the only truth there.
  if (op.rmap() != nullptr && op.rmap()->root() != 0) return RebuildFromRmap(op);
  AddDataChunks();
  btree::Cursor c(op.extents());
  RETURN_IF_ERROR(c.SeekFirst());
  while (c.Valid()) {
    uint64_t ino = c.key().w[0], file_block = c.key().w[1];
    ASSIGN_OR_RETURN(ExtentRecord x, ExtentAt(c));
    Status used = free_.MarkUsed(x.device_block, x.blocks);
    if (!used.ok()) {
      return Status::Corruption(fmt::format("inode {} file block {} (device blocks {}..{}): {}",
                                            ino, file_block, x.device_block,
                                            x.device_block + x.blocks - 1, used.message()));
    }
    RETURN_IF_ERROR(c.Next());
  }
  return Status::Ok();
}

Status DataSpace::RebuildFromRmap(const ReadOp& op) {
  AddDataChunks();
  // Records come in device order; shared blocks have several, so mark only what is new.
  uint64_t covered_end = 0;
  btree::Cursor c(op.rmap());
  RETURN_IF_ERROR(c.SeekFirst());
  while (c.Valid()) {
    const btree::Key& k = c.key();
    if (k.w[1] != format::kOwnerSuperblock && k.w[1] != format::kOwnerMetadata) {
      ASSIGN_OR_RETURN(format::RmapRecord r, RmapAt(c));
      uint64_t from = std::max(r.device_block, covered_end), end = r.device_block + r.blocks;
      if (from < end) {
        Status used = free_.MarkUsed(from, end - from);
        if (!used.ok()) {
          return Status::Corruption(
              fmt::format("rmap record of owner {} file block {} (device blocks {}..{}): {}",
                          r.owner, r.file_block, r.device_block, end - 1, used.message()));
        }
      }
      covered_end = std::max(covered_end, end);
    }
    RETURN_IF_ERROR(c.Next());
  }
  return Status::Ok();
}

}  // namespace daxfs::fs
