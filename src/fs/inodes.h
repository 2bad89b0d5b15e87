// The inode table (the inode tree, key {ino}): reading, storing and deleting inodes, the next
// inode number, attributes as the API reports them, and counts by type. Storing an inode whose
// size moves EOF notes the layout change for mappings. The home of per-inode state: what an
// inode record holds is format/records.h; new kinds of it (open references, orphans, special
// files) are read and kept here. Knows nothing of names, extents or data.
#pragma once

#include <cstdint>

#include "daxfs/filesystem.h"
#include "format/records.h"
#include "fs/op.h"

namespace daxfs::fs {

class Inodes {
 public:
  // ENOENT when absent.
  static Result<format::Inode> Get(const ReadOp& op, Ino ino);
  static Status Put(WriteOp& op, const format::Inode& inode);
  // The inode is gone: mappings of it see nothing any more (its number may be reused).
  static Status Delete(WriteOp& op, Ino ino);
  // The number a new inode takes (one past the largest in use).
  static Result<Ino> Next(const ReadOp& op);
  // Counts every inode by type into `stats`.
  static Status CountByType(const ReadOp& op, FsStats* stats);

  static Attr ToAttr(const format::Inode& inode);
};

// Now, in nanoseconds since the epoch (inode times).
int64_t NowNs();

}  // namespace daxfs::fs
