// Remapping, the core of clone and dedupe (docs/reflink.md): a destination range of one file
// is unmapped and the source's written pieces are mapped there, their refcounts raised, so both
// files share the blocks. Planned first (validate, count the tree work), applied after the
// caller reserved. Knows extents, refcounts and the poison index; nothing of bytes or sizes.
#pragma once

#include <cstdint>
#include <vector>

#include "format/records.h"
#include "fs/extent_map.h"
#include "fs/node_budget.h"
#include "fs/op.h"

namespace daxfs::fs {

class PoisonIndex;

// The source pieces of a remap and the destination range it replaces.
struct RemapPlan {
  uint64_t dst_block = 0;         // where the destination range starts
  uint64_t dst_unmap_blocks = 0;  // how much of dst is unmapped first
  // The source's written pieces, at their destination file blocks (unwritten source extents and
  // holes leave holes: unwritten extents are never shared).
  std::vector<PlacedExtent> pieces;
  uint64_t shared_blocks = 0;
};

class Remapper {
 public:
  Remapper(ExtentMap* extents, const PoisonIndex* poison) : extents_(extents), poison_(poison) {}

  // Plans sharing [src_block, +blocks) of `src` at `dst_block` of `dst`, after unmapping
  // [dst_block, +dst_unmap_blocks) there; adds the tree work to `work`. EIO when a source block
  // is lost or on bad media (sharing it would hand bad bytes to a new owner).
  Result<RemapPlan> Plan(const ReadOp& op, const format::Inode& src, uint64_t src_block,
                         uint64_t blocks, const format::Inode& dst, uint64_t dst_block,
                         uint64_t dst_unmap_blocks, TreeWork* work) const;
  // Applies a plan (after the reservation); updates both inodes' block counts and flags (the
  // caller stores them).
  Status Apply(WriteOp& op, const RemapPlan& plan, format::Inode* src, format::Inode* dst);

 private:
  ExtentMap* extents_;
  const PoisonIndex* poison_;
};

}  // namespace daxfs::fs
