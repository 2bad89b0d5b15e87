// The one place that changes extent maps (the extent tree) and data space: mapping, unmapping,
// converting unwritten extents, allocating and releasing data blocks, reserving metadata nodes
// for map changes, the mount-time rebuild. Every extent-record write goes through the rmap.cc
// primitives (which keep the reverse map in step) and every unmapped range through DropDataRef
// (refcounts: freed only at the last owner). Knows nothing of byte offsets, file sizes or file
// types: callers speak in blocks.
#include <fmt/core.h>

#include <algorithm>
#include <limits>
#include <map>
#include <optional>

#include "base/log.h"
#include "format/btree_node.h"
#include "fs/fs_impl.h"
#include "fs/refcount.h"
#include "fs/rmap.h"

namespace daxfs::fs {

using format::ExtentRecord;

namespace {

constexpr uint64_t kNoEnd = std::numeric_limits<uint64_t>::max();

uint64_t SaturatingEnd(uint64_t first, uint64_t count) {
  return count > kNoEnd - first ? kNoEnd : first + count;
}

bool Mergeable(const ExtentRecord& left, const ExtentRecord& right) {
  return left.flags == right.flags && left.device_block + left.blocks == right.device_block &&
         uint64_t{left.blocks} + right.blocks <= format::kMaxExtentBlocks;
}

}  // namespace

// ---- Reading the map.

Status FsImpl::ForEachExtent(const ReadOp& op, Ino ino, uint64_t first_block, uint64_t count,
                             const std::function<bool(uint64_t, const ExtentRecord&)>& fn) {
  if (count == 0) return Status::Ok();
  uint64_t end = SaturatingEnd(first_block, count);
  btree::Cursor c(op.extents());
  RETURN_IF_ERROR(c.SeekLE(ExtentKey(ino, first_block)));
  if (!c.Valid()) {
    RETURN_IF_ERROR(c.SeekGE(ExtentKey(ino, first_block)));
  } else if (c.key().w[0] != ino) {
    RETURN_IF_ERROR(c.Next());
  } else {
    ASSIGN_OR_RETURN(ExtentRecord before,
                     format::DecodeExtent(ino, c.key().w[1], c.value().data()));
    if (c.key().w[1] + before.blocks <= first_block) RETURN_IF_ERROR(c.Next());
  }
  while (c.Valid() && c.key().w[0] == ino && c.key().w[1] < end) {
    uint64_t file_block = c.key().w[1];
    ASSIGN_OR_RETURN(ExtentRecord x, format::DecodeExtent(ino, file_block, c.value().data()));
    if (!device_->Contains(x.device_block * format::kBlockSize,
                           uint64_t{x.blocks} * format::kBlockSize)) {
      return Status::Corruption(fmt::format(
          "extent of inode {} at file block {}: device blocks {}..{} are beyond the device", ino,
          file_block, x.device_block, x.device_block + x.blocks - 1));
    }
    if (!fn(file_block, x)) break;
    RETURN_IF_ERROR(c.Next());
  }
  return Status::Ok();
}

Result<uint64_t> FsImpl::CountExtents(const ReadOp& op, Ino ino, uint64_t first_block, uint64_t count) {
  uint64_t n = 0;
  RETURN_IF_ERROR(ForEachExtent(op, ino, first_block, count, [&](uint64_t, const ExtentRecord&) {
    ++n;
    return true;
  }));
  return n;
}

Result<uint64_t> FsImpl::DataGoal(const ReadOp& op, Ino ino, uint64_t file_block) {
  btree::Cursor c(op.extents());
  RETURN_IF_ERROR(c.SeekLE(ExtentKey(ino, file_block)));
  if (!c.Valid() || c.key().w[0] != ino) return uint64_t{0};
  ASSIGN_OR_RETURN(ExtentRecord x, format::DecodeExtent(ino, c.key().w[1], c.value().data()));
  return x.device_block + x.blocks;
}

// ---- Changing the map.

Status FsImpl::MapExtent(WriteOp& op, Ino ino, uint64_t file_block, const ExtentRecord& x) {
  uint64_t end = file_block + x.blocks;
  std::optional<std::pair<uint64_t, ExtentRecord>> left, right;
  btree::Cursor c(op.extents());
  RETURN_IF_ERROR(c.SeekLE(ExtentKey(ino, file_block)));
  if (c.Valid() && c.key().w[0] == ino) {
    ASSIGN_OR_RETURN(ExtentRecord l, format::DecodeExtent(ino, c.key().w[1], c.value().data()));
    if (c.key().w[1] + l.blocks > file_block) {
      return Status::Invalid(
          fmt::format("inode {}: mapping file block {} over a mapped one", ino, file_block));
    }
    if (c.key().w[1] + l.blocks == file_block && Mergeable(l, x)) left.emplace(c.key().w[1], l);
  }
  RETURN_IF_ERROR(c.SeekGE(ExtentKey(ino, file_block)));
  if (c.Valid() && c.key().w[0] == ino && c.key().w[1] < end) {
    return Status::Invalid(fmt::format("inode {}: mapping file blocks {}..{} over a mapped one",
                                       ino, file_block, end - 1));
  }
  if (c.Valid() && c.key().w[0] == ino && c.key().w[1] == end) {
    ASSIGN_OR_RETURN(ExtentRecord r, format::DecodeExtent(ino, end, c.value().data()));
    if (Mergeable(x, r)) right.emplace(end, r);
  }
  if (left && right &&
      !Mergeable({left->second.device_block, left->second.blocks + x.blocks, x.flags},
                 right->second)) {
    right.reset();  // all three would be too long for one extent
  }
  ExtentRecord merged = x;
  if (right) {
    RETURN_IF_ERROR(DeleteExtentRecord(op, ino, right->first, right->second));
    merged.blocks += right->second.blocks;
  }
  if (left) {
    merged = {left->second.device_block, left->second.blocks + merged.blocks, x.flags};
    return UpdateExtentRecord(op, ino, left->first, left->second, merged);
  }
  return InsertExtentRecord(op, ino, file_block, merged);
}

Status FsImpl::MapRun(WriteOp& op, Ino ino, uint64_t file_block, uint64_t device_block, uint64_t count,
                      uint32_t flags) {
  while (count > 0) {
    uint64_t n = std::min(count, format::kMaxExtentBlocks);
    RETURN_IF_ERROR(MapExtent(op, ino, file_block, {device_block, static_cast<uint32_t>(n), flags}));
    file_block += n;
    device_block += n;
    count -= n;
  }
  return Status::Ok();
}

Status FsImpl::MapPieces(WriteOp& op, Ino ino, const std::vector<std::pair<uint64_t, ExtentRecord>>& pieces) {
  // Merge in memory what MapExtent would merge; then no middle piece can merge with anything
  // already stored (its left neighbour is the previous piece, its right one not mapped yet).
  std::vector<std::pair<uint64_t, ExtentRecord>> merged;
  merged.reserve(pieces.size());
  for (const auto& [file_block, x] : pieces) {
    if (!merged.empty()) {
      auto& [last_block, last] = merged.back();
      if (last_block + last.blocks == file_block && Mergeable(last, x)) {
        last.blocks += x.blocks;
        continue;
      }
    }
    merged.emplace_back(file_block, x);
  }
  for (size_t i = 0; i < merged.size(); ++i) {
    const auto& [file_block, x] = merged[i];
    if (i == 0 || i + 1 == merged.size()) {
      RETURN_IF_ERROR(MapExtent(op, ino, file_block, x));  // may merge with a neighbour outside
    } else {
      RETURN_IF_ERROR(InsertExtentRecord(op, ino, file_block, x));
    }
  }
  return Status::Ok();
}

namespace {

using ExtentList = std::vector<std::pair<uint64_t, ExtentRecord>>;

}  // namespace

Result<uint64_t> FsImpl::UnmapRange(WriteOp& op, Ino ino, uint64_t first_block, uint64_t count) {
  uint64_t end = SaturatingEnd(first_block, count);
  ExtentList found;
  RETURN_IF_ERROR(ForEachExtent(op, ino, first_block, count, [&](uint64_t fb, const ExtentRecord& x) {
    found.emplace_back(fb, x);
    return true;
  }));
  if (PoisonActive(op)) RETURN_IF_ERROR(ForgetLosses(op, ino, first_block, count));
  uint64_t unmapped = 0;
  for (auto& [start, x] : found) {
    uint64_t x_end = start + x.blocks;
    uint64_t from = std::max(start, first_block), to = std::min(x_end, end);
    if (start < first_block) {
      ExtentRecord head{x.device_block, static_cast<uint32_t>(first_block - start), x.flags};
      RETURN_IF_ERROR(UpdateExtentRecord(op, ino, start, x, head));
    } else {
      RETURN_IF_ERROR(DeleteExtentRecord(op, ino, start, x));
    }
    if (x_end > end) {
      ExtentRecord tail{x.device_block + (end - start), static_cast<uint32_t>(x_end - end),
                        x.flags};
      RETURN_IF_ERROR(InsertExtentRecord(op, ino, end, tail));
    }
    RETURN_IF_ERROR(DropDataRef(op, x.device_block + (from - start), to - from));
    unmapped += to - from;
  }
  return unmapped;
}

Status FsImpl::ConvertUnwritten(WriteOp& op, Ino ino, uint64_t file_block, uint64_t count) {
  uint64_t end = SaturatingEnd(file_block, count);
  ExtentList found;
  RETURN_IF_ERROR(ForEachExtent(op, ino, file_block, count, [&](uint64_t fb, const ExtentRecord& x) {
    if (x.flags & format::kExtentUnwritten) found.emplace_back(fb, x);
    return true;
  }));
  for (auto& [start, x] : found) {
    uint64_t x_end = start + x.blocks;
    uint64_t from = std::max(start, file_block), to = std::min(x_end, end);
    if (start < from) {
      ExtentRecord head{x.device_block, static_cast<uint32_t>(from - start), x.flags};
      RETURN_IF_ERROR(UpdateExtentRecord(op, ino, start, x, head));
    } else {
      RETURN_IF_ERROR(DeleteExtentRecord(op, ino, start, x));
    }
    if (to < x_end) {
      ExtentRecord tail{x.device_block + (to - start), static_cast<uint32_t>(x_end - to), x.flags};
      RETURN_IF_ERROR(InsertExtentRecord(op, ino, to, tail));
    }
    uint32_t written = x.flags & ~format::kExtentUnwritten;
    RETURN_IF_ERROR(MapExtent(op, 
        ino, from, {x.device_block + (from - start), static_cast<uint32_t>(to - from), written}));
  }
  return Status::Ok();
}

// ---- The extent-record primitives.

Status FsImpl::InsertExtentRecord(WriteOp& op, Ino ino, uint64_t file_block, const ExtentRecord& x) {
  op.NoteLayoutChange(ino, file_block, x.blocks);
  RETURN_IF_ERROR(op.writer(FsTree::kExtents).Insert(ExtentKey(ino, file_block), ExtentValue(x).bytes));
  if (op.rmap() == nullptr) return Status::Ok();
  return Rmap::AddExtent(op, ino, file_block, x);
}

Status FsImpl::DeleteExtentRecord(WriteOp& op, Ino ino, uint64_t file_block, const ExtentRecord& x) {
  op.NoteLayoutChange(ino, file_block, x.blocks);
  RETURN_IF_ERROR(op.writer(FsTree::kExtents).Delete(ExtentKey(ino, file_block)));
  if (op.rmap() == nullptr) return Status::Ok();
  return Rmap::RemoveExtent(op, ino, file_block, x);
}

Status FsImpl::UpdateExtentRecord(WriteOp& op, Ino ino, uint64_t file_block, const ExtentRecord& old,
                                  const ExtentRecord& x) {
  op.NoteLayoutChange(ino, file_block, std::max(old.blocks, x.blocks));
  RETURN_IF_ERROR(op.writer(FsTree::kExtents).Update(ExtentKey(ino, file_block), ExtentValue(x).bytes));
  if (op.rmap() == nullptr) return Status::Ok();
  return Rmap::ChangeExtent(op, ino, file_block, old, x);
}

// ---- Unmapped blocks.

Status FsImpl::DropDataRef(WriteOp& op, uint64_t device_block, uint64_t count) {
  if (count == 0) return Status::Ok();
  if (op.refcount() == nullptr) {
    if (PoisonActive(op)) return ReleaseOrRetire(op, device_block, count);  // docs/media.md
    ReleaseData(op, device_block, count);
    return Status::Ok();
  }
  std::vector<space::Run> freed;
  RETURN_IF_ERROR(Refcount::Lower(op, device_block, count, &freed));
  for (const space::Run& r : freed) {
    if (PoisonActive(op)) {
      RETURN_IF_ERROR(ReleaseOrRetire(op, r.start, r.count));  // bad blocks are retired
    } else {
      ReleaseData(op, r.start, r.count);
    }
  }
  return Status::Ok();
}

// ---- Data space.

Result<std::vector<space::Run>> FsImpl::AllocateData(WriteOp& op, uint64_t count, uint64_t goal) {
  if (count == 0) return std::vector<space::Run>{};
  RETURN_IF_ERROR(DropAbortedDataChunks());
  Result<std::vector<space::Run>> runs = data_.Allocate(count, goal);
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
  if (data_.free_blocks() + untyped_blocks < count) {
    return Status::NoSpace(fmt::format("need {} data blocks: {} free and {} in unallocated chunks",
                                       count, data_.free_blocks(), untyped_blocks));
  }
  while (data_.free_blocks() < count) {
    Result<uint64_t> chunk = op.txn().AllocateChunk(format::ChunkType::kData);
    if (!chunk.ok()) {
      ForgetDataChunksOfFailingOp(op);
      return chunk.status().code() == ENOSPC
                 ? Status::NoSpace("no chunk left for data: " + chunk.status().message())
                 : chunk.status();
    }
    data_.AddFree(sb.ChunkFirstBlock(*chunk), sb.ChunkBlockCount(*chunk));
    pending_data_chunks_.push_back({*chunk, op.txn().generation()});
  }
  return data_.Allocate(count, goal);
}

void FsImpl::ReleaseData(WriteOp& op, uint64_t device_block, uint64_t count) {
  if (count == 0) return;
  data_.Release(device_block, count, op.txn().generation());
}

// A chunk typed DATA stays typed once its transaction commits; if the transaction aborts, the
// pool forgets the typing, and so must `data_` before it hands out a block of that chunk.
Status FsImpl::DropAbortedDataChunks() {
  if (pending_data_chunks_.empty()) return Status::Ok();
  format::Superblock sb = pool_->superblock();
  std::map<uint64_t, format::ChunkType> types;
  for (auto& [chunk, type] : pool_->Chunks()) types[chunk] = type;
  Status result;
  std::erase_if(pending_data_chunks_, [&](const PendingDataChunk& p) {
    auto it = types.find(p.chunk);
    if (it != types.end() && it->second == format::ChunkType::kData) {
      return sb.generation >= p.generation;  // committed: no longer pending
    }
    Status s = data_.MarkUsed(sb.ChunkFirstBlock(p.chunk), sb.ChunkBlockCount(p.chunk));
    if (!s.ok() && result.ok()) {
      result = Status::Corruption(
          fmt::format("data chunk {} was untyped by an abort but {}", p.chunk, s.message()));
    }
    return true;
  });
  return result;
}

// Called when an operation is about to fail after AllocateData typed chunks for it (the blocks it
// got are already released). WriteOp aborts the transaction when its first operation fails,
// which untypes those chunks; later operations of a group leave the transaction, and the
// chunks, in place.
void FsImpl::ForgetDataChunksOfFailingOp(WriteOp& op) {
  if (!op.first_in_txn()) return;
  format::Superblock sb = pool_->superblock();
  std::erase_if(pending_data_chunks_, [&](const PendingDataChunk& p) {
    if (p.generation != op.txn().generation()) return false;
    Status s = data_.MarkUsed(sb.ChunkFirstBlock(p.chunk), sb.ChunkBlockCount(p.chunk));
    if (!s.ok()) {
      base::Log(base::LogLevel::kError, "data chunk {} typed by a failing operation: {}", p.chunk,
                s.ToString());
    }
    return true;
  });
}

Status FsImpl::ReserveExtentUpdates(WriteOp& op, uint64_t records, uint64_t updates) {
  // Every extent update may unmap a piece (one refcount call); the rmap follows the extent map.
  return ReserveTreeWork(op, 
      {.local_records = records, .local_updates = updates, .refcount_calls = updates});
}

namespace {

uint64_t SaturatingMul(uint64_t a, uint64_t b) {
  return b != 0 && a > std::numeric_limits<uint64_t>::max() / b ? kNoEnd : a * b;
}

}  // namespace

// Two bounds, the smaller wins. Per update: a copied root-to-leaf path, a split at every level,
// a new root, a copied sibling (2 * height + 4, the height allowed to grow by one). For the
// whole batch: a committed node is copied at most once per transaction (the copy is fresh and
// then changed in place), so copies are at most the nodes there are; splits make at most one
// node per full leaf plus one per MinFill - 1 records added, and internal splits at most as many
// again. Node counts come from the record count, every non-root node being at least MinFill full.
Result<uint64_t> FsImpl::TreeHeight(WriteOp& op, const btree::BTree* tree) {
  if (tree == nullptr || tree->root() == 0) return uint64_t{0};
  ASSIGN_OR_RETURN(const uint8_t* root, op.txn().Read(tree->root()));
  return uint64_t{format::BTreeNodeLevel(root)} + 1;
}

Result<uint64_t> FsImpl::WorstCaseNodes(WriteOp& op, const btree::BTree* tree, uint64_t updates, uint64_t inserts) {
  if (tree == nullptr || updates == 0) return uint64_t{0};
  ASSIGN_OR_RETURN(uint64_t height, TreeHeight(op, tree));
  const uint64_t per_update = 2 * height + 4;
  int64_t records = static_cast<int64_t>(pool_->superblock().tree(tree->spec().id).records) +
                    tree->count_delta();
  uint64_t m0 = std::max(2, tree->MinFill(0)), m1 = std::max(2, tree->MinFill(1));
  uint64_t leaves = static_cast<uint64_t>(std::max<int64_t>(records, 0)) / m0 + 1;
  uint64_t nodes_now = leaves + leaves / (m1 - 1) + height + 1;
  uint64_t splits = 2 * (leaves + inserts / (m0 - 1) + 1);
  return std::min(SaturatingMul(updates, per_update), nodes_now + splits + per_update);
}

Status FsImpl::ReserveTreeWork(WriteOp& op, const TreeWork& w) {
  uint64_t nodes = 0;
  if (w.local_updates > 0) {
    // The data path's estimate: each update may copy a root-to-leaf path and split every level
    // (ReserveNodes' worst case, at the tallest of the inode, dirent and extent trees), but
    // updates among consecutive records share their paths: once a leaf is copied it is fresh
    // and later updates in it copy nothing. Leaves touched: at most one per MinFill records
    // (existing ones plus those the updates add), plus the neighbours a rebalance borrows from.
    uint64_t height = 1;
    for (const btree::BTree* t : {op.inodes(), op.dirents(), op.extents()}) {
      ASSIGN_OR_RETURN(uint64_t h, TreeHeight(op, t));
      height = std::max(height, h);
    }
    uint64_t per_leaf = std::max(1, op.extents()->MinFill(0));
    uint64_t by_leaves = (w.local_records + w.local_updates) / per_leaf + 4;
    nodes += (std::min(w.local_updates, by_leaves) + 1) * (2 * height + 2);  // + the inode's
  }
  ASSIGN_OR_RETURN(uint64_t extents,
                   WorstCaseNodes(op, op.extents(), w.extent_updates, w.extent_inserts));
  ASSIGN_OR_RETURN(uint64_t inodes, WorstCaseNodes(op, op.inodes(), w.other_updates, w.other_updates));
  nodes += extents + inodes;
  // One rmap change per extent-record change (no caller moves a record's device block, which
  // would cost two). The local updates are anywhere in the rmap: it is ordered by device block.
  uint64_t map_updates = w.local_updates + w.extent_updates;
  ASSIGN_OR_RETURN(uint64_t rmap, WorstCaseNodes(op, op.rmap(), map_updates,
                                                 w.local_updates + w.extent_inserts));
  nodes += rmap;
  if (PoisonActive(op)) {  // lost records trimmed, bad blocks retired (docs/media.md)
    ASSIGN_OR_RETURN(uint64_t poison, PoisonWorkNodes(op, map_updates, w.refcount_calls));
    nodes += poison;
  }
  if (op.refcount() != nullptr && w.refcount_calls > 0) {
    int64_t signed_records =
        static_cast<int64_t>(pool_->superblock().tree(format::TreeId::kRefcount).records) +
        op.refcount()->count_delta();
    uint64_t records = static_cast<uint64_t>(std::max<int64_t>(signed_records, 0));
    // Lowering counts where there are no records changes nothing. Otherwise each call splits at
    // most two records at its edges and changes every record (and, raising, every hole) inside;
    // records never outnumber the distinct boundaries: those there are plus two per call.
    if (records > 0 || w.increments) {
      uint64_t most_records = records + 2 * w.refcount_calls;
      uint64_t updates = SaturatingMul(w.refcount_calls, 2 * most_records + 5);
      ASSIGN_OR_RETURN(uint64_t refcount, WorstCaseNodes(op, op.refcount(), updates, most_records));
      nodes += refcount;
    }
  }
  return op.txn().EnsureNodes(nodes);
}

// ---- Mount.

Status FsImpl::RebuildDataSpace(const ReadOp& op) {
  // A kept rmap always holds the superblock's record: an empty one was never kept (an image
  // from before the rmap was maintained), so the extent maps are the only truth there.
  if (op.rmap() != nullptr && op.rmap()->root() != 0) return RebuildDataSpaceFromRmap(op);
  format::Superblock sb = pool_->superblock();
  for (auto& [chunk, type] : pool_->Chunks()) {
    if (type == format::ChunkType::kData)
      data_.AddFree(sb.ChunkFirstBlock(chunk), sb.ChunkBlockCount(chunk));
  }
  btree::Cursor c(op.extents());
  RETURN_IF_ERROR(c.SeekFirst());
  while (c.Valid()) {
    uint64_t ino = c.key().w[0], file_block = c.key().w[1];
    ASSIGN_OR_RETURN(ExtentRecord x, format::DecodeExtent(ino, file_block, c.value().data()));
    Status used = data_.MarkUsed(x.device_block, x.blocks);
    if (!used.ok()) {
      return Status::Corruption(fmt::format("inode {} file block {} (device blocks {}..{}): {}",
                                            ino, file_block, x.device_block,
                                            x.device_block + x.blocks - 1, used.message()));
    }
    RETURN_IF_ERROR(c.Next());
  }
  return Status::Ok();
}

// ---- Mount with the rmap.

Status FsImpl::RebuildDataSpaceFromRmap(const ReadOp& op) {
  format::Superblock sb = pool_->superblock();
  for (auto& [chunk, type] : pool_->Chunks()) {
    if (type == format::ChunkType::kData)
      data_.AddFree(sb.ChunkFirstBlock(chunk), sb.ChunkBlockCount(chunk));
  }
  // Records come in device order; shared blocks have several, so mark only what is new.
  uint64_t covered_end = 0;
  btree::Cursor c(op.rmap());
  RETURN_IF_ERROR(c.SeekFirst());
  while (c.Valid()) {
    const btree::Key& k = c.key();
    if (k.w[1] != format::kOwnerSuperblock && k.w[1] != format::kOwnerMetadata) {
      ASSIGN_OR_RETURN(format::RmapRecord r,
                       format::DecodeRmap(k.w[0], k.w[1], k.w[2], c.value().data()));
      uint64_t from = std::max(r.device_block, covered_end), end = r.device_block + r.blocks;
      if (from < end) {
        Status used = data_.MarkUsed(from, end - from);
        if (!used.ok()) {
          return Status::Corruption(fmt::format(
              "rmap record of owner {} file block {} (device blocks {}..{}): {}", r.owner,
              r.file_block, r.device_block, end - 1, used.message()));
        }
      }
      covered_end = std::max(covered_end, end);
    }
    RETURN_IF_ERROR(c.Next());
  }
  return Status::Ok();
}

}  // namespace daxfs::fs
