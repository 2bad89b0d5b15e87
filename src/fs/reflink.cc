// Reflink operations (docs/reflink.md): clone, clone range, dedupe, unshare and copy_file_range,
// with the semantics and errors of Linux's FICLONE, FICLONERANGE, FIDEDUPERANGE,
// FALLOC_FL_UNSHARE_RANGE and copy_file_range(2). Each is one write operation that validates,
// then reserves (nodes for every extent it shares, from a count of the extents involved), then
// applies: a remap unmaps the destination range, raises the source pieces' refcounts and maps
// them into the destination. Changes maps only through extent_map.cc and refcount.cc.
#include <fmt/core.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "fs/blocks.h"
#include "fs/fs_impl.h"
#include "fs/rmap.h"
#include "fs/refcount.h"

namespace daxfs::fs {

using format::ExtentRecord;
using format::Inode;

namespace {

// copy_file_range copies at most this many bytes per call byte by byte (it may return a short
// count, as Linux's does); the block-aligned part a clone shares has no limit.
constexpr uint64_t kMaxByteCopy = 64ULL << 20;
// Dedupe compares the two ranges this many bytes at a time.
constexpr uint64_t kCompareChunk = 1ULL << 20;

Status NoReflink() {
  return Status::NotSupported("reflink needs a filesystem made with the reverse map and reflink");
}

// EISDIR for a directory, EINVAL for a symlink (as the remap ioctls and copy_file_range).
Status CheckRegularFile(const Inode& n) {
  if (n.type == format::FileType::kDirectory) {
    return Status::Error(EISDIR, fmt::format("inode {} is a directory", n.ino));
  }
  if (n.type != format::FileType::kRegular) {
    return Status::Invalid(fmt::format("inode {} is not a regular file", n.ino));
  }
  return Status::Ok();
}

// EINVAL when [offset, offset + length) wraps; EFBIG when it ends past the largest file.
Status CheckDestination(uint64_t offset, uint64_t length) {
  if (length > std::numeric_limits<uint64_t>::max() - offset) {
    return Status::Invalid(fmt::format("offset {} + length {} wraps around", offset, length));
  }
  if (offset + length > kMaxFileSize) {
    return Status::TooBig(fmt::format(
        "offset {} + length {} is beyond the largest file size (2^63 - 1)", offset, length));
  }
  return Status::Ok();
}

bool Overlap(uint64_t a, uint64_t b, uint64_t length) { return a < b + length && b < a + length; }

}  // namespace

// The two inodes of a two-file operation. `dst` points at `src` when they are one file, so that
// every change to it lands in one copy.
struct FsImpl::InodePair {
  Inode src;
  Inode other;
  Inode* dst = nullptr;
  bool same() const { return dst == &src; }
};

Status FsImpl::LoadInodePair(const ReadOp& op, Ino src, Ino dst, InodePair* p) {
  ASSIGN_OR_RETURN(p->src, GetInode(op, src));
  p->dst = &p->src;
  if (dst != src) {
    ASSIGN_OR_RETURN(p->other, GetInode(op, dst));
    p->dst = &p->other;
  }
  RETURN_IF_ERROR(CheckRegularFile(p->src));
  RETURN_IF_ERROR(CheckRegularFile(*p->dst));
  // A live writable DAX mapping stores straight into its blocks: sharing them would let those
  // stores reach the other file (there is no copy-on-write at fault time).
  for (Ino ino : {src, dst}) {
    if (runner_.observer() != nullptr && runner_.observer()->HasWritableMappings(ino)) {
      return Status::Error(ETXTBSY, fmt::format("inode {} has a live writable DAX mapping: unmap "
                                                "it before sharing its blocks", ino));
    }
  }
  return Status::Ok();
}

// ---- Remapping: the core of clone and dedupe.

struct FsImpl::RemapPlan {
  uint64_t dst_block = 0;         // where the destination range starts
  uint64_t dst_unmap_blocks = 0;  // how much of dst is unmapped first
  // The source's written pieces, at their destination file blocks (unwritten source extents and
  // holes leave holes: unwritten extents are never shared).
  std::vector<std::pair<uint64_t, ExtentRecord>> pieces;
  uint64_t shared_blocks = 0;
};

Result<FsImpl::RemapPlan> FsImpl::PlanRemap(const ReadOp& op, const Inode& src, uint64_t src_block,
                                            uint64_t blocks, const Inode& dst,
                                            uint64_t dst_block, uint64_t dst_unmap_blocks,
                                            TreeWork* work) {
  RemapPlan plan{.dst_block = dst_block, .dst_unmap_blocks = dst_unmap_blocks};
  uint64_t end = src_block + blocks;
  RETURN_IF_ERROR(
      extents_.ForEach(op, src.ino, src_block, blocks, [&](uint64_t start, const ExtentRecord& x) {
        if (x.flags & format::kExtentUnwritten) return true;
        uint64_t from = std::max(start, src_block), to = std::min(start + x.blocks, end);
        plan.pieces.emplace_back(dst_block + (from - src_block),
                                 ExtentRecord{x.device_block + (from - start),
                                              static_cast<uint32_t>(to - from), 0});
        plan.shared_blocks += to - from;
        return true;
      }));
  // Sharing a lost or bad block would hand bad bytes to a new owner: EIO, nothing changed.
  if (poison_.Active(op)) RETURN_IF_ERROR(poison_.CheckNotLost(op, src.ino, src_block, blocks, "clone"));
  for (const auto& [file_block, x] : plan.pieces) {
    RETURN_IF_ERROR(poison_.CheckDeviceGood(src.ino, src_block + (file_block - dst_block),
                                          x.device_block, x.blocks, "clone"));
  }
  ASSIGN_OR_RETURN(uint64_t dst_records, extents_.Count(op, dst.ino, dst_block, dst_unmap_blocks));
  // Unmapping: each destination record deleted or trimmed, one split at each end (+ a margin for
  // records split by byte writes before the remap). Mapping: an insert per piece, plus merges at
  // the ends. A refcount call per unmapped record and per piece; both inodes.
  uint64_t pieces = plan.pieces.size();
  *work += {.extent_updates = 2 * dst_records + 2 * pieces + 8,
            .extent_inserts = pieces + 4,
            .refcount_calls = dst_records + pieces + 4,
            .increments = pieces > 0,
            .other_updates = 2};
  return plan;
}

Status FsImpl::ApplyRemap(WriteOp& op, const RemapPlan& plan, Inode* src, Inode* dst) {
  ASSIGN_OR_RETURN(uint64_t unmapped, extents_.Unmap(op, dst->ino, plan.dst_block, plan.dst_unmap_blocks));
  dst->blocks -= unmapped;
  for (const auto& [file_block, x] : plan.pieces) {
    RETURN_IF_ERROR(Refcount::Raise(op, x.device_block, x.blocks));
  }
  RETURN_IF_ERROR(extents_.MapPieces(op, dst->ino, plan.pieces));
  dst->blocks += plan.shared_blocks;
  if (!plan.pieces.empty()) {
    src->flags |= format::kInodeFlagReflinked;
    dst->flags |= format::kInodeFlagReflinked;
  }
  return Status::Ok();
}

// ---- The operations.

Status FsImpl::Clone(Ino src_ino, Ino dst_ino) {
  if (!has_reflink()) return NoReflink();
  return runner_.Write([&](WriteOp& op) -> Status {
    InodePair p;
    RETURN_IF_ERROR(LoadInodePair(op, src_ino, dst_ino, &p));
    if (p.same()) {
      if (p.src.size == 0) return Status::Ok();
      return Status::Invalid(fmt::format("inode {}: cannot clone a file onto itself", src_ino));
    }
    // dst becomes a copy of src: all of dst's blocks go, src's written blocks are shared.
    TreeWork work;
    ASSIGN_OR_RETURN(RemapPlan plan, PlanRemap(op, p.src, 0, BlocksCovering(p.src.size), *p.dst, 0,
                                               kMaxFileBlocks, &work));
    RETURN_IF_ERROR(budget_.Reserve(op, work));
    RETURN_IF_ERROR(ApplyRemap(op, plan, &p.src, p.dst));
    p.dst->size = p.src.size;
    p.dst->mtime_ns = p.dst->ctime_ns = NowNs();
    RETURN_IF_ERROR(PutInode(op, p.src));
    return PutInode(op, *p.dst);
  });
}

Status FsImpl::CloneRange(Ino src_ino, uint64_t src_offset, Ino dst_ino, uint64_t dst_offset,
                          uint64_t length) {
  if (!has_reflink()) return NoReflink();
  return runner_.Write([&](WriteOp& op) -> Status {
    InodePair p;
    RETURN_IF_ERROR(LoadInodePair(op, src_ino, dst_ino, &p));
    if (src_offset % kBlock != 0 || dst_offset % kBlock != 0) {
      return Status::Invalid(fmt::format(
          "clone range: offsets {} and {} must be multiples of the block size ({})", src_offset,
          dst_offset, kBlock));
    }
    const uint64_t size = p.src.size;
    if (length == 0) {  // to the source's EOF
      if (src_offset == size) return Status::Ok();
      if (src_offset > size) {
        return Status::Invalid(
            fmt::format("clone range: offset {} is past the end of inode {} ({} bytes)",
                        src_offset, src_ino, size));
      }
      length = size - src_offset;
    }
    if (src_offset >= size || length > size - src_offset) {
      return Status::Invalid(fmt::format(
          "clone range: bytes {}..{} reach past the end of inode {} ({} bytes)", src_offset,
          src_offset + std::min(length, kMaxFileSize) - 1, src_ino, size));
    }
    const bool partial_tail = length % kBlock != 0;  // only allowed at the source's EOF
    if (partial_tail && src_offset + length != size) {
      return Status::Invalid(fmt::format(
          "clone range: length {} must be a multiple of the block size unless it reaches the "
          "end of the source", length));
    }
    RETURN_IF_ERROR(CheckDestination(dst_offset, length));
    const uint64_t blocks = BlocksCovering(length);
    if (p.same() && Overlap(src_offset, dst_offset, blocks * kBlock)) {
      return Status::Invalid(fmt::format(
          "clone range: source and destination overlap within inode {}", src_ino));
    }
    if (partial_tail && dst_offset + length < p.dst->size) {
      // The source's partial last block would bring zeros into the middle of dst (as Linux).
      return Status::Invalid(fmt::format(
          "clone range: the source's partial last block would land inside inode {}, before its "
          "end", dst_ino));
    }
    TreeWork work;
    ASSIGN_OR_RETURN(RemapPlan plan, PlanRemap(op, p.src, src_offset / kBlock, blocks, *p.dst,
                                               dst_offset / kBlock, blocks, &work));
    RETURN_IF_ERROR(budget_.Reserve(op, work));
    RETURN_IF_ERROR(ApplyRemap(op, plan, &p.src, p.dst));
    p.dst->size = std::max(p.dst->size, dst_offset + length);
    p.dst->mtime_ns = p.dst->ctime_ns = NowNs();
    if (!p.same()) RETURN_IF_ERROR(PutInode(op, p.src));
    return PutInode(op, *p.dst);
  });
}

Result<DedupeResult> FsImpl::Dedupe(Ino src_ino, uint64_t src_offset, Ino dst_ino,
                                    uint64_t dst_offset, uint64_t length) {
  if (!has_reflink()) return NoReflink();
  DedupeResult result;
  RETURN_IF_ERROR(runner_.Write([&](WriteOp& op) -> Status {
    InodePair p;
    RETURN_IF_ERROR(LoadInodePair(op, src_ino, dst_ino, &p));
    if (src_offset % kBlock != 0 || dst_offset % kBlock != 0) {
      return Status::Invalid(fmt::format(
          "dedupe: offsets {} and {} must be multiples of the block size ({})", src_offset,
          dst_offset, kBlock));
    }
    if (length == 0) return Status::Ok();
    auto within = [&](uint64_t offset, uint64_t size) {
      return offset < size && length <= size - offset;
    };
    if (!within(src_offset, p.src.size) || !within(dst_offset, p.dst->size)) {
      return Status::Invalid(fmt::format(
          "dedupe: both ranges must lie within their files (source {} bytes at {} of {}, "
          "destination at {} of {})", length, src_offset, p.src.size, dst_offset, p.dst->size));
    }
    // A partial last block only when the ranges end at both files' EOF; otherwise the length is
    // shortened to whole blocks (as Linux's FIDEDUPERANGE).
    uint64_t count = length;
    if (!(src_offset + length == p.src.size && dst_offset + length == p.dst->size)) {
      count = length / kBlock * kBlock;
    }
    if (count == 0) return Status::Ok();
    const uint64_t blocks = BlocksCovering(count);
    if (p.same() && Overlap(src_offset, dst_offset, blocks * kBlock)) {
      return Status::Invalid(
          fmt::format("dedupe: source and destination overlap within inode {}", src_ino));
    }
    // Compare under the lock, before anything changes.
    std::vector<uint8_t> a(std::min(count, kCompareChunk)), b(a.size());
    for (uint64_t done = 0; done < count;) {
      uint64_t n = std::min<uint64_t>(a.size(), count - done);
      ASSIGN_OR_RETURN(size_t got_a, ReadData(op, p.src, src_offset + done, {a.data(), n}));
      ASSIGN_OR_RETURN(size_t got_b, ReadData(op, *p.dst, dst_offset + done, {b.data(), n}));
      if (got_a != n || got_b != n || std::memcmp(a.data(), b.data(), n) != 0) {
        result.differs = true;
        return Status::Ok();
      }
      done += n;
    }
    TreeWork work;
    ASSIGN_OR_RETURN(RemapPlan plan, PlanRemap(op, p.src, src_offset / kBlock, blocks, *p.dst,
                                               dst_offset / kBlock, blocks, &work));
    RETURN_IF_ERROR(budget_.Reserve(op, work));
    RETURN_IF_ERROR(ApplyRemap(op, plan, &p.src, p.dst));
    if (!p.same()) RETURN_IF_ERROR(PutInode(op, p.src));
    RETURN_IF_ERROR(PutInode(op, *p.dst));  // contents are unchanged: so are the times
    result.bytes_deduped = count;
    return Status::Ok();
  }));
  return result;
}

Status FsImpl::Unshare(Ino ino, uint64_t offset, uint64_t length) {
  if (!has_reflink()) return NoReflink();
  if (length == 0) return Status::Invalid("unshare: length 0");
  if (offset > kMaxFileSize || length > kMaxFileSize - offset) {
    return Status::TooBig(fmt::format(
        "offset {} + length {} is beyond the largest file size (2^63 - 1)", offset, length));
  }
  return runner_.Write([&](WriteOp& op) -> Status {
    ASSIGN_OR_RETURN(Inode inode, GetInode(op, ino));
    RETURN_IF_ERROR(CheckRegularFile(inode));
    uint64_t first = offset / kBlock;
    return UnshareData(op, &inode, first, BlocksCovering(offset + length) - first);
  });
}

Result<uint64_t> FsImpl::CopyFileRange(Ino src_ino, uint64_t src_offset, Ino dst_ino,
                                       uint64_t dst_offset, uint64_t length) {
  uint64_t copied = 0;
  RETURN_IF_ERROR(runner_.Write([&](WriteOp& op) -> Status {
    InodePair p;
    RETURN_IF_ERROR(LoadInodePair(op, src_ino, dst_ino, &p));
    if (length == 0 || src_offset >= p.src.size) return Status::Ok();  // nothing to copy
    uint64_t n = std::min(length, p.src.size - src_offset);
    RETURN_IF_ERROR(CheckDestination(dst_offset, n));
    if (p.same() && Overlap(src_offset, dst_offset, n)) {
      return Status::Invalid(fmt::format(
          "copy_file_range: source and destination overlap within inode {}", src_ino));
    }
    // With reflink and the same offset within a block, the whole blocks in the middle are
    // shared and only the partial blocks at the edges are copied.
    std::vector<ByteCopy> copies;
    std::optional<RemapPlan> remap;
    TreeWork work;
    uint64_t mid_begin = (src_offset + kBlock - 1) / kBlock * kBlock;
    uint64_t mid_end = (src_offset + n) / kBlock * kBlock;
    if (has_reflink() && src_offset % kBlock == dst_offset % kBlock && mid_begin < mid_end) {
      if (mid_begin > src_offset) copies.push_back({src_offset, dst_offset, mid_begin - src_offset});
      if (src_offset + n > mid_end) {
        copies.push_back({mid_end, dst_offset + (mid_end - src_offset), src_offset + n - mid_end});
      }
      uint64_t blocks = (mid_end - mid_begin) / kBlock;
      uint64_t dst_block = (dst_offset + (mid_begin - src_offset)) / kBlock;
      ASSIGN_OR_RETURN(remap, PlanRemap(op, p.src, mid_begin / kBlock, blocks, *p.dst, dst_block,
                                        blocks, &work));
    } else {
      n = std::min(n, kMaxByteCopy);
      copies.push_back({src_offset, dst_offset, n});
    }
    RETURN_IF_ERROR(CopyBytesAndRemap(op, &p.src, p.dst, copies, remap ? &*remap : nullptr, work));
    p.dst->size = std::max(p.dst->size, dst_offset + n);
    p.dst->mtime_ns = p.dst->ctime_ns = NowNs();
    if (!p.same() && remap) RETURN_IF_ERROR(PutInode(op, p.src));
    RETURN_IF_ERROR(PutInode(op, *p.dst));
    copied = n;
    return Status::Ok();
  }));
  return copied;
}

}  // namespace daxfs::fs
