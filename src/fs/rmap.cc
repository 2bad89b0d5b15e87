// Reverse-map maintenance: the extent-record primitives that keep the rmap the extent map turned
// around (docs/reflink.md), the special-owner records of superblock and METADATA chunks, and the
// mount-time rebuild of data free space from the rmap. Knows record layouts and trees, nothing of
// bytes, file sizes or refcounts.
#include <fmt/core.h>

#include <algorithm>

#include "fs/fs_impl.h"

namespace daxfs::fs {

using format::ExtentRecord;

namespace {

// The rmap disagreeing with the extent map is corruption, not a caller's mistake.
Status RmapMismatch(const Status& s, const char* what, Ino ino, uint64_t file_block,
                    const ExtentRecord& x) {
  if (s.ok() || (s.code() != ENOENT && s.code() != EEXIST)) return s;
  return Status::Corruption(fmt::format(
      "rmap: {} the record of inode {} file block {} (device blocks {}..{}): {}", what, ino,
      file_block, x.device_block, x.device_block + x.blocks - 1, s.message()));
}

Status InsertRmap(TreeWriter& rmap, Ino ino, uint64_t file_block, const ExtentRecord& x) {
  Status s = rmap.Insert(RmapKey(x.device_block, ino, file_block), RmapValue(x).bytes);
  return RmapMismatch(s, "inserting", ino, file_block, x);
}

Status DeleteRmap(TreeWriter& rmap, Ino ino, uint64_t file_block, const ExtentRecord& x) {
  Status s = rmap.Delete(RmapKey(x.device_block, ino, file_block));
  return RmapMismatch(s, "deleting", ino, file_block, x);
}

}  // namespace

// ---- The extent-record primitives.

Status FsImpl::InsertExtentRecord(WriteOp& op, Ino ino, uint64_t file_block, const ExtentRecord& x) {
  op.NoteLayoutChange(ino, file_block, x.blocks);
  RETURN_IF_ERROR(op.writer(FsTree::kExtents).Insert(ExtentKey(ino, file_block), ExtentValue(x).bytes));
  if (op.rmap() == nullptr) return Status::Ok();
  return InsertRmap(op.writer(FsTree::kRmap), ino, file_block, x);
}

Status FsImpl::DeleteExtentRecord(WriteOp& op, Ino ino, uint64_t file_block, const ExtentRecord& x) {
  op.NoteLayoutChange(ino, file_block, x.blocks);
  RETURN_IF_ERROR(op.writer(FsTree::kExtents).Delete(ExtentKey(ino, file_block)));
  if (op.rmap() == nullptr) return Status::Ok();
  return DeleteRmap(op.writer(FsTree::kRmap), ino, file_block, x);
}

Status FsImpl::UpdateExtentRecord(WriteOp& op, Ino ino, uint64_t file_block, const ExtentRecord& old,
                                  const ExtentRecord& x) {
  op.NoteLayoutChange(ino, file_block, std::max(old.blocks, x.blocks));
  RETURN_IF_ERROR(op.writer(FsTree::kExtents).Update(ExtentKey(ino, file_block), ExtentValue(x).bytes));
  if (op.rmap() == nullptr) return Status::Ok();
  if (old.device_block != x.device_block) {  // the rmap key moves
    RETURN_IF_ERROR(DeleteRmap(op.writer(FsTree::kRmap), ino, file_block, old));
    return InsertRmap(op.writer(FsTree::kRmap), ino, file_block, x);
  }
  Status s = op.writer(FsTree::kRmap).Update(RmapKey(x.device_block, ino, file_block), RmapValue(x).bytes);
  return RmapMismatch(s, "updating", ino, file_block, old);
}

// ---- Special owners.

Status FsImpl::AddFormatRmapRecords(WriteOp& op, const format::Superblock& sb) {
  TreeWriter& rmap = op.writer(FsTree::kRmap);
  RETURN_IF_ERROR(rmap.Insert(RmapKey(0, format::kOwnerSuperblock, 0),
                              RmapValue(format::kFirstNodeBlock, 0).bytes));
  uint64_t chunk0 = sb.ChunkBlockCount(0);
  RETURN_IF_ERROR(rmap.Insert(RmapKey(format::kFirstNodeBlock, format::kOwnerMetadata, 0),
                              RmapValue(chunk0 - format::kFirstNodeBlock, 0).bytes));
  return ReconcileMetadataChunks(op, sb);
}

Status FsImpl::ReconcileMetadataChunks(WriteOp& op, const format::Superblock& sb) {
  TreeWriter& rmap = op.writer(FsTree::kRmap);
  // Indexes, not iterators: an insert may type another chunk and grow the list.
  for (size_t i = 0; i < op.txn().metadata_chunks_typed().size(); ++i) {
    uint64_t chunk = op.txn().metadata_chunks_typed()[i];
    btree::Key key = RmapKey(sb.ChunkFirstBlock(chunk), format::kOwnerMetadata, 0);
    ASSIGN_OR_RETURN(bool present, rmap.tree()->Get(key, nullptr));
    if (present) continue;
    Status s = rmap.Insert(key, RmapValue(sb.ChunkBlockCount(chunk), 0).bytes);
    RETURN_IF_ERROR(s.WithContext(fmt::format("rmap record of metadata chunk {}", chunk)));
  }
  return Status::Ok();
}

Status FsImpl::ReconcileAllMetadataChunks(WriteOp& op) {
  format::Superblock sb = pool_->superblock();
  RETURN_IF_ERROR(ReconcileMetadataChunks(op, sb));
  TreeWriter& rmap = op.writer(FsTree::kRmap);
  // Chunks typed some other way (a pool transaction of a test or tool, an older build): check
  // them all whenever the count moved. An insert may type one more: then look again.
  while (pool_->Space().metadata_chunks != metadata_chunks_reconciled_) {
    uint64_t count = 0;
    for (auto& [chunk, type] : pool_->Chunks()) {
      if (type != format::ChunkType::kMetadata) continue;
      ++count;
      uint64_t first = sb.ChunkFirstBlock(chunk), blocks = sb.ChunkBlockCount(chunk);
      if (chunk == 0) {
        first += format::kFirstNodeBlock;
        blocks -= format::kFirstNodeBlock;
      }
      btree::Key key = RmapKey(first, format::kOwnerMetadata, 0);
      ASSIGN_OR_RETURN(bool present, rmap.tree()->Get(key, nullptr));
      if (present) continue;
      Status s = rmap.Insert(key, RmapValue(blocks, 0).bytes);
      RETURN_IF_ERROR(s.WithContext(fmt::format("rmap record of metadata chunk {}", chunk)));
    }
    metadata_chunks_reconciled_ = count;
  }
  return Status::Ok();
}

// ---- Mount.

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
