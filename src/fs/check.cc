// The filesystem consistency checker: the pool's node-level check plus every cross-structure
// rule of the filesystem (entries, link counts, parents, sizes, extents, data space).
// Read-only; reports every discrepancy with what and where.
#include <fmt/core.h>

#include <algorithm>
#include <map>

#include "fs/fs_impl.h"

namespace daxfs::fs {

using format::FileType;
using format::Inode;

namespace {

struct InodeFacts {
  Inode inode;
  uint64_t entries_naming_it = 0;  // directory entries that point to it
  uint64_t entries_inside = 0;     // directories: entries they hold
  uint64_t subdirs = 0;            // directories: entries that are directories
  uint64_t containing_dir = 0;     // the directory holding the (last seen) entry
  uint64_t mapped_blocks = 0;
};

struct DeviceRange {
  uint64_t start, count, ino, file_block;
};

}  // namespace

Result<FsCheckResult> FsImpl::Check() {
  RETURN_IF_ERROR(Sync());
  FsCheckResult result;
  auto problem = [&](std::string text) { result.problems.push_back(std::move(text)); };

  {
    std::lock_guard<std::mutex> lock(mu_);
    txn::CheckReport pool_report = pool_->Check();
    for (auto& p : pool_report.problems) problem("metadata: " + p);
    result.nodes_checked = pool_report.nodes_checked;
  }

  std::map<uint64_t, InodeFacts> inodes;
  std::vector<DeviceRange> used;
  Status walked = ReadOp([&]() -> Status {
    btree::Cursor c(trees_.inodes);
    for (Status s = c.SeekFirst(); c.Valid(); s = c.Next()) {
      RETURN_IF_ERROR(s);
      Result<Inode> n = format::DecodeInode(c.key().w[0], c.value().data());
      if (!n.ok()) {
        problem(n.status().message());
        continue;
      }
      inodes[n->ino].inode = *n;
    }
    btree::Cursor d(trees_.dirents);
    for (Status s = d.SeekFirst(); d.Valid(); s = d.Next()) {
      RETURN_IF_ERROR(s);
      uint64_t dir = d.key().w[0], slot = d.key().w[1];
      Result<format::Dirent> e = format::DecodeDirent(dir, slot, d.value().data());
      if (!e.ok()) {
        problem(e.status().message());
        continue;
      }
      auto parent = inodes.find(dir);
      if (parent == inodes.end() || parent->second.inode.type != FileType::kDirectory) {
        problem(fmt::format("entry '{}' lives in inode {}, which is not a directory", e->name, dir));
        continue;
      }
      if ((slot & ~format::kSlotCollisionMask) != format::NameHashSlot(e->name)) {
        problem(fmt::format("directory {}: entry '{}' is at slot 0x{:x}, not under its hash", dir,
                            e->name, slot));
      }
      ++parent->second.entries_inside;
      auto target = inodes.find(e->ino);
      if (target == inodes.end()) {
        problem(fmt::format("directory {}: entry '{}' points to missing inode {}", dir, e->name, e->ino));
        continue;
      }
      if (target->second.inode.type != e->type) {
        problem(fmt::format("directory {}: entry '{}' says {} but inode {} is a {}", dir, e->name,
                            format::FileTypeName(e->type), e->ino,
                            format::FileTypeName(target->second.inode.type)));
      }
      ++target->second.entries_naming_it;
      target->second.containing_dir = dir;
      if (e->type == FileType::kDirectory) ++parent->second.subdirs;
    }
    btree::Cursor x(trees_.extents);
    uint64_t last_ino = 0, last_end = 0;
    for (Status s = x.SeekFirst(); x.Valid(); s = x.Next()) {
      RETURN_IF_ERROR(s);
      uint64_t ino = x.key().w[0], fblock = x.key().w[1];
      ++result.extents_checked;
      Result<format::ExtentRecord> ext = format::DecodeExtent(ino, fblock, x.value().data());
      if (!ext.ok()) {
        problem(ext.status().message());
        continue;
      }
      auto owner = inodes.find(ino);
      if (owner == inodes.end() || owner->second.inode.type == FileType::kDirectory) {
        problem(fmt::format("extent at file block {} belongs to inode {}, which is not a file", fblock, ino));
      } else {
        owner->second.mapped_blocks += ext->blocks;
      }
      if (ino == last_ino && fblock < last_end) {
        problem(fmt::format("inode {}: extent at file block {} overlaps the previous one", ino, fblock));
      }
      last_ino = ino;
      last_end = fblock + ext->blocks;
      used.push_back({ext->device_block, ext->blocks, ino, fblock});
    }
    return Status::Ok();
  });
  if (!walked.ok()) {
    problem("walk stopped: " + walked.ToString());
    return result;
  }
  result.inodes_checked = inodes.size();

  for (auto& [ino, f] : inodes) {
    const Inode& n = f.inode;
    if (ino == format::kRootIno) {
      if (n.type != FileType::kDirectory) problem("inode 1 (root) is not a directory");
      if (f.entries_naming_it != 0) problem("the root directory is named by an entry");
    } else if (f.entries_naming_it == 0) {
      problem(fmt::format("inode {} ({}) is named by no directory entry (orphan)", ino,
                          format::FileTypeName(n.type)));
      continue;
    }
    if (n.type == FileType::kDirectory) {
      if (ino != format::kRootIno && f.entries_naming_it != 1) {
        problem(fmt::format("directory {} is named by {} entries", ino, f.entries_naming_it));
      }
      uint64_t parent = ino == format::kRootIno ? format::kRootIno : f.containing_dir;
      if (n.parent != parent) {
        problem(fmt::format("directory {}: parent field {} but it lives in {}", ino, n.parent, parent));
      }
      if (n.nlink != 2 + f.subdirs) {
        problem(fmt::format("directory {}: link count {} but it has {} subdirectories (expected {})",
                            ino, n.nlink, f.subdirs, 2 + f.subdirs));
      }
      if (n.size != f.entries_inside) {
        problem(fmt::format("directory {}: size {} but it holds {} entries", ino, n.size, f.entries_inside));
      }
    } else {
      if (n.nlink != f.entries_naming_it) {
        problem(fmt::format("inode {}: link count {} but {} entries name it", ino, n.nlink,
                            f.entries_naming_it));
      }
      if (n.blocks != f.mapped_blocks) {
        problem(fmt::format("inode {}: says {} blocks but its extents map {}", ino, n.blocks,
                            f.mapped_blocks));
      }
    }
  }

  // Data space: every extent inside DATA chunks, no block owned twice, none both owned and free.
  std::lock_guard<std::mutex> lock(mu_);
  format::Superblock sb = pool_->superblock();
  std::vector<int8_t> chunk_type(sb.chunk_count, -1);
  for (auto& [c, t] : pool_->Chunks()) chunk_type[c] = static_cast<int8_t>(t);
  std::sort(used.begin(), used.end(), [](auto& a, auto& b) { return a.start < b.start; });
  uint64_t used_blocks = 0;
  for (size_t i = 0; i < used.size(); ++i) {
    const DeviceRange& r = used[i];
    used_blocks += r.count;
    uint64_t first_chunk = r.start / sb.chunk_blocks();
    uint64_t last_chunk = (r.start + r.count - 1) / sb.chunk_blocks();
    for (uint64_t c = first_chunk; c <= last_chunk; ++c) {
      if (c >= sb.chunk_count || chunk_type[c] != static_cast<int8_t>(format::ChunkType::kData)) {
        problem(fmt::format("inode {} file block {}: device blocks {}..{} are not in a DATA chunk",
                            r.ino, r.file_block, r.start, r.start + r.count - 1));
        break;
      }
    }
    if (i > 0 && used[i - 1].start + used[i - 1].count > r.start) {
      problem(fmt::format("device block {} is owned twice: inode {} file block {} and inode {} file block {}",
                          r.start, used[i - 1].ino, used[i - 1].file_block, r.ino, r.file_block));
    }
    for (uint64_t b = r.start; b < r.start + r.count; ++b) {
      if (data_.IsFree(b)) {
        problem(fmt::format("device block {} is mapped by inode {} but the allocator has it free", b, r.ino));
        break;
      }
    }
  }
  uint64_t data_chunk_blocks = 0;
  for (uint64_t c = 0; c < sb.chunk_count; ++c) {
    if (chunk_type[c] == static_cast<int8_t>(format::ChunkType::kData)) data_chunk_blocks += sb.ChunkBlockCount(c);
  }
  uint64_t accounted = used_blocks + data_.free_blocks() + data_.deferred_blocks();
  if (accounted != data_chunk_blocks) {
    problem(fmt::format("data space: {} blocks in DATA chunks but {} mapped + {} free + {} deferred = {}",
                        data_chunk_blocks, used_blocks, data_.free_blocks(), data_.deferred_blocks(), accounted));
  }
  return result;
}

}  // namespace daxfs::fs
