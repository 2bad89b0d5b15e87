// File layouts for the DAX layer (the fs half of fs/mapping_hooks.h): a file range as device
// segments, telling the mapping observer about every layout change of a watched file before the
// operation that made it commits, and preparing a range for a direct mapping (one write
// operation that leaves it all private written blocks, then the layout handed over under the
// filesystem lock). Knows nothing of address spaces, mmap or mapping handles.
#pragma once

#include <cstdint>
#include <functional>

#include "format/records.h"
#include "fs/mapping_hooks.h"
#include "fs/op.h"

namespace daxfs::fs {

class ExtentMap;
class FileData;
class NodeBudget;
class OpRunner;
class PoisonIndex;

class Layouts {
 public:
  Layouts(OpRunner* runner, device::Device* device, ExtentMap* extents, const PoisonIndex* poison,
          FileData* files, NodeBudget* budget)
      : runner_(runner),
        device_(device),
        extents_(extents),
        poison_(poison),
        files_(files),
        budget_(budget) {}

  // The layout of [first_block, +count) of `ino` now (a removed inode: all kBeyondEof).
  Result<MapLayout> Compute(const ReadOp& op, Ino ino, uint64_t first_block, uint64_t count) const;
  // Tells the observer the new layout of every range noted (merged per file) and forgets them.
  // A layout that cannot be computed is published as kBeyondEof (inaccessible), never stale.
  void Publish(const ReadOp& op, LayoutNotes& notes) const;
  // See FsFace::PrepareMapping. Runs its own operations.
  Status PrepareMapping(Ino ino, uint64_t offset, uint64_t length, bool writable,
                        const std::function<Status(const MapLayout&)>& install);

 private:
  // Makes [first_block, +count) of `inode` all written private blocks (unshares, allocates
  // holes zeroed, zeroes and converts unwritten extents).
  Status MakeWritable(WriteOp& op, format::Inode* inode, uint64_t first_block, uint64_t count);

  OpRunner* runner_;
  device::Device* device_;
  ExtentMap* extents_;
  const PoisonIndex* poison_;
  FileData* files_;
  NodeBudget* budget_;
};

}  // namespace daxfs::fs
