// File data (docs/fs.md): read, copy-on-write write, truncate, fallocate, SEEK_DATA/SEEK_HOLE
// and bmap, in bytes over the block extent map; unsharing and byte copies for the reflink
// operations. Every mutating path plans from the current map, then allocates its blocks and
// reserves its nodes (ENOSPC changes nothing), then copies bytes and changes the map. Changes
// extent maps only through ExtentMap; knows nothing of directories or names.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include <sys/uio.h>

#include "daxfs/filesystem.h"
#include "format/records.h"
#include "fs/node_budget.h"
#include "fs/op.h"

namespace daxfs::device {
class Device;
}

namespace daxfs::fs {

class DataSpace;
class ExtentMap;
class PoisonIndex;
class Remapper;
struct RemapPlan;

// Byte ranges to copy from one file to another (or within one, without overlap).
struct ByteCopy {
  uint64_t src_offset, dst_offset, length;
};

class FileData {
 public:
  FileData(device::Device* device, DataSpace* data, PoisonIndex* poison, NodeBudget* budget,
           ExtentMap* extents, Remapper* remap)
      : device_(device),
        data_(data),
        poison_(poison),
        budget_(budget),
        extents_(extents),
        remap_(remap) {}

  // ---- The operations on regular file `ino` (EISDIR, EINVAL for other types).
  Result<size_t> Read(const ReadOp& op, Ino ino, uint64_t offset, std::span<uint8_t> out) const;
  // The same bytes as pieces of device memory appended to `pieces` (holes: a shared zero
  // buffer), valid while the operation's lock is held.
  Result<size_t> ReadPieces(const ReadOp& op, Ino ino, uint64_t offset, uint64_t length,
                            std::vector<iovec>* pieces) const;
  Status Write(WriteOp& op, Ino ino, uint64_t offset, std::span<const uint8_t> data);
  // The checks of a write that writes nothing.
  static Status CheckWritable(const ReadOp& op, Ino ino);
  Status Truncate(WriteOp& op, Ino ino, uint64_t size);
  // EINVAL / EOPNOTSUPP / EFBIG for a request that can never succeed (before any operation).
  static Status CheckFallocate(uint32_t mode, uint64_t offset, uint64_t length);
  Status Fallocate(WriteOp& op, Ino ino, uint32_t mode, uint64_t offset, uint64_t length);
  Result<uint64_t> SeekData(const ReadOp& op, Ino ino, uint64_t offset) const;
  Result<uint64_t> SeekHole(const ReadOp& op, Ino ino, uint64_t offset) const;
  Result<std::vector<FileExtent>> Bmap(const ReadOp& op, Ino ino) const;

  // ---- For the other modules, on an inode already loaded.
  // Reads/writes the data of `inode` (a write updates and stores the inode).
  Result<size_t> ReadData(const ReadOp& op, const format::Inode& inode, uint64_t offset,
                          std::span<uint8_t> out) const;
  // What ReadData and ReadPieces share: the checks, then sink(src, length) for each piece of
  // [offset, +length) clipped to the size, in order (src null: zeros). Returns the bytes.
  template <typename Sink>
  Result<size_t> WalkData(const ReadOp& op, const format::Inode& inode, uint64_t offset,
                          uint64_t length, Sink&& sink) const;
  Status WriteData(WriteOp& op, format::Inode* inode, uint64_t offset,
                   std::span<const uint8_t> data);
  // Frees every block of an inode whose last link went away.
  Status FreeAllData(WriteOp& op, format::Inode* inode);
  // Unwritten blocks for every hole of the range (fallocate mode 0 / KEEP_SIZE).
  Status AllocateRange(WriteOp& op, format::Inode* inode, uint64_t offset, uint64_t length,
                       bool keep_size);
  // Private copies of the shared blocks of [first_block, +count) of `inode`.
  Status UnshareData(WriteOp& op, format::Inode* inode, uint64_t first_block, uint64_t count);
  // Copies `copies` from `src` into `dst` and then applies `remap` (may be null), with one
  // allocation and reservation for both: nothing changes on error. `src` and `dst` may be the
  // same inode object; no two copies, nor a copy and the remap, may touch one block of dst.
  // Validated by the caller, who sets dst's size and times and stores both inodes.
  Status CopyBytesAndRemap(WriteOp& op, format::Inode* src, format::Inode* dst,
                           const std::vector<ByteCopy>& copies, const RemapPlan* remap,
                           const TreeWork& remap_work);

 private:
  struct WritePlan;    // how a byte range will be written: pieces by treatment
  struct BlockSource;  // the new blocks an operation allocated, handed out in file order
  struct FileSpan;     // a stretch of file blocks with one state

  Status PlanWrite(const ReadOp& op, Ino ino, uint64_t offset, uint64_t length, const uint8_t* src,
                   bool zeroing, WritePlan* plan) const;
  Status PlanEdgeZeroing(const ReadOp& op, const format::Inode& inode, uint64_t offset,
                         uint64_t end, WritePlan* plan) const;
  // Allocates `new_blocks` (goal: a device block) and reserves nodes for `updates` extent-tree
  // updates among `records` existing records (or for any tree work). ENOSPC: nothing allocated.
  Result<BlockSource> ReserveForOp(WriteOp& op, uint64_t new_blocks, uint64_t goal,
                                   uint64_t records, uint64_t updates);
  Result<BlockSource> ReserveForWork(WriteOp& op, uint64_t new_blocks, uint64_t goal,
                                     TreeWork work);
  Status ApplyPlan(WriteOp& op, Ino ino, const WritePlan& plan, BlockSource* blocks);
  Status TruncateData(WriteOp& op, format::Inode* inode, uint64_t size);
  Status PunchOrZero(WriteOp& op, format::Inode* inode, uint64_t offset, uint64_t length, bool zero,
                     bool keep_size);
  Status MapUnwritten(WriteOp& op, Ino ino, const FileSpan& span, BlockSource* blocks);

  device::Device* device_;
  DataSpace* data_;
  PoisonIndex* poison_;
  NodeBudget* budget_;
  ExtentMap* extents_;
  Remapper* remap_;
};

}  // namespace daxfs::fs
