// The poison index (poison.h): reading and trimming the poison tree with this mount's overlay,
// the data path's media checks, and retiring bad blocks no file owns any more.
#include "fs/poison.h"

#include <fmt/core.h>

#include <algorithm>
#include <tuple>

#include "device/device.h"
#include "fs/blocks.h"
#include "fs/data_space.h"
#include "fs/rmap.h"
#include "fs/runs.h"

namespace daxfs::fs {

using format::BadRecord;
using format::LostRecord;
using format::RmapRecord;

namespace {

// Positions `c` at the first record with key >= {kind, a, 0} or at the record before it when that
// one may still overlap (the same kind and `a` field are checked by the caller).
Status SeekOverlapStart(btree::Cursor* c, const btree::Key& key) {
  RETURN_IF_ERROR(c->SeekLE(key));
  if (!c->Valid()) return c->SeekGE(key);
  return Status::Ok();
}

// Lost records of `ino` overlapping file blocks [first, end): tree first, then the overlay.
Result<std::vector<LostRecord>> CollectLosses(const btree::BTree* tree,
                                              const std::vector<LostRecord>& overlay, Ino ino,
                                              uint64_t first, uint64_t end) {
  std::vector<LostRecord> out;
  if (tree != nullptr && tree->root() != 0) {
    btree::Cursor c(tree);
    RETURN_IF_ERROR(SeekOverlapStart(&c, LostKey(ino, first)));
    for (Status st;; st = c.Next()) {
      RETURN_IF_ERROR(st);
      if (!c.Valid()) break;
      const btree::Key& k = c.key();
      if (k.w[0] < format::kPoisonLost || (k.w[0] == format::kPoisonLost && k.w[1] < ino)) continue;
      if (k.w[0] != format::kPoisonLost || k.w[1] != ino || k.w[2] >= end) break;
      ASSIGN_OR_RETURN(LostRecord r, LostAt(c));
      if (r.file_block + r.blocks > first) out.push_back(r);
    }
  }
  for (const LostRecord& r : overlay) {
    if (r.ino == ino && r.file_block < end && r.file_block + r.blocks > first) out.push_back(r);
  }
  std::sort(out.begin(), out.end(),
            [](const LostRecord& a, const LostRecord& b) { return a.file_block < b.file_block; });
  return out;
}

}  // namespace

// ---- What the data path asks.

Result<std::vector<LostRecord>> PoisonIndex::Losses(const ReadOp& op, Ino ino, uint64_t first,
                                                    uint64_t end) const {
  return CollectLosses(op.poison(), overlay_lost_, ino, first, end);
}

Result<std::vector<space::Run>> PoisonIndex::LostRuns(const ReadOp& op, Ino ino,
                                                      uint64_t first_block, uint64_t count) const {
  uint64_t end = SaturatingEnd(first_block, count);
  ASSIGN_OR_RETURN(std::vector<LostRecord> losses, Losses(op, ino, first_block, end));
  std::vector<space::Run> runs;
  for (const LostRecord& r : losses) {
    uint64_t s = std::max(r.file_block, first_block), e = std::min(r.file_block + r.blocks, end);
    runs.push_back({s, e - s});
  }
  return Union(std::move(runs));
}

Status PoisonIndex::CheckNotLost(const ReadOp& op, Ino ino, uint64_t first_block, uint64_t count,
                                 const char* what) const {
  uint64_t end = SaturatingEnd(first_block, count);
  ASSIGN_OR_RETURN(std::vector<LostRecord> losses, Losses(op, ino, first_block, end));
  if (losses.empty()) return Status::Ok();
  const LostRecord& r = losses.front();
  uint64_t b = std::max(r.file_block, first_block);
  return Status::IoError(fmt::format(
      "media error: {} of inode {} at file offset {}: the data is lost (bad media at device "
      "offset {})",
      what, ino, b * kBlock, (r.device_block + (b - r.file_block)) * kBlock));
}

Status PoisonIndex::CheckDeviceGood(Ino ino, uint64_t file_block, uint64_t device_block,
                                    uint64_t count, const char* what) const {
  if (!device_->IsBad(device_block * kBlock, count * kBlock)) return Status::Ok();
  uint64_t i = 0;
  while (i + 1 < count && !device_->IsBad((device_block + i) * kBlock, kBlock)) ++i;
  return Status::IoError(
      fmt::format("media error: {} of inode {} at file offset {}: device offset {} is on bad media",
                  what, ino, (file_block + i) * kBlock, (device_block + i) * kBlock));
}

Status PoisonIndex::ForEachLostRange(
    const ReadOp& op, Ino ino, uint64_t first_block, uint64_t count,
    const std::function<void(uint64_t, uint64_t, uint64_t)>& fn) const {
  if (!Active(op) || count == 0) return Status::Ok();
  uint64_t end = SaturatingEnd(first_block, count);
  ASSIGN_OR_RETURN(std::vector<LostRecord> losses, Losses(op, ino, first_block, end));
  for (const LostRecord& r : losses) {
    uint64_t s = std::max(r.file_block, first_block), e = std::min(r.file_block + r.blocks, end);
    fn(s, e - s, r.device_block + (s - r.file_block));
  }
  return Status::Ok();
}

Result<std::vector<BadRecord>> PoisonIndex::BadRecords(const ReadOp& op, uint64_t first,
                                                       uint64_t end) const {
  std::vector<BadRecord> out;
  if (op.poison() == nullptr || op.poison()->root() == 0 || first >= end) return out;
  btree::Cursor c(op.poison());
  RETURN_IF_ERROR(SeekOverlapStart(&c, BadKey(first)));
  for (Status st;; st = c.Next()) {
    RETURN_IF_ERROR(st);
    if (!c.Valid()) break;
    const btree::Key& k = c.key();
    if (k.w[0] < format::kPoisonBad) continue;
    if (k.w[0] != format::kPoisonBad || k.w[1] >= end) break;
    ASSIGN_OR_RETURN(BadRecord r, BadAt(c));
    if (r.device_block + r.blocks > first) out.push_back(r);
  }
  return out;
}

Result<std::vector<RmapRecord>> PoisonIndex::RetiredRecords(
    const ReadOp& op, const std::vector<RmapRecord>& file_owners) const {
  ASSIGN_OR_RETURN(std::vector<BadRecord> bad, BadRecords(op, 0, kNoEnd));
  std::vector<RmapRecord> out;
  if (bad.empty()) return out;
  std::vector<space::Run> bad_runs, owned;
  for (const BadRecord& r : bad) {
    // A retired metadata slot is metadata space (owner `metadata`), not retired data space.
    if (!(r.flags & format::kBadMetadata)) bad_runs.push_back({r.device_block, r.blocks});
  }
  for (const RmapRecord& r : file_owners) {
    if (!format::IsSpecialOwner(r.owner)) owned.push_back({r.device_block, r.blocks});
  }
  owned = Union(std::move(owned));
  for (const space::Run& b : Union(std::move(bad_runs))) {
    for (const space::Run& g : Gaps(b.start, b.start + b.count, owned)) {
      out.push_back({.device_block = g.start, .owner = format::kOwnerBad, .blocks = g.count});
    }
  }
  return out;
}

Result<std::vector<LostRecord>> PoisonIndex::AllLosses(const ReadOp& op) const {
  std::vector<LostRecord> lost = overlay_lost_;
  if (op.poison()->root() != 0) {
    btree::Cursor c(op.poison());
    for (Status s = c.SeekGE(LostKey(0, 0));; s = c.Next()) {
      RETURN_IF_ERROR(s);
      if (!c.Valid() || c.key().w[0] != format::kPoisonLost) break;
      ASSIGN_OR_RETURN(LostRecord r, LostAt(c));
      lost.push_back(r);
    }
  }
  std::sort(lost.begin(), lost.end(), [](auto& a, auto& b) {
    return std::tie(a.ino, a.file_block) < std::tie(b.ino, b.file_block);
  });
  return lost;
}

// ---- What unmapping and freeing do when something is poisoned.

Status PoisonIndex::ForgetLosses(WriteOp& op, Ino ino, uint64_t first_block, uint64_t count) {
  uint64_t end = SaturatingEnd(first_block, count);
  std::erase_if(overlay_lost_, [&](const LostRecord& r) {
    return r.ino == ino && r.file_block >= first_block && r.file_block + r.blocks <= end;
  });
  if (op.poison() == nullptr || op.poison()->root() == 0) return Status::Ok();
  ASSIGN_OR_RETURN(std::vector<LostRecord> losses,
                   CollectLosses(op.poison(), {}, ino, first_block, end));
  TreeWriter& poison = op.writer(FsTree::kPoison);
  for (const LostRecord& r : losses) {
    RETURN_IF_ERROR(poison.Delete(LostKey(ino, r.file_block)));
    if (r.file_block < first_block) {  // the head stays lost
      LostValue head({.blocks = first_block - r.file_block, .device_block = r.device_block});
      RETURN_IF_ERROR(poison.Insert(LostKey(ino, r.file_block), head.bytes));
    }
    uint64_t r_end = r.file_block + r.blocks;
    if (r_end > end) {  // and so does the tail
      LostValue tail(
          {.blocks = r_end - end, .device_block = r.device_block + (end - r.file_block)});
      RETURN_IF_ERROR(poison.Insert(LostKey(ino, end), tail.bytes));
    }
    uint64_t s = std::max(r.file_block, first_block), e = std::min(r_end, end);
    op.NoteLayoutChange(ino, s, e - s);
  }
  return Status::Ok();
}

Status PoisonIndex::ReleaseOrRetire(WriteOp& op, uint64_t device_block, uint64_t count) {
  uint64_t end = device_block + count;
  ASSIGN_OR_RETURN(std::vector<BadRecord> bad, BadRecords(op, device_block, end));
  uint64_t at = device_block;
  for (const BadRecord& r : bad) {
    uint64_t s = std::max(r.device_block, device_block),
             e = std::min(r.device_block + r.blocks, end);
    if (s > at) data_->Release(op, at, s - at);
    // Never free again: its last owner is gone.
    if (op.rmap() != nullptr) RETURN_IF_ERROR(Rmap::Retire(op, s, e - s));
    at = e;
  }
  if (at < end) data_->Release(op, at, end - at);
  return Status::Ok();
}

Status PoisonIndex::ExcludeBadFromDataSpace(const ReadOp& op) {
  ASSIGN_OR_RETURN(std::vector<BadRecord> bad, BadRecords(op, 0, kNoEnd));
  const space::ExtentAllocator& blocks = data_->blocks();
  for (const BadRecord& r : bad) {
    for (uint64_t b = r.device_block; b < r.device_block + r.blocks;) {
      if (!blocks.IsFree(b)) {
        ++b;
        continue;
      }
      uint64_t e = b + 1;
      while (e < r.device_block + r.blocks && blocks.IsFree(e)) ++e;
      RETURN_IF_ERROR(data_->MarkUsed(b, e - b));
      b = e;
    }
  }
  return Status::Ok();
}

// ---- Recording damage.

Status PoisonIndex::RecordLost(WriteOp& op, const LostRecord& lost) {
  RETURN_IF_ERROR(
      op.writer(FsTree::kPoison).Insert(LostKey(lost.ino, lost.file_block), LostValue(lost).bytes));
  op.NoteLayoutChange(lost.ino, lost.file_block, lost.blocks);
  return Status::Ok();
}

Status PoisonIndex::RecordBad(WriteOp& op, const BadRecord& bad) {
  return op.writer(FsTree::kPoison).Insert(BadKey(bad.device_block), BadValue(bad).bytes);
}

void PoisonIndex::KeepBad(const std::vector<space::Run>& device_blocks) {
  overlay_bad_.insert(overlay_bad_.end(), device_blocks.begin(), device_blocks.end());
  overlay_bad_ = Union(std::move(overlay_bad_));
}

}  // namespace daxfs::fs
