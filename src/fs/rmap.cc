// Reverse-map maintenance (rmap.h): the rmap records of extents, the special-owner records of
// the superblock and METADATA chunks, retired space, and reading the tree back. Knows record
// layouts and trees, nothing of bytes, file sizes or refcounts.
#include "fs/rmap.h"

#include <fmt/core.h>

#include <algorithm>

#include "txn/pool.h"

namespace daxfs::fs {

using format::ExtentRecord;
using format::RmapRecord;

namespace {

// The rmap disagreeing with the extent map is corruption, not a caller's mistake.
Status Mismatch(const Status& s, const char* what, Ino ino, uint64_t file_block,
                const ExtentRecord& x) {
  if (s.ok() || (s.code() != ENOENT && s.code() != EEXIST)) return s;
  return Status::Corruption(
      fmt::format("rmap: {} the record of inode {} file block {} (device blocks {}..{}): {}", what,
                  ino, file_block, x.device_block, x.device_block + x.blocks - 1, s.message()));
}

// Inserts the `metadata` record of [first, +blocks) unless it is there.
Status AddMetadataRecord(TreeWriter& rmap, uint64_t chunk, uint64_t first, uint64_t blocks) {
  btree::Key key = RmapKey(first, format::kOwnerMetadata, 0);
  ASSIGN_OR_RETURN(bool present, rmap.tree()->Get(key, nullptr));
  if (present) return Status::Ok();
  Status s = rmap.Insert(key, RmapValue(blocks, 0).bytes);
  return s.WithContext(fmt::format("rmap record of metadata chunk {}", chunk));
}

// The records of a METADATA or METADATA_TWIN chunk: `metadata` for its node slots, and for
// chunk 0's twin (`sb_twin`: it starts with the superblock copies) `superblock` for its first
// blocks. Chunk 0's own superblock record is the format's.
Status AddChunkRecords(TreeWriter& rmap, const format::Superblock& sb, uint64_t chunk,
                       bool sb_twin = false) {
  uint64_t first = sb.ChunkFirstBlock(chunk), blocks = sb.ChunkBlockCount(chunk);
  if (chunk == 0 || sb_twin) {
    if (chunk != 0) {
      btree::Key key = RmapKey(first, format::kOwnerSuperblock, 0);
      ASSIGN_OR_RETURN(bool present, rmap.tree()->Get(key, nullptr));
      if (!present) {
        RETURN_IF_ERROR(
            rmap.Insert(key, RmapValue(format::kFirstNodeBlock, 0).bytes)
                .WithContext(fmt::format("rmap record of superblock twins in chunk {}", chunk)));
      }
    }
    first += format::kFirstNodeBlock;
    blocks -= format::kFirstNodeBlock;
  }
  return AddMetadataRecord(rmap, chunk, first, blocks);
}

}  // namespace

// ---- Extents.

Status Rmap::AddExtent(WriteOp& op, Ino ino, uint64_t file_block, const ExtentRecord& x) {
  Status s =
      op.writer(FsTree::kRmap).Insert(RmapKey(x.device_block, ino, file_block), RmapValue(x).bytes);
  return Mismatch(s, "inserting", ino, file_block, x);
}

Status Rmap::RemoveExtent(WriteOp& op, Ino ino, uint64_t file_block, const ExtentRecord& x) {
  Status s = op.writer(FsTree::kRmap).Delete(RmapKey(x.device_block, ino, file_block));
  return Mismatch(s, "deleting", ino, file_block, x);
}

Status Rmap::ChangeExtent(WriteOp& op, Ino ino, uint64_t file_block, const ExtentRecord& old,
                          const ExtentRecord& x) {
  if (old.device_block != x.device_block) {  // the key moves
    RETURN_IF_ERROR(RemoveExtent(op, ino, file_block, old));
    return AddExtent(op, ino, file_block, x);
  }
  Status s =
      op.writer(FsTree::kRmap).Update(RmapKey(x.device_block, ino, file_block), RmapValue(x).bytes);
  return Mismatch(s, "updating", ino, file_block, old);
}

// ---- Special owners.

Status Rmap::AddFormatRecords(WriteOp& op, const format::Superblock& sb) {
  TreeWriter& rmap = op.writer(FsTree::kRmap);
  RETURN_IF_ERROR(rmap.Insert(RmapKey(0, format::kOwnerSuperblock, 0),
                              RmapValue(format::kFirstNodeBlock, 0).bytes));
  RETURN_IF_ERROR(AddChunkRecords(rmap, sb, 0));
  if (sb.metadup()) RETURN_IF_ERROR(AddChunkRecords(rmap, sb, sb.TwinOf(0), true));
  return ReconcileTyped(op, sb);
}

Status Rmap::ReconcileTyped(WriteOp& op, const format::Superblock& sb) {
  TreeWriter& rmap = op.writer(FsTree::kRmap);
  // Indexes, not iterators: an insert may type another chunk and grow the list. (Their twins
  // get their records from ReconcileMetadataChunks: the typed count moved.)
  for (size_t i = 0; i < op.txn().metadata_chunks_typed().size(); ++i) {
    uint64_t chunk = op.txn().metadata_chunks_typed()[i];
    RETURN_IF_ERROR(AddChunkRecords(rmap, sb, chunk));
  }
  return Status::Ok();
}

Status Rmap::ReconcileMetadataChunks(WriteOp& op) {
  format::Superblock sb = pool_->superblock();
  // Chunks typed by this transaction, their twins, chunks typed some other way (a pool
  // transaction of a test or tool, an older build, adding twins): check them all whenever the
  // count moved. An insert may type one more: then look again.
  auto count = [&] {
    txn::SpaceInfo space = pool_->Space();
    return space.metadata_chunks + space.metadata_twin_chunks;
  };
  TreeWriter& rmap = op.writer(FsTree::kRmap);
  while (count() != metadata_chunks_reconciled_) {
    uint64_t seen = 0;
    std::vector<std::pair<uint64_t, format::ChunkType>> chunks = pool_->Chunks();
    for (auto& [chunk, type] : chunks) {
      if (type != format::ChunkType::kMetadata && type != format::ChunkType::kMetadataTwin)
        continue;
      ++seen;
      // The pool knows chunk 0's twin as soon as it is paired (before a commit says so).
      bool sb_twin = type == format::ChunkType::kMetadataTwin &&
                     pool_->TwinBlock(0) == sb.ChunkFirstBlock(chunk);
      RETURN_IF_ERROR(AddChunkRecords(rmap, sb, chunk, sb_twin));
    }
    metadata_chunks_reconciled_ = seen;
  }
  return Status::Ok();
}

Status Rmap::Retire(WriteOp& op, uint64_t device_block, uint64_t count) {
  if (count == 0) return Status::Ok();
  // Merge with retired neighbours and overlaps.
  uint64_t lo = device_block > 0 ? device_block - 1 : 0, hi = device_block + count + 1;
  std::vector<RmapRecord> found;
  RETURN_IF_ERROR(ForEachOverlapping(op, lo, hi, Owners::kBad, [&](const RmapRecord& r) {
    found.push_back(r);
    return true;
  }));
  TreeWriter& rmap = op.writer(FsTree::kRmap);
  uint64_t start = device_block, end = device_block + count;
  for (const RmapRecord& r : found) {
    start = std::min(start, r.device_block);
    end = std::max(end, r.device_block + r.blocks);
    RETURN_IF_ERROR(rmap.Delete(RmapKey(r.device_block, format::kOwnerBad, 0)));
  }
  return rmap.Insert(RmapKey(start, format::kOwnerBad, 0), RmapValue(end - start, 0).bytes);
}

// ---- Reading.

Status Rmap::ForEachOverlapping(const ReadOp& op, uint64_t first, uint64_t end, Owners which,
                                const std::function<bool(const RmapRecord&)>& fn) {
  Status bad;
  RETURN_IF_ERROR(
      op.rmap()->Overlaps(first, end, [&](const btree::Key& k, std::span<const uint8_t> v) {
        uint64_t owner = k.w[1];
        if (which == Owners::kFiles && format::IsSpecialOwner(owner)) return true;
        if (which == Owners::kBad && owner != format::kOwnerBad) return true;
        Result<RmapRecord> r = RmapAt(k, v);
        if (!r.ok()) {
          bad = r.status();
          return false;
        }
        return fn(*r);
      }));
  return bad;
}

Status Rmap::ReadAll(const ReadOp& op, std::vector<RmapRecord>* out, std::vector<std::string>* bad,
                     std::vector<btree::Key>* bad_keys) {
  btree::Cursor c(op.rmap());
  for (Status s = c.SeekFirst();; s = c.Next()) {
    RETURN_IF_ERROR(s);
    if (!c.Valid()) break;
    Result<RmapRecord> r = RmapAt(c);
    if (r.ok()) {
      out->push_back(*r);
    } else {
      bad->push_back(r.status().message());
      if (bad_keys) bad_keys->push_back(c.key());
    }
  }
  return Status::Ok();
}

}  // namespace daxfs::fs
