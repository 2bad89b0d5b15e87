// File data (file_data.h). Every mutating operation follows docs/fs.md: it plans from the
// current map (validate), then allocates all its new blocks and reserves metadata nodes
// (reserve: ENOSPC changes nothing), then copies bytes and changes the map (apply). Invariant
// kept by every write path: bytes of a file's last block past its size read as zeros, so growing
// a file never exposes old bytes. A block is written in place only when it is not shared
// (docs/reflink.md) and either fresh or unwritten; shared blocks are copied, so a write never
// shows through another owner. Reads change nothing, not even atime (daxfs does not keep access
// times up to date).
#include "fs/file_data.h"

#include <fmt/core.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "device/device.h"
#include "fs/blocks.h"
#include "fs/data_space.h"
#include "fs/extent_map.h"
#include "fs/inodes.h"
#include "fs/poison.h"
#include "fs/refcount.h"
#include "fs/remap.h"

namespace daxfs::fs {

using format::ExtentRecord;
using format::Inode;

namespace {

Status CheckRegular(const Inode& n) {
  if (n.type == format::FileType::kDirectory) {
    return Status::Error(EISDIR, fmt::format("inode {} is a directory", n.ino));
  }
  if (n.type != format::FileType::kRegular) {
    return Status::Invalid(fmt::format("inode {} is a {}, not a regular file", n.ino,
                                       format::FileTypeName(n.type)));
  }
  return Status::Ok();
}

// EFBIG unless [offset, offset + length) fits in the largest file.
Status CheckFileRange(uint64_t offset, uint64_t length) {
  if (offset > kMaxFileSize || length > kMaxFileSize - offset) {
    return Status::TooBig(fmt::format(
        "offset {} + length {} is beyond the largest file size (2^63 - 1)", offset, length));
  }
  return Status::Ok();
}

}  // namespace

// ---- Plans: how each block of a byte range will be written.

struct FileData::WritePlan {
  enum class Kind {
    kHole,       // unmapped: a new block, the rest of a partial block zeroed
    kInPlace,    // written and fresh: overwrite where it is
    kUnwritten,  // allocated, reads as zeros: write in place, zero the rest, mark written
    kCopy,       // written and committed: a new block, the rest copied from the old one
  };
  struct Piece {
    Kind kind;
    uint64_t file_block;
    uint64_t blocks;
    uint64_t device_block;  // current mapping of file_block (not for kHole)
    uint64_t byte_begin;    // the file bytes this piece writes, inside its blocks
    uint64_t byte_end;
    const uint8_t* src;  // the bytes for byte_begin.., or null for zeros
  };
  std::vector<Piece> pieces;
  uint64_t new_blocks = 0;                  // kHole + kCopy
  uint64_t hole_blocks = 0;                 // blocks the file gains
  uint64_t extents = 0;                     // existing extents the plan touches
  std::optional<uint64_t> first_new_block;  // file block of the first kHole/kCopy piece

  // Tree updates the plan may make, before counting the runs its new blocks come in.
  uint64_t Updates() const { return 6 * pieces.size() + 2; }
};

// New blocks of one operation, handed out in file order.
struct FileData::BlockSource {
  std::vector<space::Run> runs;
  size_t next = 0;
  uint64_t used_in_next = 0;

  space::Run Take(uint64_t max) {
    const space::Run& r = runs[next];
    space::Run out{r.start + used_in_next, std::min(max, r.count - used_in_next)};
    used_in_next += out.count;
    if (used_in_next == r.count) {
      ++next;
      used_in_next = 0;
    }
    return out;
  }
};

Status FileData::PlanWrite(const ReadOp& op, Ino ino, uint64_t offset, uint64_t length,
                           const uint8_t* src, bool zeroing, WritePlan* plan) const {
  if (length == 0) return Status::Ok();
  uint64_t first = offset / kBlock;
  uint64_t end = BlocksCovering(offset + length);
  // Lost blocks (docs/media.md): a write must cover them whole, and then always gets new blocks.
  std::vector<space::Run> lost;
  if (poison_->Active(op)) {
    ASSIGN_OR_RETURN(lost, poison_->LostRuns(op, ino, first, end - first));
    bool partial_head = offset % kBlock != 0, partial_tail = (offset + length) % kBlock != 0;
    for (const space::Run& r : lost) {
      if ((partial_head && r.start == first) || (partial_tail && r.start + r.count == end)) {
        uint64_t b = partial_head && r.start == first ? first : end - 1;
        return Status::IoError(fmt::format(
            "media error: inode {} file offset {} is lost (bad media); only a write of the whole "
            "block replaces it",
            ino, b * kBlock));
      }
    }
  }
  Status edge;  // a partial block to copy that sits on bad media not recorded yet
  auto add_piece = [&](WritePlan::Kind kind, uint64_t fb, uint64_t n, uint64_t device_block) {
    bool reads_zero = kind == WritePlan::Kind::kHole || kind == WritePlan::Kind::kUnwritten;
    if (zeroing && reads_zero) return;  // already reads as zeros
    uint64_t begin = std::max(offset, fb * kBlock);
    uint64_t finish = std::min(offset + length, (fb + n) * kBlock);
    plan->pieces.push_back(
        {kind, fb, n, device_block, begin, finish, src ? src + (begin - offset) : nullptr});
    if (kind == WritePlan::Kind::kHole || kind == WritePlan::Kind::kCopy) {
      plan->new_blocks += n;
      if (!plan->first_new_block) plan->first_new_block = fb;
    }
    if (kind == WritePlan::Kind::kHole) plan->hole_blocks += n;
    if (kind == WritePlan::Kind::kCopy && edge.ok()) {
      if (begin % kBlock != 0) edge = poison_->CheckDeviceGood(ino, fb, device_block, 1, "write");
      if (edge.ok() && finish % kBlock != 0) {
        edge = poison_->CheckDeviceGood(ino, fb + n - 1, device_block + n - 1, 1, "write");
      }
    }
  };
  // Lost blocks are never written in place: they become copy pieces (covering them whole, so
  // nothing is read from them), and the copy path unmaps them, which forgets the loss.
  auto add = [&](WritePlan::Kind kind, uint64_t fb, uint64_t n, uint64_t device_block) {
    bool in_place = kind == WritePlan::Kind::kInPlace || kind == WritePlan::Kind::kUnwritten;
    if (lost.empty() || !in_place) return add_piece(kind, fb, n, device_block);
    uint64_t at = fb, piece_end = fb + n;
    for (const space::Run& r : lost) {
      uint64_t s = std::max(r.start, at), e = std::min(r.start + r.count, piece_end);
      if (s >= e) continue;
      if (s > at) add_piece(kind, at, s - at, device_block + (at - fb));
      add_piece(WritePlan::Kind::kCopy, s, e - s, device_block + (s - fb));
      at = e;
    }
    if (at < piece_end) add_piece(kind, at, piece_end - at, device_block + (at - fb));
  };
  // Written blocks [b, e) (device `device` at file block `from`) that no other owner shares:
  // in place where fresh, copied where committed.
  auto unshared = [&](uint64_t from, uint64_t device, uint64_t b, uint64_t e) {
    if (b == e) return;
    if (data_->blocks().AllFresh(device + (b - from), e - b)) {
      add(WritePlan::Kind::kInPlace, b, e - b, device + (b - from));
      return;
    }
    // Mixed (a new block merged onto a committed extent): split by freshness, block by block.
    while (b < e) {
      bool fresh = data_->blocks().IsFresh(device + (b - from));
      uint64_t run_end = b + 1;
      while (run_end < e && data_->blocks().IsFresh(device + (run_end - from)) == fresh) ++run_end;
      add(fresh ? WritePlan::Kind::kInPlace : WritePlan::Kind::kCopy, b, run_end - b,
          device + (b - from));
      b = run_end;
    }
  };
  uint64_t pos = first;
  Status inner;  // an error met inside the walk
  RETURN_IF_ERROR(
      extents_->ForEach(op, ino, first, end - first, [&](uint64_t start, const ExtentRecord& x) {
        if (start > pos) add(WritePlan::Kind::kHole, pos, start - pos, 0);
        uint64_t from = std::max(start, pos), to = std::min(start + x.blocks, end);
        uint64_t device = x.device_block + (from - start);
        ++plan->extents;
        pos = to;
        if (x.flags & format::kExtentUnwritten) {  // never shared
          add(WritePlan::Kind::kUnwritten, from, to - from, device);
          return true;
        }
        Result<std::vector<space::Run>> shared = Refcount::SharedRuns(op, device, to - from);
        if (!shared.ok()) {
          inner = shared.status();
          return false;
        }
        uint64_t b = from;
        for (const space::Run& r : *shared) {
          uint64_t shared_from = from + (r.start - device);
          unshared(from, device, b, shared_from);
          add(WritePlan::Kind::kCopy, shared_from, r.count, r.start);
          b = shared_from + r.count;
        }
        unshared(from, device, b, to);
        return true;
      }));
  RETURN_IF_ERROR(inner);
  if (pos < end) add(WritePlan::Kind::kHole, pos, end - pos, 0);
  return edge;
}

namespace {

// The file bytes [byte_begin, byte_end) of a piece and their source (null: zeros).
struct Bytes {
  uint64_t byte_begin, byte_end;
  const uint8_t* src;
};

// Fills `dst`, the device copy of file blocks [file_block, +blocks): the bytes of `p` that fall
// in those blocks, and the rest of the blocks from `old` (same layout) or zeros. `old == dst`
// leaves the rest as it is.
void FillBlocks(uint8_t* dst, const uint8_t* old, uint64_t file_block, uint64_t blocks,
                const Bytes& p) {
  uint64_t span_begin = file_block * kBlock, span_end = (file_block + blocks) * kBlock;
  uint64_t begin = std::clamp(p.byte_begin, span_begin, span_end);
  uint64_t end = std::clamp(p.byte_end, begin, span_end);
  auto rest = [&](uint64_t from, uint64_t to) {
    if (from == to || old == dst) return;
    if (old) {
      std::memcpy(dst + (from - span_begin), old + (from - span_begin), to - from);
    } else {
      std::memset(dst + (from - span_begin), 0, to - from);
    }
  };
  rest(span_begin, begin);
  if (p.src) {
    std::memcpy(dst + (begin - span_begin), p.src + (begin - p.byte_begin), end - begin);
  } else {
    std::memset(dst + (begin - span_begin), 0, end - begin);
  }
  rest(end, span_end);
}

}  // namespace

Status FileData::ApplyPlan(WriteOp& op, Ino ino, const WritePlan& plan, BlockSource* blocks) {
  using Kind = WritePlan::Kind;
  for (const WritePlan::Piece& p : plan.pieces) {
    uint8_t* current = device_->At(p.device_block * kBlock);
    Bytes bytes{p.byte_begin, p.byte_end, p.src};
    switch (p.kind) {
      case Kind::kInPlace: {
        uint64_t skip = p.byte_begin - p.file_block * kBlock;
        FillBlocks(current, current, p.file_block, p.blocks, bytes);
        op.NoteDirty(p.device_block * kBlock + skip, p.byte_end - p.byte_begin);
        break;
      }
      case Kind::kUnwritten:
        FillBlocks(current, nullptr, p.file_block, p.blocks, bytes);
        op.NoteDirty(p.device_block * kBlock, p.blocks * kBlock);
        RETURN_IF_ERROR(extents_->ConvertUnwritten(op, ino, p.file_block, p.blocks));
        break;
      case Kind::kHole:
      case Kind::kCopy:
        for (uint64_t done = 0; done < p.blocks;) {
          space::Run run = blocks->Take(p.blocks - done);
          uint64_t fb = p.file_block + done;
          const uint8_t* old = p.kind == Kind::kCopy ? current + done * kBlock : nullptr;
          FillBlocks(device_->At(run.start * kBlock), old, fb, run.count, bytes);
          op.NoteDirty(run.start * kBlock, run.count * kBlock);
          if (p.kind == Kind::kCopy)
            RETURN_IF_ERROR(extents_->Unmap(op, ino, fb, run.count).status());
          RETURN_IF_ERROR(extents_->MapRun(op, ino, fb, run.start, run.count, 0));
          done += run.count;
        }
        break;
    }
  }
  return Status::Ok();
}

// Allocates `new_blocks` (goal: a device block) and reserves nodes for `updates` extent-tree
// updates among `records` existing records. On ENOSPC nothing is left allocated.
Result<FileData::BlockSource> FileData::ReserveForOp(WriteOp& op, uint64_t new_blocks,
                                                     uint64_t goal, uint64_t records,
                                                     uint64_t updates) {
  return ReserveForWork(
      op, new_blocks, goal,
      {.local_records = records, .local_updates = updates, .refcount_calls = updates});
}

// The same for any tree work (reflink operations add remaps to their byte writes).
Result<FileData::BlockSource> FileData::ReserveForWork(WriteOp& op, uint64_t new_blocks,
                                                       uint64_t goal, TreeWork work) {
  BlockSource source;
  if (new_blocks > 0) {
    ASSIGN_OR_RETURN(source.runs, data_->Allocate(op, new_blocks, goal));
  }
  // Each run boundary may split a piece into one more extent to map.
  work.local_updates += 4 * source.runs.size();
  work.refcount_calls += 4 * source.runs.size();
  Status reserved = budget_->Reserve(op, work);
  if (!reserved.ok()) {
    for (const space::Run& r : source.runs) data_->Release(op, r.start, r.count);
    data_->ForgetChunksOfFailingOp(op);
    return reserved;
  }
  return source;
}

// ---- Reading.

template <typename Sink>
Result<size_t> FileData::WalkData(const ReadOp& op, const Inode& inode, uint64_t offset,
                                  uint64_t length, Sink&& sink) const {
  if (offset >= inode.size || length == 0) return size_t{0};
  uint64_t n = std::min<uint64_t>(length, inode.size - offset);
  uint64_t end = offset + n;
  uint64_t first = offset / kBlock;
  if (poison_->Active(op)) {
    RETURN_IF_ERROR(
        poison_->CheckNotLost(op, inode.ino, first, BlocksCovering(end) - first, "read"));
  }
  uint64_t pos = offset;  // bytes before it are handed to the sink
  auto zero_to = [&](uint64_t to) {
    if (to > pos) sink(nullptr, to - pos);
    pos = std::max(pos, to);
  };
  Status bad;  // bytes on bad media that no failure recorded yet (the engine never loads them)
  RETURN_IF_ERROR(extents_->ForEach(
      op, inode.ino, first, BlocksCovering(end) - first,
      [&](uint64_t start, const ExtentRecord& x) {
        uint64_t x_begin = start * kBlock, x_end = std::min(end, (start + x.blocks) * kBlock);
        zero_to(std::min(x_begin, end));
        if (x.flags & format::kExtentUnwritten) {
          zero_to(x_end);
        } else if (x_end > pos) {
          if (device_->IsBad(x.device_block * kBlock + (pos - x_begin), x_end - pos)) {
            uint64_t fb = pos / kBlock;
            bad = poison_->CheckDeviceGood(inode.ino, fb, x.device_block + (fb - start),
                                           BlocksCovering(x_end) - fb, "read");
            return false;
          }
          sink(device_->At(x.device_block * kBlock + (pos - x_begin)), x_end - pos);
          pos = x_end;
        }
        return true;
      }));
  RETURN_IF_ERROR(bad);
  zero_to(end);
  return static_cast<size_t>(n);
}

Result<size_t> FileData::ReadData(const ReadOp& op, const Inode& inode, uint64_t offset,
                                  std::span<uint8_t> out) const {
  uint8_t* to = out.data();
  return WalkData(op, inode, offset, out.size(), [&](const uint8_t* src, uint64_t length) {
    if (src) {
      std::memcpy(to, src, length);
    } else {
      std::memset(to, 0, length);
    }
    to += length;
  });
}

Result<size_t> FileData::Read(const ReadOp& op, Ino ino, uint64_t offset,
                              std::span<uint8_t> out) const {
  ASSIGN_OR_RETURN(Inode inode, Inodes::Get(op, ino));
  RETURN_IF_ERROR(CheckRegular(inode));
  return ReadData(op, inode, offset, out);
}

namespace {
// What holes read as in ReadPieces: pieces of this, each at most its size.
alignas(4096) const uint8_t kZeros[128 << 10] = {};
}  // namespace

Result<size_t> FileData::ReadPieces(const ReadOp& op, Ino ino, uint64_t offset, uint64_t length,
                                    std::vector<iovec>* pieces) const {
  if (length > Filesystem::kMaxReadPieces) {
    return Status::Invalid(fmt::format("read of {} bytes without a copy: at most {} at a time",
                                       length, Filesystem::kMaxReadPieces));
  }
  ASSIGN_OR_RETURN(Inode inode, Inodes::Get(op, ino));
  RETURN_IF_ERROR(CheckRegular(inode));
  return WalkData(op, inode, offset, length, [&](const uint8_t* src, uint64_t n) {
    if (src) {
      if (!pieces->empty() && static_cast<const uint8_t*>(pieces->back().iov_base) +
                                      pieces->back().iov_len == src) {
        pieces->back().iov_len += n;  // extents that follow each other on the device
      } else {
        pieces->push_back({const_cast<uint8_t*>(src), n});
      }
      return;
    }
    for (uint64_t done = 0; done < n;) {
      uint64_t k = std::min<uint64_t>(n - done, sizeof(kZeros));
      pieces->push_back({const_cast<uint8_t*>(kZeros), k});
      done += k;
    }
  });
}

// ---- Writing.

// Writes `data` at `offset` and updates size, blocks, mtime and ctime in `*inode`, and stores
// the inode. Allocates and reserves before it changes anything (ENOSPC: nothing changed) -- but
// a caller that changed the trees before calling it must have reserved for its own updates.
Status FileData::WriteData(WriteOp& op, Inode* inode, uint64_t offset,
                           std::span<const uint8_t> data) {
  if (data.empty()) return Status::Ok();
  RETURN_IF_ERROR(CheckFileRange(offset, data.size()));
  WritePlan plan;
  RETURN_IF_ERROR(PlanWrite(op, inode->ino, offset, data.size(), data.data(), false, &plan));
  uint64_t goal = 0;
  if (plan.first_new_block) {
    ASSIGN_OR_RETURN(goal, extents_->Goal(op, inode->ino, *plan.first_new_block));
  }
  ASSIGN_OR_RETURN(BlockSource blocks,
                   ReserveForOp(op, plan.new_blocks, goal, plan.extents, plan.Updates()));
  RETURN_IF_ERROR(ApplyPlan(op, inode->ino, plan, &blocks));
  inode->size = std::max<uint64_t>(inode->size, offset + data.size());
  inode->blocks += plan.hole_blocks;
  inode->mtime_ns = inode->ctime_ns = NowNs();
  return Inodes::Put(op, *inode);
}

Status FileData::CheckWritable(const ReadOp& op, Ino ino) {
  ASSIGN_OR_RETURN(Inode inode, Inodes::Get(op, ino));
  return CheckRegular(inode);
}

Status FileData::Write(WriteOp& op, Ino ino, uint64_t offset, std::span<const uint8_t> data) {
  ASSIGN_OR_RETURN(Inode inode, Inodes::Get(op, ino));
  RETURN_IF_ERROR(CheckRegular(inode));
  return WriteData(op, &inode, offset, data);
}

// ---- Truncate.

// Adds to `plan` the zeroing of the partial blocks at the edges of [offset, end) (the whole
// blocks between are the caller's): the bytes of those blocks inside the range and before the
// file's size (bytes past the size already read as zeros).
Status FileData::PlanEdgeZeroing(const ReadOp& op, const Inode& inode, uint64_t offset,
                                 uint64_t end, WritePlan* plan) const {
  uint64_t head_end = std::min(end, BlocksCovering(offset) * kBlock);
  uint64_t tail_begin = std::max(head_end, end / kBlock * kBlock);
  auto zero = [&](uint64_t from, uint64_t to) {
    to = std::min(to, inode.size);
    return from < to ? PlanWrite(op, inode.ino, from, to - from, nullptr, true, plan)
                     : Status::Ok();
  };
  if (offset % kBlock != 0) RETURN_IF_ERROR(zero(offset, head_end));
  if (end % kBlock != 0) RETURN_IF_ERROR(zero(tail_begin, end));
  return Status::Ok();
}

Status FileData::TruncateData(WriteOp& op, Inode* inode, uint64_t size) {
  if (size < inode->size) {
    uint64_t keep = BlocksCovering(size);
    WritePlan plan;
    RETURN_IF_ERROR(PlanEdgeZeroing(op, *inode, size, keep * kBlock, &plan));
    ASSIGN_OR_RETURN(uint64_t records,
                     extents_->Count(op, inode->ino, keep, kMaxFileBlocks - keep));
    ASSIGN_OR_RETURN(
        BlockSource blocks,
        ReserveForOp(op, plan.new_blocks, 0, records + plan.extents, plan.Updates() + records + 2));
    RETURN_IF_ERROR(ApplyPlan(op, inode->ino, plan, &blocks));
    ASSIGN_OR_RETURN(uint64_t unmapped,
                     extents_->Unmap(op, inode->ino, keep, kMaxFileBlocks - keep));
    inode->blocks -= unmapped;
  } else {
    RETURN_IF_ERROR(budget_->ReserveNodes(op, 1));
  }
  inode->size = size;
  inode->mtime_ns = inode->ctime_ns = NowNs();
  return Inodes::Put(op, *inode);
}

Status FileData::Truncate(WriteOp& op, Ino ino, uint64_t size) {
  ASSIGN_OR_RETURN(Inode inode, Inodes::Get(op, ino));
  RETURN_IF_ERROR(CheckRegular(inode));
  RETURN_IF_ERROR(CheckFileRange(size, 0));
  return TruncateData(op, &inode, size);
}

// ---- Fallocate.

// A stretch of file blocks with one state.
struct FileData::FileSpan {
  uint64_t file_block;
  uint64_t blocks;
  bool mapped;
  bool unwritten;
};

// Maps the file blocks of `span` to unwritten new blocks from `blocks`.
Status FileData::MapUnwritten(WriteOp& op, Ino ino, const FileSpan& span, BlockSource* blocks) {
  for (uint64_t done = 0; done < span.blocks;) {
    space::Run run = blocks->Take(span.blocks - done);
    RETURN_IF_ERROR(extents_->MapRun(op, ino, span.file_block + done, run.start, run.count,
                                     format::kExtentUnwritten));
    done += run.count;
  }
  return Status::Ok();
}

// Mode 0 / KEEP_SIZE: unwritten blocks for every hole of the range; mapped blocks stay as they are.
Status FileData::AllocateRange(WriteOp& op, Inode* inode, uint64_t offset, uint64_t length,
                               bool keep_size) {
  uint64_t first = offset / kBlock, end = BlocksCovering(offset + length);
  std::vector<FileSpan> holes;
  uint64_t pos = first, records = 0, need = 0;
  RETURN_IF_ERROR(extents_->ForEach(op, inode->ino, first, end - first,
                                    [&](uint64_t start, const ExtentRecord& x) {
                                      if (start > pos)
                                        holes.push_back({pos, start - pos, false, false});
                                      pos = start + x.blocks;
                                      ++records;
                                      return true;
                                    }));
  if (pos < end) holes.push_back({pos, end - pos, false, false});
  for (const FileSpan& h : holes) need += h.blocks;
  uint64_t goal = 0;
  if (!holes.empty()) {
    ASSIGN_OR_RETURN(goal, extents_->Goal(op, inode->ino, holes[0].file_block));
  }
  ASSIGN_OR_RETURN(BlockSource blocks, ReserveForOp(op, need, goal, records, 2 * holes.size() + 2));
  for (const FileSpan& h : holes) RETURN_IF_ERROR(MapUnwritten(op, inode->ino, h, &blocks));
  inode->blocks += need;
  int64_t now = NowNs();
  if (!keep_size && offset + length > inode->size) {
    inode->size = offset + length;
    inode->mtime_ns = now;
  }
  inode->ctime_ns = now;
  return Inodes::Put(op, *inode);
}

// PUNCH_HOLE: whole blocks unmapped, partial edge blocks zeroed.
// ZERO_RANGE: whole blocks become unwritten (allocated, reading as zeros: written ones are
// replaced by new unwritten blocks, holes get them, unwritten ones stay), partial edge blocks
// zeroed (an edge block that is a hole stays a hole).
Status FileData::PunchOrZero(WriteOp& op, Inode* inode, uint64_t offset, uint64_t length, bool zero,
                             bool keep_size) {
  uint64_t end = offset + length;
  uint64_t whole_first = BlocksCovering(offset), whole_end = end / kBlock;
  WritePlan edges;
  RETURN_IF_ERROR(PlanEdgeZeroing(op, *inode, offset, end, &edges));
  std::vector<FileSpan> spans;  // the whole blocks, by what is there now
  uint64_t records = 0, need = 0;
  if (whole_first < whole_end) {
    uint64_t pos = whole_first;
    RETURN_IF_ERROR(extents_->ForEach(
        op, inode->ino, whole_first, whole_end - whole_first,
        [&](uint64_t start, const ExtentRecord& x) {
          if (start > pos) spans.push_back({pos, start - pos, false, false});
          uint64_t from = std::max(start, pos), to = std::min(start + x.blocks, whole_end);
          spans.push_back({from, to - from, true, (x.flags & format::kExtentUnwritten) != 0});
          pos = to;
          ++records;
          return true;
        }));
    if (pos < whole_end) spans.push_back({pos, whole_end - pos, false, false});
  }
  if (zero) {
    for (const FileSpan& s : spans) need += s.unwritten ? 0 : s.blocks;
  }
  uint64_t goal = 0;
  if (whole_first < whole_end) {
    ASSIGN_OR_RETURN(goal, extents_->Goal(op, inode->ino, whole_first));
  }
  ASSIGN_OR_RETURN(BlockSource blocks,
                   ReserveForOp(op, edges.new_blocks + need, goal, records + edges.extents,
                                edges.Updates() + 4 * spans.size() + 4));
  RETURN_IF_ERROR(ApplyPlan(op, inode->ino, edges, &blocks));
  for (const FileSpan& s : spans) {
    if (!s.mapped && !zero) continue;
    if (s.mapped && (!zero || !s.unwritten)) {
      ASSIGN_OR_RETURN(uint64_t unmapped, extents_->Unmap(op, inode->ino, s.file_block, s.blocks));
      inode->blocks -= unmapped;
    }
    if (zero && !s.unwritten) {
      RETURN_IF_ERROR(MapUnwritten(op, inode->ino, s, &blocks));
      inode->blocks += s.blocks;
    }
  }
  if (zero && !keep_size) inode->size = std::max(inode->size, end);
  inode->mtime_ns = inode->ctime_ns = NowNs();
  return Inodes::Put(op, *inode);
}

Status FileData::CheckFallocate(uint32_t mode, uint64_t offset, uint64_t length) {
  constexpr uint32_t kKnown = kFallocKeepSize | kFallocPunchHole | kFallocZeroRange;
  if (length == 0) return Status::Invalid("fallocate: length 0");
  if (mode & ~kKnown) {
    return Status::NotSupported(fmt::format("fallocate mode 0x{:x} is not supported", mode));
  }
  bool punch = mode & kFallocPunchHole, zero = mode & kFallocZeroRange;
  bool keep_size = mode & kFallocKeepSize;
  // As Linux (fs/open.c, vfs_fallocate): these combinations are EOPNOTSUPP.
  if (punch && zero) return Status::NotSupported("fallocate: PUNCH_HOLE and ZERO_RANGE together");
  if (punch && !keep_size) return Status::NotSupported("fallocate: PUNCH_HOLE needs KEEP_SIZE");
  return CheckFileRange(offset, length);
}

Status FileData::Fallocate(WriteOp& op, Ino ino, uint32_t mode, uint64_t offset, uint64_t length) {
  bool punch = mode & kFallocPunchHole, zero = mode & kFallocZeroRange;
  bool keep_size = mode & kFallocKeepSize;
  ASSIGN_OR_RETURN(Inode inode, Inodes::Get(op, ino));
  RETURN_IF_ERROR(CheckRegular(inode));
  if (punch || zero) return PunchOrZero(op, &inode, offset, length, zero, keep_size);
  return AllocateRange(op, &inode, offset, length, keep_size);
}

// ---- SEEK_DATA / SEEK_HOLE and bmap. Unwritten extents count as holes (they read as zeros;
// daxfs has no page cache that could hold dirty data over them), and there is an implicit hole
// at the end of the file.

Result<uint64_t> FileData::SeekData(const ReadOp& op, Ino ino, uint64_t offset) const {
  ASSIGN_OR_RETURN(Inode inode, Inodes::Get(op, ino));
  RETURN_IF_ERROR(CheckRegular(inode));
  std::optional<uint64_t> data;
  if (offset < inode.size) {
    uint64_t first = offset / kBlock;
    RETURN_IF_ERROR(extents_->ForEach(op, ino, first, BlocksCovering(inode.size) - first,
                                      [&](uint64_t start, const ExtentRecord& x) {
                                        if (x.flags & format::kExtentUnwritten) return true;
                                        data = std::max(offset, start * kBlock);
                                        return false;
                                      }));
  }
  if (!data || *data >= inode.size) {
    return Status::Error(ENXIO,
                         fmt::format("inode {}: no data at or after offset {}", ino, offset));
  }
  return *data;
}

Result<uint64_t> FileData::SeekHole(const ReadOp& op, Ino ino, uint64_t offset) const {
  ASSIGN_OR_RETURN(Inode inode, Inodes::Get(op, ino));
  RETURN_IF_ERROR(CheckRegular(inode));
  if (offset >= inode.size) {
    return Status::Error(ENXIO,
                         fmt::format("inode {}: offset {} is at or past the end", ino, offset));
  }
  uint64_t pos = offset;  // data runs without a gap from `offset` to here
  uint64_t first = offset / kBlock;
  RETURN_IF_ERROR(extents_->ForEach(op, ino, first, BlocksCovering(inode.size) - first,
                                    [&](uint64_t start, const ExtentRecord& x) {
                                      if (start * kBlock > pos ||
                                          (x.flags & format::kExtentUnwritten))
                                        return false;
                                      pos = std::max(pos, (start + x.blocks) * kBlock);
                                      return true;
                                    }));
  return std::min(pos, inode.size);
}

Result<std::vector<FileExtent>> FileData::Bmap(const ReadOp& op, Ino ino) const {
  std::vector<FileExtent> out;
  ASSIGN_OR_RETURN(Inode inode, Inodes::Get(op, ino));
  if (inode.type == format::FileType::kDirectory) {
    return Status::Error(EISDIR, fmt::format("inode {} is a directory", ino));
  }
  if (format::IsSpecial(inode.type)) {
    return Status::Invalid(fmt::format("inode {} is a {}: no data", ino,
                                       format::FileTypeName(inode.type)));
  }
  // An extent partly shared is reported as its shared and unshared parts.
  Status inner;
  auto piece = [&](uint64_t file_block, uint64_t device_block, uint64_t blocks, bool unwritten,
                   bool shared) {
    if (blocks == 0) return;
    out.push_back({.file_offset = file_block * kBlock,
                   .device_offset = device_block * kBlock,
                   .length = blocks * kBlock,
                   .unwritten = unwritten,
                   .shared = shared});
  };
  RETURN_IF_ERROR(
      extents_->ForEach(op, ino, 0, kMaxFileBlocks, [&](uint64_t start, const ExtentRecord& x) {
        bool unwritten = (x.flags & format::kExtentUnwritten) != 0;
        Result<std::vector<space::Run>> shared = Refcount::SharedRuns(op, x.device_block, x.blocks);
        if (!shared.ok()) {
          inner = shared.status();
          return false;
        }
        uint64_t done = 0;  // blocks of the extent reported
        for (const space::Run& r : *shared) {
          uint64_t at = r.start - x.device_block;
          piece(start + done, x.device_block + done, at - done, unwritten, false);
          piece(start + at, r.start, r.count, unwritten, true);
          done = at + r.count;
        }
        piece(start + done, x.device_block + done, x.blocks - done, unwritten, false);
        return true;
      }));
  RETURN_IF_ERROR(inner);
  return out;
}

// ---- Reflink helpers (declared with the reflink/rmap helpers).

Status FileData::UnshareData(WriteOp& op, Inode* inode, uint64_t first_block, uint64_t count) {
  // Each shared run becomes a copy piece that writes no bytes: the whole blocks are copied.
  WritePlan plan;
  uint64_t end = first_block + count;
  Status inner;
  RETURN_IF_ERROR(extents_->ForEach(
      op, inode->ino, first_block, count, [&](uint64_t start, const ExtentRecord& x) {
        if (x.flags & format::kExtentUnwritten) return true;
        uint64_t from = std::max(start, first_block), to = std::min(start + x.blocks, end);
        uint64_t device = x.device_block + (from - start);
        Result<std::vector<space::Run>> shared = Refcount::SharedRuns(op, device, to - from);
        if (!shared.ok()) {
          inner = shared.status();
          return false;
        }
        if (!shared->empty()) ++plan.extents;
        for (const space::Run& r : *shared) {
          uint64_t fb = from + (r.start - device);
          plan.pieces.push_back(
              {WritePlan::Kind::kCopy, fb, r.count, r.start, fb * kBlock, fb * kBlock, nullptr});
          plan.new_blocks += r.count;
          if (!plan.first_new_block) plan.first_new_block = fb;
        }
        return true;
      }));
  RETURN_IF_ERROR(inner);
  if (plan.pieces.empty()) return Status::Ok();
  for (const WritePlan::Piece& p : plan.pieces) {  // copies read every block: none may be bad
    if (poison_->Active(op))
      RETURN_IF_ERROR(poison_->CheckNotLost(op, inode->ino, p.file_block, p.blocks, "unshare"));
    RETURN_IF_ERROR(
        poison_->CheckDeviceGood(inode->ino, p.file_block, p.device_block, p.blocks, "unshare"));
  }
  ASSIGN_OR_RETURN(uint64_t goal, extents_->Goal(op, inode->ino, *plan.first_new_block));
  ASSIGN_OR_RETURN(BlockSource blocks,
                   ReserveForOp(op, plan.new_blocks, goal, plan.extents, plan.Updates()));
  return ApplyPlan(op, inode->ino, plan, &blocks);
}

Status FileData::CopyBytesAndRemap(WriteOp& op, Inode* src, Inode* dst,
                                   const std::vector<ByteCopy>& copies, const RemapPlan* remap,
                                   const TreeWork& remap_work) {
  // Every source byte is read before anything changes (the ranges may be in one file).
  std::vector<std::vector<uint8_t>> bytes(copies.size());
  WritePlan plan;
  for (size_t i = 0; i < copies.size(); ++i) {
    const ByteCopy& c = copies[i];
    RETURN_IF_ERROR(CheckFileRange(c.dst_offset, c.length));
    bytes[i].resize(c.length);
    ASSIGN_OR_RETURN(size_t n, ReadData(op, *src, c.src_offset, bytes[i]));
    std::fill(bytes[i].begin() + n, bytes[i].end(), 0);
    RETURN_IF_ERROR(PlanWrite(op, dst->ino, c.dst_offset, c.length, bytes[i].data(), false, &plan));
  }
  uint64_t goal = 0;
  if (plan.first_new_block) {
    ASSIGN_OR_RETURN(goal, extents_->Goal(op, dst->ino, *plan.first_new_block));
  }
  TreeWork work = remap_work;
  work += {.local_records = plan.extents,
           .local_updates = plan.Updates(),
           .refcount_calls = plan.Updates()};
  ASSIGN_OR_RETURN(BlockSource blocks, ReserveForWork(op, plan.new_blocks, goal, work));
  RETURN_IF_ERROR(ApplyPlan(op, dst->ino, plan, &blocks));
  dst->blocks += plan.hole_blocks;
  if (remap != nullptr) RETURN_IF_ERROR(remap_->Apply(op, *remap, src, dst));
  return Status::Ok();
}

// ---- Unlinked files.

Status FileData::FreeAllData(WriteOp& op, Inode* inode) {
  ASSIGN_OR_RETURN(uint64_t records, extents_->Count(op, inode->ino, 0, kMaxFileBlocks));
  if (records == 0) return Status::Ok();
  RETURN_IF_ERROR(budget_->ReserveExtentUpdates(op, records, records + 2));
  RETURN_IF_ERROR(extents_->Unmap(op, inode->ino, 0, kMaxFileBlocks).status());
  inode->blocks = 0;
  return Status::Ok();
}

}  // namespace daxfs::fs
