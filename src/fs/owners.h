// Owners of device space: GETFSMAP queries (who owns device range [a, b)?) answered from the
// reverse map in O(log n + k), or without it by the full-scan owner lookup (every extent map and
// the chunk table, O(all extents)); and what the reverse maps must hold, computed from the
// extent maps and the chunk table (for the full scan, the checker and the repair). Reads only;
// never changes a tree. Semantics in owners.cc and docs/reflink.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "daxfs/filesystem.h"
#include "format/records.h"
#include "fs/op.h"

namespace daxfs::txn {
class Pool;
}

namespace daxfs::fs {

class PoisonIndex;

// A validated GETFSMAP query in device blocks plus its resume key.
struct FsmapQuery {
  uint64_t first = 0;  // device blocks [first, end)
  uint64_t end = 0;
  std::optional<FsmapKey> after;
  size_t max = 0;  // 0: all

  bool Overlaps(const format::RmapRecord& r) const;
  // `r` (which overlaps the query) as a GETFSMAP record trimmed to the query range.
  FsmapRecord Trimmed(const format::RmapRecord& r) const;
  // Cuts a sorted answer to the page size and marks the last record of the whole query.
  void Finish(std::vector<FsmapRecord>* records) const;
};

class Owners {
 public:
  Owners(const txn::Pool* pool, const PoisonIndex* poison) : pool_(pool), poison_(poison) {}

  // Bytes [start, end) widened to whole blocks and clipped to the device; EINVAL for start > end.
  Result<FsmapQuery> MakeQuery(uint64_t start, uint64_t end, const std::optional<FsmapKey>& after,
                               size_t max) const;
  // The answer from the reverse map (a filesystem with the rmap).
  Result<std::vector<FsmapRecord>> FromRmap(const ReadOp& op, const FsmapQuery& q) const;
  // The same answer without the reverse map: the full-scan owner lookup of a filesystem made
  // without the rmap, and of the `full-scan` tracking design on any filesystem (the baseline that
  // shows what the rmap buys).
  Result<std::vector<FsmapRecord>> ByFullScan(const ReadOp& op, const FsmapQuery& q) const;

  // Every extent record turned around (one rmap record per extent), in rmap key order.
  static Status ScanFileOwners(const ReadOp& op, std::vector<format::RmapRecord>* out);
  // The special-owner records the chunk table implies: the superblock slots, then one `metadata`
  // record per METADATA chunk (chunk 0 without the superblock slots), in key order.
  std::vector<format::RmapRecord> SpecialOwnerRecords() const;

 private:
  const txn::Pool* pool_;
  const PoisonIndex* poison_;
};

}  // namespace daxfs::fs
