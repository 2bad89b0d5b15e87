// The inode table (the inode tree, key {ino}): reading, storing and deleting inodes, the table's
// header (key {0}: the next inode number, which only grows, and the counts by type), attributes
// as the API reports them. Storing an inode whose size moves EOF notes the layout change for
// mappings. The home of per-inode state: what an inode record holds is format/records.h; new
// kinds of it (special files and rdev) are read and kept here. Knows nothing of names, extents
// or data.
#pragma once

#include <cstdint>

#include "daxfs/filesystem.h"
#include "format/records.h"
#include "fs/op.h"

namespace daxfs::fs {

class Inodes {
 public:
  // ENOENT when absent (and for number 0, the header's key).
  static Result<format::Inode> Get(const ReadOp& op, Ino ino);
  static Status Put(WriteOp& op, const format::Inode& inode);
  // The number the next new inode takes (read-only). ENOSPC when the numbers are exhausted,
  // EUCLEAN when the header names a number in use.
  static Result<Ino> NextNumber(const ReadOp& op);
  // Takes that number, `ino`, for a new inode of `type`, counted in the header; numbers never
  // come back. The caller stores the inode (Put).
  static Status Allocate(WriteOp& op, Ino ino, format::FileType type);
  // The inode is gone (and uncounted): mappings of it see nothing any more.
  static Status Delete(WriteOp& op, const format::Inode& inode);

  // The header: stored (ro_compat posix), or derived from a walk of the table (an image made
  // before it, mounted read-only) when `derive_if_absent`; else ENOENT when absent.
  static Result<format::InodeTableHeader> Header(const ReadOp& op, bool derive_if_absent = true);
  // Stores a header derived from a walk (an older image mounted writable the first time).
  static Status CreateHeader(WriteOp& op);
  // The counts of the header into `stats`.
  static Status CountByType(const ReadOp& op, FsStats* stats);

  static Attr ToAttr(const format::Inode& inode);
};

// Now, in nanoseconds since the epoch (inode times).
int64_t NowNs();

}  // namespace daxfs::fs
