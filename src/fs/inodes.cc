// The inode table (inodes.h).
#include "fs/inodes.h"

#include <fmt/core.h>

#include <algorithm>
#include <chrono>

#include "fs/blocks.h"

namespace daxfs::fs {

using format::Inode;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Attr Inodes::ToAttr(const Inode& n) {
  return {.ino = n.ino,
          .type = static_cast<FileType>(n.type),
          .mode = n.mode,
          .uid = n.uid,
          .gid = n.gid,
          .nlink = n.nlink,
          .size = n.size,
          .blocks = n.blocks,
          .atime_ns = n.atime_ns,
          .mtime_ns = n.mtime_ns,
          .ctime_ns = n.ctime_ns,
          .btime_ns = n.btime_ns};
}

Result<Inode> Inodes::Get(const ReadOp& op, Ino ino) {
  uint8_t value[format::kInodeValueSize];
  ASSIGN_OR_RETURN(bool found, op.inodes()->Get(InodeKey(ino), value));
  if (!found) return Status::NotFound(fmt::format("inode {} does not exist", ino));
  return format::DecodeInode(ino, value);
}

Status Inodes::Put(WriteOp& op, const Inode& inode) {
  if (op.observer() != nullptr && op.observer()->Watches(inode.ino)) {  // a size change moves EOF
    Result<Inode> old = Get(op, inode.ino);
    uint64_t was = old.ok() ? BlocksCovering(old->size) : 0;
    uint64_t is = BlocksCovering(inode.size);
    if (old.ok() && was != is) {
      op.NoteLayoutChange(inode.ino, std::min(was, is), std::max(was, is) - std::min(was, is));
    }
  }
  ASSIGN_OR_RETURN(bool added,
                   op.writer(FsTree::kInodes).Put(InodeKey(inode.ino), InodeValue(inode).bytes));
  (void)added;
  return Status::Ok();
}

Status Inodes::Delete(WriteOp& op, Ino ino) {
  op.NoteLayoutChange(ino, 0, kWholeFile / kBlock);  // the file is gone
  return op.writer(FsTree::kInodes).Delete(InodeKey(ino));
}

Result<Ino> Inodes::Next(const ReadOp& op) {
  btree::Cursor c(op.inodes());
  RETURN_IF_ERROR(c.SeekLast());
  if (!c.Valid()) return Status::Corruption("the inode tree is empty");
  return c.key().w[0] + 1;
}

Status Inodes::CountByType(const ReadOp& op, FsStats* st) {
  btree::Cursor c(op.inodes());
  for (Status r = c.SeekFirst(); c.Valid(); r = c.Next()) {
    RETURN_IF_ERROR(r);
    ASSIGN_OR_RETURN(Inode n, InodeAt(c));
    ++st->inodes;
    if (n.type == format::FileType::kRegular) {
      ++st->files;
    } else if (n.type == format::FileType::kDirectory) {
      ++st->directories;
    } else {
      ++st->symlinks;
    }
  }
  return Status::Ok();
}

}  // namespace daxfs::fs
