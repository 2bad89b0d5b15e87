// Remapping (remap.h): planning which source pieces a clone or dedupe shares, and applying it.
#include "fs/remap.h"

#include <algorithm>

#include "fs/poison.h"
#include "fs/refcount.h"

namespace daxfs::fs {

using format::ExtentRecord;
using format::Inode;

Result<RemapPlan> Remapper::Plan(const ReadOp& op, const Inode& src, uint64_t src_block,
                                 uint64_t blocks, const Inode& dst, uint64_t dst_block,
                                 uint64_t dst_unmap_blocks, TreeWork* work) const {
  RemapPlan plan{.dst_block = dst_block, .dst_unmap_blocks = dst_unmap_blocks};
  uint64_t end = src_block + blocks;
  RETURN_IF_ERROR(
      extents_->ForEach(op, src.ino, src_block, blocks, [&](uint64_t start, const ExtentRecord& x) {
        if (x.flags & format::kExtentUnwritten) return true;
        uint64_t from = std::max(start, src_block), to = std::min(start + x.blocks, end);
        plan.pieces.emplace_back(
            dst_block + (from - src_block),
            ExtentRecord{x.device_block + (from - start), static_cast<uint32_t>(to - from), 0});
        plan.shared_blocks += to - from;
        return true;
      }));
  // Sharing a lost or bad block would hand bad bytes to a new owner: EIO, nothing changed.
  if (poison_->Active(op))
    RETURN_IF_ERROR(poison_->CheckNotLost(op, src.ino, src_block, blocks, "clone"));
  for (const auto& [file_block, x] : plan.pieces) {
    RETURN_IF_ERROR(poison_->CheckDeviceGood(src.ino, src_block + (file_block - dst_block),
                                             x.device_block, x.blocks, "clone"));
  }
  ASSIGN_OR_RETURN(uint64_t dst_records, extents_->Count(op, dst.ino, dst_block, dst_unmap_blocks));
  // Unmapping: each destination record deleted or trimmed, one split at each end (+ a margin for
  // records split by byte writes before the remap). Mapping: an insert per piece, plus merges at
  // the ends. A refcount call per unmapped record and per piece; both inodes.
  uint64_t pieces = plan.pieces.size();
  *work += {.extent_updates = 2 * dst_records + 2 * pieces + 8,
            .extent_inserts = pieces + 4,
            .refcount_calls = dst_records + pieces + 4,
            .increments = pieces > 0,
            .other_updates = 2};
  return plan;
}

Status Remapper::Apply(WriteOp& op, const RemapPlan& plan, Inode* src, Inode* dst) {
  ASSIGN_OR_RETURN(uint64_t unmapped,
                   extents_->Unmap(op, dst->ino, plan.dst_block, plan.dst_unmap_blocks));
  dst->blocks -= unmapped;
  for (const auto& [file_block, x] : plan.pieces) {
    RETURN_IF_ERROR(Refcount::Raise(op, x.device_block, x.blocks));
  }
  RETURN_IF_ERROR(extents_->MapPieces(op, dst->ino, plan.pieces));
  dst->blocks += plan.shared_blocks;
  if (!plan.pieces.empty()) {
    src->flags |= format::kInodeFlagReflinked;
    dst->flags |= format::kInodeFlagReflinked;
  }
  return Status::Ok();
}

}  // namespace daxfs::fs
