// Open-file references (in memory) and the orphan tree (orphans.h).
#include "fs/orphans.h"

#include <fmt/core.h>

#include <cstring>

#include "fs/inodes.h"

namespace daxfs::fs {

void Orphans::Retain(Ino ino) {
  std::lock_guard<std::mutex> lock(mu_);
  ++refs_[ino];
}

Result<bool> Orphans::Release(Ino ino) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = refs_.find(ino);
  if (it == refs_.end()) {
    return Status::Invalid(fmt::format("inode {} holds no reference to release", ino));
  }
  if (--it->second > 0) return false;
  refs_.erase(it);
  return true;
}

bool Orphans::IsRetained(Ino ino) const {
  std::lock_guard<std::mutex> lock(mu_);
  return refs_.count(ino) != 0;
}

void Orphans::DropAll() {
  std::lock_guard<std::mutex> lock(mu_);
  refs_.clear();
}

Status Orphans::Keep(WriteOp& op, format::Inode* inode, int64_t now) {
  inode->nlink = 0;
  inode->ctime_ns = now;
  RETURN_IF_ERROR(Inodes::Put(op, *inode));
  uint8_t value[format::kOrphanValueSize] = {};
  return op.writer(FsTree::kOrphans).Insert(OrphanKey(inode->ino), value);
}

Result<bool> Orphans::IsOrphan(const ReadOp& op, Ino ino) {
  uint8_t value[format::kOrphanValueSize];
  return op.orphans()->Get(OrphanKey(ino), value);
}

Status Orphans::DeleteRecord(WriteOp& op, Ino ino) {
  return op.writer(FsTree::kOrphans).Delete(OrphanKey(ino));
}

Result<std::vector<Ino>> Orphans::List(const ReadOp& op) {
  std::vector<Ino> out;
  btree::Cursor c(op.orphans());
  for (Status s = c.SeekFirst();; s = c.Next()) {
    RETURN_IF_ERROR(s);
    if (!c.Valid()) break;
    out.push_back(c.key().w[0]);
  }
  return out;
}

}  // namespace daxfs::fs
