// Refcounts with XFS semantics (docs/reflink.md, "Refcounts and freeing"): a record only where
// a range has two or more owners, no record meaning one owner (or free), records never
// overlapping and neighbours with equal counts merged. Logic over the operation's refcount tree
// handle; knows device blocks only: nothing of files, extents or the rmap. On a filesystem
// without reflink (no tree) nothing is shared.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "format/records.h"
#include "fs/op.h"
#include "space/extent_allocator.h"

namespace daxfs::fs {

class Refcount {
 public:
  // Raises the count of every block of [device_block, +count) by one (EOPNOTSUPP without
  // reflink).
  static Status Raise(WriteOp& op, uint64_t device_block, uint64_t count);
  // Lowers it by one; appends to `freed` the runs whose count reached zero (the caller frees
  // them). Without reflink every block is freed.
  static Status Lower(WriteOp& op, uint64_t device_block, uint64_t count,
                      std::vector<space::Run>* freed);
  // The runs of [device_block, +count) with two or more owners, in order.
  static Result<std::vector<space::Run>> SharedRuns(const ReadOp& op, uint64_t device_block,
                                                    uint64_t count);
  // Whether any block of [device_block, +blocks) has two or more owners.
  static Result<bool> AnyShared(const ReadOp& op, uint64_t device_block, uint64_t blocks);
  // The whole tree in key order; records that fail to decode are described in `bad` (and their
  // keys kept in `bad_keys` when given).
  static Status ReadAll(const ReadOp& op, std::vector<format::RefcountRecord>* out,
                        std::vector<std::string>* bad, std::vector<btree::Key>* bad_keys);
};

// What the refcount tree must hold for a set of file ranges, by a sweep line over their ends:
// one record per maximal range with the same number (>= 2) of owners. Special owners are
// ignored.
std::vector<format::RefcountRecord> RefcountsOf(const std::vector<format::RmapRecord>& ranges);

}  // namespace daxfs::fs
