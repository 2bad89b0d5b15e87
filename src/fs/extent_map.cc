// The extent maps (extent_map.h): reading a file's extents, mapping with merges, unmapping with
// trims, unwritten conversion, and the three record primitives that keep the rmap in step.
#include "fs/extent_map.h"

#include <fmt/core.h>

#include <algorithm>
#include <optional>

#include "device/device.h"
#include "fs/data_space.h"
#include "fs/poison.h"
#include "fs/refcount.h"
#include "fs/rmap.h"

namespace daxfs::fs {

using format::ExtentRecord;

namespace {

bool Mergeable(const ExtentRecord& left, const ExtentRecord& right) {
  return left.flags == right.flags && left.device_block + left.blocks == right.device_block &&
         uint64_t{left.blocks} + right.blocks <= format::kMaxExtentBlocks;
}

}  // namespace

// ---- Reading the map.

Status ExtentMap::SeekFirstOverlap(btree::Cursor* c, Ino ino, uint64_t first_block) const {
  RETURN_IF_ERROR(c->SeekLE(ExtentKey(ino, first_block)));
  if (!c->Valid()) return c->SeekGE(ExtentKey(ino, first_block));
  if (c->key().w[0] != ino) return c->Next();
  ASSIGN_OR_RETURN(ExtentRecord before, ExtentAt(*c));
  if (c->key().w[1] + before.blocks <= first_block) return c->Next();
  return Status::Ok();
}

Status ExtentMap::CheckOnDevice(Ino ino, uint64_t file_block, const ExtentRecord& x) const {
  if (device_->Contains(x.device_block * kBlock, uint64_t{x.blocks} * kBlock)) return Status::Ok();
  return Status::Corruption(
      fmt::format("extent of inode {} at file block {}: device blocks {}..{} are beyond the device",
                  ino, file_block, x.device_block, x.device_block + x.blocks - 1));
}

Result<uint64_t> ExtentMap::Count(const ReadOp& op, Ino ino, uint64_t first_block,
                                  uint64_t count) const {
  uint64_t n = 0;
  RETURN_IF_ERROR(ForEach(op, ino, first_block, count, [&](uint64_t, const ExtentRecord&) {
    ++n;
    return true;
  }));
  return n;
}

Result<uint64_t> ExtentMap::Goal(const ReadOp& op, Ino ino, uint64_t file_block) const {
  btree::Cursor c(op.extents());
  RETURN_IF_ERROR(c.SeekLE(ExtentKey(ino, file_block)));
  if (!c.Valid() || c.key().w[0] != ino) return uint64_t{0};
  ASSIGN_OR_RETURN(ExtentRecord x, ExtentAt(c));
  return x.device_block + x.blocks;
}

Status ExtentMap::Map(WriteOp& op, Ino ino, uint64_t file_block, const ExtentRecord& x) {
  uint64_t end = file_block + x.blocks;
  std::optional<std::pair<uint64_t, ExtentRecord>> left, right;
  btree::Cursor c(op.extents());
  RETURN_IF_ERROR(c.SeekLE(ExtentKey(ino, file_block)));
  if (c.Valid() && c.key().w[0] == ino) {
    ASSIGN_OR_RETURN(ExtentRecord l, ExtentAt(c));
    if (c.key().w[1] + l.blocks > file_block) {
      return Status::Invalid(
          fmt::format("inode {}: mapping file block {} over a mapped one", ino, file_block));
    }
    if (c.key().w[1] + l.blocks == file_block && Mergeable(l, x)) left.emplace(c.key().w[1], l);
  }
  RETURN_IF_ERROR(c.SeekGE(ExtentKey(ino, file_block)));
  if (c.Valid() && c.key().w[0] == ino && c.key().w[1] < end) {
    return Status::Invalid(fmt::format("inode {}: mapping file blocks {}..{} over a mapped one",
                                       ino, file_block, end - 1));
  }
  if (c.Valid() && c.key().w[0] == ino && c.key().w[1] == end) {
    ASSIGN_OR_RETURN(ExtentRecord r, ExtentAt(c));
    if (Mergeable(x, r)) right.emplace(end, r);
  }
  if (left && right &&
      !Mergeable({left->second.device_block, left->second.blocks + x.blocks, x.flags},
                 right->second)) {
    right.reset();  // all three would be too long for one extent
  }
  ExtentRecord merged = x;
  if (right) {
    RETURN_IF_ERROR(DeleteRecord(op, ino, right->first, right->second));
    merged.blocks += right->second.blocks;
  }
  if (left) {
    merged = {left->second.device_block, left->second.blocks + merged.blocks, x.flags};
    return UpdateRecord(op, ino, left->first, left->second, merged);
  }
  return InsertRecord(op, ino, file_block, merged);
}

Status ExtentMap::MapRun(WriteOp& op, Ino ino, uint64_t file_block, uint64_t device_block,
                         uint64_t count, uint32_t flags) {
  while (count > 0) {
    uint64_t n = std::min(count, format::kMaxExtentBlocks);
    RETURN_IF_ERROR(Map(op, ino, file_block, {device_block, static_cast<uint32_t>(n), flags}));
    file_block += n;
    device_block += n;
    count -= n;
  }
  return Status::Ok();
}

Status ExtentMap::MapPieces(WriteOp& op, Ino ino, const std::vector<PlacedExtent>& pieces) {
  // Merge in memory what MapExtent would merge; then no middle piece can merge with anything
  // already stored (its left neighbour is the previous piece, its right one not mapped yet).
  std::vector<PlacedExtent> merged;
  merged.reserve(pieces.size());
  for (const auto& [file_block, x] : pieces) {
    if (!merged.empty()) {
      auto& [last_block, last] = merged.back();
      if (last_block + last.blocks == file_block && Mergeable(last, x)) {
        last.blocks += x.blocks;
        continue;
      }
    }
    merged.emplace_back(file_block, x);
  }
  for (size_t i = 0; i < merged.size(); ++i) {
    const auto& [file_block, x] = merged[i];
    if (i == 0 || i + 1 == merged.size()) {
      RETURN_IF_ERROR(Map(op, ino, file_block, x));  // may merge with a neighbour outside
    } else {
      RETURN_IF_ERROR(InsertRecord(op, ino, file_block, x));
    }
  }
  return Status::Ok();
}

Result<uint64_t> ExtentMap::Unmap(WriteOp& op, Ino ino, uint64_t first_block, uint64_t count) {
  uint64_t end = SaturatingEnd(first_block, count);
  std::vector<PlacedExtent> found;
  RETURN_IF_ERROR(ForEach(op, ino, first_block, count, [&](uint64_t fb, const ExtentRecord& x) {
    found.emplace_back(fb, x);
    return true;
  }));
  if (poison_->Active(op)) RETURN_IF_ERROR(poison_->ForgetLosses(op, ino, first_block, count));
  uint64_t unmapped = 0;
  for (auto& [start, x] : found) {
    uint64_t x_end = start + x.blocks;
    uint64_t from = std::max(start, first_block), to = std::min(x_end, end);
    if (start < first_block) {
      ExtentRecord head{x.device_block, static_cast<uint32_t>(first_block - start), x.flags};
      RETURN_IF_ERROR(UpdateRecord(op, ino, start, x, head));
    } else {
      RETURN_IF_ERROR(DeleteRecord(op, ino, start, x));
    }
    if (x_end > end) {
      ExtentRecord tail{x.device_block + (end - start), static_cast<uint32_t>(x_end - end),
                        x.flags};
      RETURN_IF_ERROR(InsertRecord(op, ino, end, tail));
    }
    RETURN_IF_ERROR(DropBlocks(op, x.device_block + (from - start), to - from));
    unmapped += to - from;
  }
  return unmapped;
}

Status ExtentMap::ConvertUnwritten(WriteOp& op, Ino ino, uint64_t file_block, uint64_t count) {
  uint64_t end = SaturatingEnd(file_block, count);
  std::vector<PlacedExtent> found;
  RETURN_IF_ERROR(ForEach(op, ino, file_block, count, [&](uint64_t fb, const ExtentRecord& x) {
    if (x.flags & format::kExtentUnwritten) found.emplace_back(fb, x);
    return true;
  }));
  for (auto& [start, x] : found) {
    uint64_t x_end = start + x.blocks;
    uint64_t from = std::max(start, file_block), to = std::min(x_end, end);
    if (start < from) {
      ExtentRecord head{x.device_block, static_cast<uint32_t>(from - start), x.flags};
      RETURN_IF_ERROR(UpdateRecord(op, ino, start, x, head));
    } else {
      RETURN_IF_ERROR(DeleteRecord(op, ino, start, x));
    }
    if (to < x_end) {
      ExtentRecord tail{x.device_block + (to - start), static_cast<uint32_t>(x_end - to), x.flags};
      RETURN_IF_ERROR(InsertRecord(op, ino, to, tail));
    }
    uint32_t written = x.flags & ~format::kExtentUnwritten;
    RETURN_IF_ERROR(
        Map(op, ino, from,
            {x.device_block + (from - start), static_cast<uint32_t>(to - from), written}));
  }
  return Status::Ok();
}

Status ExtentMap::InsertRecord(WriteOp& op, Ino ino, uint64_t file_block, const ExtentRecord& x) {
  op.NoteLayoutChange(ino, file_block, x.blocks);
  RETURN_IF_ERROR(
      op.writer(FsTree::kExtents).Insert(ExtentKey(ino, file_block), ExtentValue(x).bytes));
  if (op.rmap() == nullptr) return Status::Ok();
  return Rmap::AddExtent(op, ino, file_block, x);
}

Status ExtentMap::DeleteRecord(WriteOp& op, Ino ino, uint64_t file_block, const ExtentRecord& x) {
  op.NoteLayoutChange(ino, file_block, x.blocks);
  RETURN_IF_ERROR(op.writer(FsTree::kExtents).Delete(ExtentKey(ino, file_block)));
  if (op.rmap() == nullptr) return Status::Ok();
  return Rmap::RemoveExtent(op, ino, file_block, x);
}

Status ExtentMap::UpdateRecord(WriteOp& op, Ino ino, uint64_t file_block, const ExtentRecord& old,
                               const ExtentRecord& x) {
  op.NoteLayoutChange(ino, file_block, std::max(old.blocks, x.blocks));
  RETURN_IF_ERROR(
      op.writer(FsTree::kExtents).Update(ExtentKey(ino, file_block), ExtentValue(x).bytes));
  if (op.rmap() == nullptr) return Status::Ok();
  return Rmap::ChangeExtent(op, ino, file_block, old, x);
}

Status ExtentMap::DropBlocks(WriteOp& op, uint64_t device_block, uint64_t count) {
  if (count == 0) return Status::Ok();
  if (op.refcount() == nullptr) {
    if (poison_->Active(op))
      return poison_->ReleaseOrRetire(op, device_block, count);  // docs/media.md
    data_->Release(op, device_block, count);
    return Status::Ok();
  }
  std::vector<space::Run> freed;
  RETURN_IF_ERROR(Refcount::Lower(op, device_block, count, &freed));
  for (const space::Run& r : freed) {
    if (poison_->Active(op)) {
      RETURN_IF_ERROR(poison_->ReleaseOrRetire(op, r.start, r.count));  // bad blocks are retired
    } else {
      data_->Release(op, r.start, r.count);
    }
  }
  return Status::Ok();
}

}  // namespace daxfs::fs
