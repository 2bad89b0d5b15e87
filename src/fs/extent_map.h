// The extent maps (the extent tree, key {ino, file block}): the one place that changes them.
// Mapping, unmapping (trimming extents at the ends), converting unwritten extents. Every record
// write keeps the reverse map in step (Rmap) and notes the layout change for mappings; every
// unmapped range goes back through the refcounts (freed only at the last owner), the poison
// index (bad blocks retired, losses forgotten) and the data space. Knows nothing of byte
// offsets, file sizes or file types: callers speak in blocks.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "format/records.h"
#include "fs/blocks.h"
#include "fs/op.h"

namespace daxfs::device {
class Device;
}

namespace daxfs::fs {

class DataSpace;
class PoisonIndex;

// A file block and the extent that starts there.
using PlacedExtent = std::pair<uint64_t, format::ExtentRecord>;

class ExtentMap {
 public:
  ExtentMap(const device::Device* device, DataSpace* data, PoisonIndex* poison)
      : device_(device), data_(data), poison_(poison) {}

  // Calls fn(file_block, extent) -> bool for every extent of `ino` overlapping
  // [first_block, +count), in order, with the extent as stored (it may start before
  // first_block); fn returns false to stop. EUCLEAN for an extent beyond the device.
  template <typename Fn>
  Status ForEach(const ReadOp& op, Ino ino, uint64_t first_block, uint64_t count, Fn&& fn) const;
  Result<uint64_t> Count(const ReadOp& op, Ino ino, uint64_t first_block, uint64_t count) const;
  // The device block after the extent at or before `file_block` (0 when none): a goal that
  // keeps a file contiguous.
  Result<uint64_t> Goal(const ReadOp& op, Ino ino, uint64_t file_block) const;

  // Maps [file_block, +x.blocks) of `ino` to x (the range must be unmapped: EINVAL); merges
  // with a contiguous neighbour of the same flags.
  Status Map(WriteOp& op, Ino ino, uint64_t file_block, const format::ExtentRecord& x);
  // Maps a run of any length (split at kMaxExtentBlocks).
  Status MapRun(WriteOp& op, Ino ino, uint64_t file_block, uint64_t device_block, uint64_t count,
                uint32_t flags);
  // Maps `pieces` (in order, inside an unmapped range of `ino`) as Map one by one would,
  // without neighbour lookups for the middle ones.
  Status MapPieces(WriteOp& op, Ino ino, const std::vector<PlacedExtent>& pieces);
  // Removes every mapping in [first_block, +count) of `ino` (trimming extents that straddle the
  // ends) and drops their device blocks. Returns the blocks unmapped.
  Result<uint64_t> Unmap(WriteOp& op, Ino ino, uint64_t first_block, uint64_t count);
  // Marks [file_block, +count) written where it is unwritten (splitting extents as needed).
  Status ConvertUnwritten(WriteOp& op, Ino ino, uint64_t file_block, uint64_t count);

 private:
  // Positions `c` on the first extent of `ino` that may overlap first_block.
  Status SeekFirstOverlap(btree::Cursor* c, Ino ino, uint64_t first_block) const;
  Status CheckOnDevice(Ino ino, uint64_t file_block, const format::ExtentRecord& x) const;
  // The three extent-record primitives: the only writes to the extent tree, each with its rmap
  // change and layout note.
  Status InsertRecord(WriteOp& op, Ino ino, uint64_t file_block, const format::ExtentRecord& x);
  Status DeleteRecord(WriteOp& op, Ino ino, uint64_t file_block, const format::ExtentRecord& x);
  Status UpdateRecord(WriteOp& op, Ino ino, uint64_t file_block, const format::ExtentRecord& old,
                      const format::ExtentRecord& x);
  // Unmapped device blocks: their refcount is lowered with reflink (freed at zero), else freed.
  Status DropBlocks(WriteOp& op, uint64_t device_block, uint64_t count);

  const device::Device* device_;
  DataSpace* data_;
  PoisonIndex* poison_;
};

template <typename Fn>
Status ExtentMap::ForEach(const ReadOp& op, Ino ino, uint64_t first_block, uint64_t count,
                          Fn&& fn) const {
  if (count == 0) return Status::Ok();
  uint64_t end = SaturatingEnd(first_block, count);
  btree::Cursor c(op.extents());
  RETURN_IF_ERROR(SeekFirstOverlap(&c, ino, first_block));
  while (c.Valid() && c.key().w[0] == ino && c.key().w[1] < end) {
    uint64_t file_block = c.key().w[1];
    ASSIGN_OR_RETURN(format::ExtentRecord x, ExtentAt(c));
    RETURN_IF_ERROR(CheckOnDevice(ino, file_block, x));
    if (!fn(file_block, static_cast<const format::ExtentRecord&>(x))) break;
    RETURN_IF_ERROR(c.Next());
  }
  return Status::Ok();
}

}  // namespace daxfs::fs
