// The poison index (docs/media.md): what is known to be bad, from the poison tree (lost file
// ranges, bad device ranges; they survive remount) and from this mount's in-memory overlay
// (a read-only filesystem, or one shut down, keeps what it hears there). Answers the data path's
// questions (is this range lost? is this device range bad?), trims losses when a file stops
// mapping a range, retires bad blocks whose last owner goes away, and records new damage.
// Knows nothing of mappings, signals or how a failure is planned (media_failures.h).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "daxfs/media.h"
#include "format/records.h"
#include "fs/op.h"
#include "space/extent_allocator.h"

namespace daxfs::device {
class Device;
}

namespace daxfs::fs {

class DataSpace;

class PoisonIndex {
 public:
  PoisonIndex(const device::Device* device, DataSpace* data) : device_(device), data_(data) {}

  // Whether any loss or bad range is known. When false -- the normal case -- the data path
  // skips every media check: one pointer test and one load.
  bool Active(const ReadOp& op) const {
    return (op.poison() != nullptr && op.poison()->root() != 0) || !overlay_lost_.empty() ||
           !overlay_bad_.empty();
  }

  // ---- What the data path asks.
  // The lost records of `ino` overlapping file blocks [first, end) (tree and overlay), in order.
  Result<std::vector<format::LostRecord>> Losses(const ReadOp& op, Ino ino, uint64_t first,
                                                 uint64_t end) const;
  // The lost file blocks of `ino` in [first_block, +count), clipped, as runs of file blocks in
  // order (start = file block).
  Result<std::vector<space::Run>> LostRuns(const ReadOp& op, Ino ino, uint64_t first_block,
                                           uint64_t count) const;
  // EIO naming the first lost file offset of `ino` in [first_block, +count), if any (`what`:
  // the operation, for the message).
  Status CheckNotLost(const ReadOp& op, Ino ino, uint64_t first_block, uint64_t count,
                      const char* what) const;
  // EIO when device blocks [device_block, +count) hold bad bytes not recorded yet.
  Status CheckDeviceGood(Ino ino, uint64_t file_block, uint64_t device_block, uint64_t count,
                         const char* what) const;
  // Calls fn(file_block, blocks, device_block) for every lost range of `ino` overlapping
  // [first_block, +count), clipped, in order.
  Status ForEachLostRange(const ReadOp& op, Ino ino, uint64_t first_block, uint64_t count,
                          const std::function<void(uint64_t, uint64_t, uint64_t)>& fn) const;
  // The bad-range records overlapping device blocks [first, end), in order.
  Result<std::vector<format::BadRecord>> BadRecords(const ReadOp& op, uint64_t first,
                                                    uint64_t end) const;
  // Retired space (bad blocks no file owns) as `bad`-owner rmap records, maximal runs, in order;
  // `file_owners` is every file extent turned around.
  Result<std::vector<format::RmapRecord>> RetiredRecords(
      const ReadOp& op, const std::vector<format::RmapRecord>& file_owners) const;
  // Every lost record, tree and overlay, by (inode, file block).
  Result<std::vector<format::LostRecord>> AllLosses(const ReadOp& op) const;

  // ---- What unmapping and freeing do when something is poisoned.
  // `ino` no longer maps [first_block, +count): its losses there are forgotten.
  Status ForgetLosses(WriteOp& op, Ino ino, uint64_t first_block, uint64_t count);
  // Device blocks whose last owner went away: bad ones are retired, the rest released.
  Status ReleaseOrRetire(WriteOp& op, uint64_t device_block, uint64_t count);
  // Mount: bad ranges never count as free data space.
  Status ExcludeBadFromDataSpace(const ReadOp& op);

  // ---- Recording damage.
  static Status RecordLost(WriteOp& op, const format::LostRecord& lost);
  static Status RecordBad(WriteOp& op, const format::BadRecord& bad);
  // Known to this mount only (read-only, or after a shutdown).
  void KeepLost(const format::LostRecord& lost) { overlay_lost_.push_back(lost); }
  void KeepBad(const std::vector<space::Run>& device_blocks);
  void KeepMetadataHit(const RangePiece& piece) { overlay_metadata_.push_back(piece); }
  const std::vector<space::Run>& kept_bad() const { return overlay_bad_; }
  const std::vector<RangePiece>& kept_metadata_hits() const { return overlay_metadata_; }

 private:
  const device::Device* device_;
  DataSpace* data_;
  std::vector<format::LostRecord> overlay_lost_;
  std::vector<space::Run> overlay_bad_;       // device blocks, sorted and merged
  std::vector<RangePiece> overlay_metadata_;  // metadata hits routed to this mount
};

}  // namespace daxfs::fs
