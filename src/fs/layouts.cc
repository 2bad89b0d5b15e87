// File layouts for the DAX layer (layouts.h): computing them, publishing noted changes, and
// preparing a range for a direct mapping.
#include "fs/layouts.h"

#include <fmt/core.h>

#include <algorithm>
#include <cstring>

#include "base/log.h"
#include "device/device.h"
#include "fs/blocks.h"
#include "fs/extent_map.h"
#include "fs/file_data.h"
#include "fs/inodes.h"
#include "fs/node_budget.h"
#include "fs/op_runner.h"
#include "fs/poison.h"
#include "fs/refcount.h"

namespace daxfs::fs {

using format::ExtentRecord;
using format::Inode;

namespace {

// A writable preparation that keeps being undone by other operations between its write and its
// install (clones racing the map) gives up after this many rounds.
constexpr int kPrepareAttempts = 8;

Status CheckMappable(const Inode& n, uint64_t offset, uint64_t length) {
  if (n.type == format::FileType::kDirectory) {
    return Status::Error(EISDIR, fmt::format("map: inode {} is a directory", n.ino));
  }
  if (n.type != format::FileType::kRegular) {
    return Status::Invalid(fmt::format("map: inode {} is not a regular file", n.ino));
  }
  if (offset % kBlock != 0) {
    return Status::Invalid(
        fmt::format("map: offset {} is not a multiple of the block size ({})", offset, kBlock));
  }
  if (length == 0) return Status::Invalid("map: length 0");
  uint64_t limit = BlocksCovering(n.size) * kBlock;
  if (offset > limit || length > limit - offset) {
    return Status::Invalid(fmt::format(
        "map: inode {}: [{}, +{}) reaches past the end of the file (size {}, mappable up to {})",
        n.ino, offset, length, n.size, limit));
  }
  return Status::Ok();
}

// Appends [file_offset, +length) of `kind` to `layout`, merging with the last segment when it
// is of the same kind and (for device-backed kinds) the device ranges are contiguous.
void Append(MapLayout* layout, uint64_t file_offset, uint64_t length, SegmentKind kind,
            uint64_t device_offset) {
  if (length == 0) return;
  if (!layout->empty()) {
    MapSegment& last = layout->back();
    bool device_fits = last.device_offset == kNoDevice
                           ? device_offset == kNoDevice
                           : device_offset == last.device_offset + last.length;
    if (last.kind == kind && last.file_offset + last.length == file_offset &&
        (kind == SegmentKind::kZero || kind == SegmentKind::kBeyondEof || device_fits)) {
      last.length += length;
      return;
    }
  }
  layout->push_back({file_offset, length, kind, device_offset});
}

// `layout` with [from, to) (bytes) recorded lost: device bytes at `device_offset` for `from`
// (kNoDevice when the file no longer maps them).
MapLayout OverlayLoss(const MapLayout& layout, uint64_t from, uint64_t to, uint64_t device_offset) {
  MapLayout out;
  for (const MapSegment& s : layout) {
    uint64_t s_end = s.file_offset + s.length;
    uint64_t a = std::clamp(from, s.file_offset, s_end), b = std::clamp(to, a, s_end);
    if (a == b || s.kind == SegmentKind::kBeyondEof) {
      Append(&out, s.file_offset, s.length, s.kind, s.device_offset);
      continue;
    }
    auto part = [&](uint64_t x) {
      return s.device_offset == kNoDevice ? kNoDevice : s.device_offset + (x - s.file_offset);
    };
    Append(&out, s.file_offset, a - s.file_offset, s.kind, part(s.file_offset));
    Append(&out, a, b - a, SegmentKind::kLost,
           device_offset == kNoDevice ? kNoDevice : device_offset + (a - from));
    Append(&out, b, s_end - b, s.kind, part(b));
  }
  return out;
}

}  // namespace

// ---- Layouts.

Result<MapLayout> Layouts::Compute(const ReadOp& op, Ino ino, uint64_t first_block,
                                   uint64_t count) const {
  uint64_t end = std::min(kMaxFileBlocks, first_block + std::min(count, kMaxFileBlocks));
  MapLayout layout;
  if (first_block >= end) return layout;
  Result<Inode> inode = Inodes::Get(op, ino);
  if (!inode.ok()) {
    if (!inode.status().IsNotFound()) return inode.status();
    Append(&layout, first_block * kBlock, (end - first_block) * kBlock, SegmentKind::kBeyondEof,
           kNoDevice);
    return layout;
  }
  uint64_t data_end = std::clamp(BlocksCovering(inode->size), first_block, end);
  uint64_t pos = first_block;
  if (data_end > first_block) {
    RETURN_IF_ERROR(extents_->ForEach(
        op, ino, first_block, data_end - first_block, [&](uint64_t start, const ExtentRecord& x) {
          if (start > pos)
            Append(&layout, pos * kBlock, (start - pos) * kBlock, SegmentKind::kZero, kNoDevice);
          uint64_t from = std::max(start, pos), to = std::min<uint64_t>(start + x.blocks, data_end);
          if (x.flags & format::kExtentUnwritten) {
            Append(&layout, from * kBlock, (to - from) * kBlock, SegmentKind::kZero, kNoDevice);
          } else {
            Append(&layout, from * kBlock, (to - from) * kBlock, SegmentKind::kData,
                   (x.device_block + (from - start)) * kBlock);
          }
          pos = to;
          return true;
        }));
  }
  Append(&layout, pos * kBlock, (data_end - pos) * kBlock, SegmentKind::kZero, kNoDevice);
  Append(&layout, data_end * kBlock, (end - data_end) * kBlock, SegmentKind::kBeyondEof, kNoDevice);
  if (data_end > first_block) {
    std::vector<MapSegment> losses;
    RETURN_IF_ERROR(poison_->ForEachLostRange(
        op, ino, first_block, data_end - first_block,
        [&](uint64_t file_block, uint64_t blocks, uint64_t device_block) {
          losses.push_back({file_block * kBlock, blocks * kBlock, SegmentKind::kLost,
                            device_block == kNoDevice ? kNoDevice : device_block * kBlock});
        }));
    for (const MapSegment& l : losses) {
      layout = OverlayLoss(layout, l.file_offset, l.file_offset + l.length, l.device_offset);
    }
  }
  return layout;
}

// ---- Observing changes.

void Layouts::Publish(const ReadOp& op, LayoutNotes& notes) const {
  if (notes.empty()) return;
  std::vector<NotedChange> changes = notes.Take();
  MappingObserver* observer = notes.observer();
  for (NotedChange& c : changes) {  // clip to the largest file
    uint64_t end = std::min(kMaxFileBlocks, c.first_block + std::min(c.count, kMaxFileBlocks));
    c.first_block = std::min(c.first_block, end);
    c.count = end - c.first_block;
  }
  std::sort(changes.begin(), changes.end(), [](const NotedChange& a, const NotedChange& b) {
    return a.ino != b.ino ? a.ino < b.ino : a.first_block < b.first_block;
  });
  std::vector<NotedChange> merged;
  for (const NotedChange& c : changes) {
    if (c.count == 0) continue;
    if (!merged.empty() && merged.back().ino == c.ino &&
        c.first_block <= merged.back().first_block + merged.back().count) {
      NotedChange& m = merged.back();
      m.count = std::max(m.first_block + m.count, c.first_block + c.count) - m.first_block;
      continue;
    }
    merged.push_back(c);
  }
  for (const NotedChange& m : merged) {
    Result<MapLayout> layout = Compute(op, m.ino, m.first_block, m.count);
    if (!layout.ok()) {
      // Never leave a mapping on blocks it may no longer own: make the range inaccessible.
      base::Log(base::LogLevel::kError,
                "layout of inode {} blocks {}..{} for its mappings: {} (made inaccessible)", m.ino,
                m.first_block, m.first_block + m.count - 1, layout.status().ToString());
      layout =
          MapLayout{{m.first_block * kBlock, m.count * kBlock, SegmentKind::kBeyondEof, kNoDevice}};
    }
    observer->LayoutChanged(m.ino, m.first_block * kBlock, m.count * kBlock, *layout);
  }
  observer->LayoutChangesDone();
}

// ---- Preparing a mapping.

Status Layouts::MakeWritable(WriteOp& op, Inode* inode, uint64_t first_block, uint64_t count) {
  // Each step reserves before it applies and changes no byte a reader sees, so an ENOSPC in a
  // later step leaves the earlier ones done but the file's contents as they were.
  RETURN_IF_ERROR(files_->UnshareData(op, inode, first_block, count));
  bool holes = false;
  uint64_t pos = first_block;
  RETURN_IF_ERROR(extents_->ForEach(op, inode->ino, first_block, count,
                                    [&](uint64_t start, const ExtentRecord& x) {
                                      holes = holes || start > pos;
                                      pos = start + x.blocks;
                                      return !holes;
                                    }));
  if (holes || pos < first_block + count) {
    // Holes become unwritten blocks (the size stays), zeroed and converted below.
    RETURN_IF_ERROR(
        files_->AllocateRange(op, inode, first_block * kBlock, count * kBlock, /*keep_size=*/true));
  }
  std::vector<std::pair<uint64_t, uint64_t>> unwritten;  // device block, blocks
  uint64_t records = 0;
  RETURN_IF_ERROR(extents_->ForEach(
      op, inode->ino, first_block, count, [&](uint64_t start, const ExtentRecord& x) {
        ++records;
        if (!(x.flags & format::kExtentUnwritten)) return true;
        uint64_t from = std::max(start, first_block);
        uint64_t to = std::min(start + x.blocks, first_block + count);
        unwritten.emplace_back(x.device_block + (from - start), to - from);
        return true;
      }));
  if (unwritten.empty()) return Status::Ok();
  RETURN_IF_ERROR(budget_->ReserveExtentUpdates(op, records, 4 * unwritten.size() + 4));
  for (auto [device_block, blocks] : unwritten) {
    std::memset(device_->At(device_block * kBlock), 0, blocks * kBlock);
    op.NoteDirty(device_block * kBlock, blocks * kBlock);
  }
  return extents_->ConvertUnwritten(op, inode->ino, first_block, count);
}

Status Layouts::PrepareMapping(Ino ino, uint64_t offset, uint64_t length, bool writable,
                               const std::function<Status(const MapLayout&)>& install) {
  for (int attempt = 0; attempt < kPrepareAttempts; ++attempt) {
    // Install if the range is ready as it is: always for a read-only mapping; for a writable one
    // when every block is written, private and committed (no transaction open).
    bool installed = false;
    // Exclusive: the install adds to the mapping table, which write operations consult.
    Status read = runner_->ReadForUpdate([&](const ReadOp& op) -> Status {
      ASSIGN_OR_RETURN(Inode inode, Inodes::Get(op, ino));
      RETURN_IF_ERROR(CheckMappable(inode, offset, length));
      if (writable && runner_->read_only()) {
        if (!runner_->shutdown_reason().ok()) {
          return Status::ReadOnly("map: the filesystem was shut down: " +
                                  runner_->shutdown_reason().message());
        }
        return Status::ReadOnly("map: a writable mapping on a filesystem mounted read-only");
      }
      ASSIGN_OR_RETURN(MapLayout layout, Compute(op, ino, offset / kBlock, BlocksCovering(length)));
      if (writable) {
        if (runner_->txn_open()) return Status::Ok();  // blocks of it may not be durable yet
        for (const MapSegment& s : layout) {
          if (s.kind == SegmentKind::kLost) continue;
          if (s.kind != SegmentKind::kData) return Status::Ok();
          ASSIGN_OR_RETURN(std::vector<space::Run> shared,
                           Refcount::SharedRuns(op, s.device_offset / kBlock, s.length / kBlock));
          if (!shared.empty()) return Status::Ok();
        }
      }
      installed = true;
      return install(layout);
    });
    if (!read.ok() || installed) return read;
    RETURN_IF_ERROR(runner_->Write([&](WriteOp& op) -> Status {
      ASSIGN_OR_RETURN(Inode inode, Inodes::Get(op, ino));
      RETURN_IF_ERROR(CheckMappable(inode, offset, length));
      return MakeWritable(op, &inode, offset / kBlock, BlocksCovering(length));
    }));
    // Stores through the mapping go straight to these blocks: their extents must be durable
    // whatever the durability mode.
    RETURN_IF_ERROR(runner_->Sync());
  }
  return Status::Busy(fmt::format(
      "map: inode {} kept changing while its range was prepared for a writable mapping", ino));
}

}  // namespace daxfs::fs
