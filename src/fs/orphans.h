// Open-file references and orphans: the references callers hold on inodes (in memory, counted,
// per mount) and the orphan tree (key {ino}), which lists the inodes whose last link went while
// they were referenced. Such an inode stays, with nlink 0, until its last reference goes (or the
// next mount); freeing it is the namespace's (Namespace::FreeOrphan). Knows nothing of names or
// file data.
#pragma once

#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "daxfs/filesystem.h"
#include "format/records.h"
#include "fs/op.h"

namespace daxfs::fs {

class Orphans {
 public:
  // One more reference on `ino` (the caller checked that the inode exists, in an operation).
  void Retain(Ino ino);
  // One reference less: true when it was the last. EINVAL when `ino` has none.
  Result<bool> Release(Ino ino);
  bool IsRetained(Ino ino) const;
  // Forgets every reference (unmount).
  void DropAll();

  // The last link of `inode` went while it is referenced: it stays with nlink 0 (ctime `now`)
  // and gets its orphan record, in the operation of the unlink.
  static Status Keep(WriteOp& op, format::Inode* inode, int64_t now);
  static Result<bool> IsOrphan(const ReadOp& op, Ino ino);
  static Status DeleteRecord(WriteOp& op, Ino ino);
  // Every inode with an orphan record, in order.
  static Result<std::vector<Ino>> List(const ReadOp& op);

 private:
  mutable std::mutex mu_;  // taken alone, never across an operation
  std::unordered_map<Ino, uint64_t> refs_;
};

}  // namespace daxfs::fs
