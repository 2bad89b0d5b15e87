// The inode table (inodes.h).
#include "fs/inodes.h"

#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <limits>

#include "fs/blocks.h"

namespace daxfs::fs {

using format::Inode;
using format::InodeTableHeader;

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
          .btime_ns = n.btime_ns,
          .generation = n.generation,
          .rdev = n.rdev};
}

Result<Inode> Inodes::Get(const ReadOp& op, Ino ino) {
  uint8_t value[format::kInodeValueSize];
  bool found = false;
  if (ino != format::kInodeTableHeaderIno) {
    ASSIGN_OR_RETURN(found, op.inodes()->Get(InodeKey(ino), value));
  }
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

namespace {

Status PutHeader(WriteOp& op, const InodeTableHeader& h) {
  uint8_t value[format::kInodeValueSize];
  format::EncodeInodeTableHeader(h, value);
  ASSIGN_OR_RETURN(bool added,
                   op.writer(FsTree::kInodes).Put(InodeKey(format::kInodeTableHeaderIno), value));
  (void)added;
  return Status::Ok();
}

// The header a walk of the table gives: one past the largest number, the counts by type.
Result<InodeTableHeader> DeriveHeader(const ReadOp& op) {
  InodeTableHeader h;
  btree::Cursor c(op.inodes());
  for (Status r = c.SeekGE(InodeKey(format::kRootIno)); c.Valid(); r = c.Next()) {
    RETURN_IF_ERROR(r);
    ASSIGN_OR_RETURN(Inode n, InodeAt(c));
    ++h.counts[static_cast<size_t>(n.type)];
    h.next_ino = std::max(h.next_ino, n.ino + 1);
  }
  return h;
}

size_t Slot(format::FileType type) { return static_cast<size_t>(type); }

}  // namespace

Result<InodeTableHeader> Inodes::Header(const ReadOp& op, bool derive_if_absent) {
  uint8_t value[format::kInodeValueSize];
  ASSIGN_OR_RETURN(bool found, op.inodes()->Get(InodeKey(format::kInodeTableHeaderIno), value));
  if (found) return format::DecodeInodeTableHeader(value);
  if (!derive_if_absent) return Status::NotFound("the inode table has no header");
  return DeriveHeader(op);
}

Status Inodes::CreateHeader(WriteOp& op) {
  ASSIGN_OR_RETURN(InodeTableHeader h, DeriveHeader(op));
  return PutHeader(op, h);
}

Result<Ino> Inodes::NextNumber(const ReadOp& op) {
  ASSIGN_OR_RETURN(InodeTableHeader h, Header(op, false));
  if (h.next_ino == std::numeric_limits<uint64_t>::max()) {
    return Status::NoSpace("inode numbers are exhausted");
  }
  uint8_t value[format::kInodeValueSize];
  ASSIGN_OR_RETURN(bool taken, op.inodes()->Get(InodeKey(h.next_ino), value));
  if (taken) {  // a damaged header: never overwrite an inode
    return Status::Corruption(fmt::format(
        "the inode table's header gives the next number as {}, which an inode has", h.next_ino));
  }
  return h.next_ino;
}

Status Inodes::Allocate(WriteOp& op, Ino ino, format::FileType type) {
  ASSIGN_OR_RETURN(InodeTableHeader h, Header(op, false));
  if (ino != h.next_ino) {
    return Status::Corruption(fmt::format("inode {} is not the next number ({})", ino, h.next_ino));
  }
  ++h.next_ino;
  ++h.counts[Slot(type)];
  return PutHeader(op, h);
}

Status Inodes::Delete(WriteOp& op, const Inode& inode) {
  ASSIGN_OR_RETURN(InodeTableHeader h, Header(op, false));
  uint64_t& count = h.counts[Slot(inode.type)];
  if (count == 0) {
    return Status::Corruption(fmt::format("inode {}: the inode table's header counts no {} inodes",
                                          inode.ino, format::FileTypeName(inode.type)));
  }
  --count;
  RETURN_IF_ERROR(PutHeader(op, h));
  op.NoteLayoutChange(inode.ino, 0, kWholeFile / kBlock);  // the file is gone
  return op.writer(FsTree::kInodes).Delete(InodeKey(inode.ino));
}

Status Inodes::CountByType(const ReadOp& op, FsStats* st) {
  ASSIGN_OR_RETURN(InodeTableHeader h, Header(op));
  st->inodes = h.total();
  st->files = h.counts[Slot(format::FileType::kRegular)];
  st->directories = h.counts[Slot(format::FileType::kDirectory)];
  st->symlinks = h.counts[Slot(format::FileType::kSymlink)];
  st->special = st->inodes - st->files - st->directories - st->symlinks;
  return Status::Ok();
}

}  // namespace daxfs::fs
