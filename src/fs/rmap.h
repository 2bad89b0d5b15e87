// The reverse map (docs/reflink.md): the extent map turned around, one record per extent keyed
// {device block, owner, file block}, plus the special owners of non-file space (superblock
// slots, METADATA chunks, retired bad space). Logic over the operation's rmap tree handle, as
// XFS's xfs_rmap.c over its btree; knows record layouts, nothing of bytes, file sizes or
// refcounts. Every method is for a filesystem with the rmap (the tree present in the op).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "format/records.h"
#include "format/superblock.h"
#include "fs/op.h"

namespace daxfs::txn {
class Pool;
}

namespace daxfs::fs {

class Rmap {
 public:
  explicit Rmap(txn::Pool* pool) : pool_(pool) {}

  // The rmap half of the extent-record primitives (ExtentMap): the record of extent `x` at
  // `file_block` of `ino` is added, removed or changed from `old` to `x`. A missing or duplicate
  // record is corruption (the rmap disagrees with the extent map).
  static Status AddExtent(WriteOp& op, Ino ino, uint64_t file_block, const format::ExtentRecord& x);
  static Status RemoveExtent(WriteOp& op, Ino ino, uint64_t file_block,
                             const format::ExtentRecord& x);
  static Status ChangeExtent(WriteOp& op, Ino ino, uint64_t file_block,
                             const format::ExtentRecord& old, const format::ExtentRecord& x);

  // The special-owner records of a new filesystem (superblock slots, chunk 0's nodes, chunk 0's
  // twin with its superblock copies), then those of every METADATA chunk the format's
  // transaction typed.
  static Status AddFormatRecords(WriteOp& op, const format::Superblock& sb);
  // Gives every METADATA and METADATA_TWIN chunk without one its `metadata` record (and chunk 0's
  // twin its `superblock` record): those this transaction typed, and all of them whenever the
  // pool's count moved (a chunk typed some other way, the twins). The inserts
  // may type more chunks: loops until none lacks its record. Runs just before every commit.
  Status ReconcileMetadataChunks(WriteOp& op);

  // Retired space: device blocks [device_block, +count) become (part of) an rmap record of owner
  // `bad`, merged with retired neighbours and overlaps so that retired space is maximal runs.
  static Status Retire(WriteOp& op, uint64_t device_block, uint64_t count);

  // Which owners a walk reports (the others are skipped without being decoded).
  enum class Owners : uint8_t { kAll, kFiles, kBad };
  // Calls fn(record) for every record of `which` owners overlapping device blocks [first, end),
  // in key order; fn returns false to stop. A record that fails to decode stops the walk with
  // its error.
  static Status ForEachOverlapping(const ReadOp& op, uint64_t first, uint64_t end, Owners which,
                                   const std::function<bool(const format::RmapRecord&)>& fn);
  // The whole tree in key order; records that fail to decode are described in `bad` (and their
  // keys kept in `bad_keys` when given, so a repair can drop them).
  static Status ReadAll(const ReadOp& op, std::vector<format::RmapRecord>* out,
                        std::vector<std::string>* bad, std::vector<btree::Key>* bad_keys);

 private:
  static Status ReconcileTyped(WriteOp& op, const format::Superblock& sb);

  txn::Pool* pool_;
  uint64_t metadata_chunks_reconciled_ = 0;  // METADATA(_TWIN) chunks known to have records
};

}  // namespace daxfs::fs
