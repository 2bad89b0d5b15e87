// Reflink operations (docs/reflink.md): clone, clone range, dedupe, unshare and copy_file_range,
// with the semantics and errors of Linux's FICLONE, FICLONERANGE, FIDEDUPERANGE,
// FALLOC_FL_UNSHARE_RANGE and copy_file_range(2). Each is one write operation that validates,
// then reserves (nodes for every extent it shares, from a count of the extents involved), then
// applies: a remap unmaps the destination range, raises the source pieces' refcounts and maps
// them into the destination. Changes maps only through extent_map.cc and refcount.cc.
#include "fs/reflink.h"

#include <fmt/core.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <optional>

#include "fs/blocks.h"
#include "fs/file_data.h"
#include "fs/inodes.h"
#include "fs/remap.h"

namespace daxfs::fs {

using format::ExtentRecord;
using format::Inode;

namespace {

// copy_file_range copies at most this many bytes per call byte by byte (it may return a short
// count, as Linux's does); the block-aligned part a clone shares has no limit.
constexpr uint64_t kMaxByteCopy = 64ULL << 20;
// Dedupe compares the two ranges this many bytes at a time.
constexpr uint64_t kCompareChunk = 1ULL << 20;

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

Status Reflink::Available() const {
  if (has_reflink_) return Status::Ok();
  return Status::NotSupported("reflink needs a filesystem made with the reverse map and reflink");
}

// The two inodes of a two-file operation. `dst` points at `src` when they are one file, so that
// every change to it lands in one copy.
struct Reflink::InodePair {
  Inode src;
  Inode other;
  Inode* dst = nullptr;
  bool same() const { return dst == &src; }
};

Status Reflink::LoadInodePair(const WriteOp& op, Ino src, Ino dst, InodePair* p) {
  ASSIGN_OR_RETURN(p->src, Inodes::Get(op, src));
  p->dst = &p->src;
  if (dst != src) {
    ASSIGN_OR_RETURN(p->other, Inodes::Get(op, dst));
    p->dst = &p->other;
  }
  RETURN_IF_ERROR(CheckRegularFile(p->src));
  RETURN_IF_ERROR(CheckRegularFile(*p->dst));
  // A live writable DAX mapping stores straight into its blocks: sharing them would let those
  // stores reach the other file (there is no copy-on-write at fault time).
  for (Ino ino : {src, dst}) {
    if (op.observer() != nullptr && op.observer()->HasWritableMappings(ino)) {
      return Status::Error(ETXTBSY, fmt::format("inode {} has a live writable DAX mapping: unmap "
                                                "it before sharing its blocks",
                                                ino));
    }
  }
  return Status::Ok();
}

// ---- The operations.

Status Reflink::Clone(WriteOp& op, Ino src_ino, Ino dst_ino) {
  {
    InodePair p;
    RETURN_IF_ERROR(LoadInodePair(op, src_ino, dst_ino, &p));
    if (p.same()) {
      if (p.src.size == 0) return Status::Ok();
      return Status::Invalid(fmt::format("inode {}: cannot clone a file onto itself", src_ino));
    }
    // dst becomes a copy of src: all of dst's blocks go, src's written blocks are shared.
    TreeWork work;
    ASSIGN_OR_RETURN(RemapPlan plan, remap_->Plan(op, p.src, 0, BlocksCovering(p.src.size), *p.dst,
                                                  0, kMaxFileBlocks, &work));
    RETURN_IF_ERROR(budget_->Reserve(op, work));
    RETURN_IF_ERROR(remap_->Apply(op, plan, &p.src, p.dst));
    p.dst->size = p.src.size;
    p.dst->mtime_ns = p.dst->ctime_ns = NowNs();
    RETURN_IF_ERROR(Inodes::Put(op, p.src));
    return Inodes::Put(op, *p.dst);
  }
}

Status Reflink::CloneRange(WriteOp& op, Ino src_ino, uint64_t src_offset, Ino dst_ino,
                           uint64_t dst_offset, uint64_t length) {
  {
    InodePair p;
    RETURN_IF_ERROR(LoadInodePair(op, src_ino, dst_ino, &p));
    if (src_offset % kBlock != 0 || dst_offset % kBlock != 0) {
      return Status::Invalid(
          fmt::format("clone range: offsets {} and {} must be multiples of the block size ({})",
                      src_offset, dst_offset, kBlock));
    }
    const uint64_t size = p.src.size;
    if (length == 0) {  // to the source's EOF
      if (src_offset == size) return Status::Ok();
      if (src_offset > size) {
        return Status::Invalid(
            fmt::format("clone range: offset {} is past the end of inode {} ({} bytes)", src_offset,
                        src_ino, size));
      }
      length = size - src_offset;
    }
    if (src_offset >= size || length > size - src_offset) {
      return Status::Invalid(
          fmt::format("clone range: bytes {}..{} reach past the end of inode {} ({} bytes)",
                      src_offset, src_offset + std::min(length, kMaxFileSize) - 1, src_ino, size));
    }
    const bool partial_tail = length % kBlock != 0;  // only allowed at the source's EOF
    if (partial_tail && src_offset + length != size) {
      return Status::Invalid(fmt::format(
          "clone range: length {} must be a multiple of the block size unless it reaches the "
          "end of the source",
          length));
    }
    RETURN_IF_ERROR(CheckDestination(dst_offset, length));
    const uint64_t blocks = BlocksCovering(length);
    if (p.same() && Overlap(src_offset, dst_offset, blocks * kBlock)) {
      return Status::Invalid(
          fmt::format("clone range: source and destination overlap within inode {}", src_ino));
    }
    if (partial_tail && dst_offset + length < p.dst->size) {
      // The source's partial last block would bring zeros into the middle of dst (as Linux).
      return Status::Invalid(fmt::format(
          "clone range: the source's partial last block would land inside inode {}, before its "
          "end",
          dst_ino));
    }
    TreeWork work;
    ASSIGN_OR_RETURN(RemapPlan plan, remap_->Plan(op, p.src, src_offset / kBlock, blocks, *p.dst,
                                                  dst_offset / kBlock, blocks, &work));
    RETURN_IF_ERROR(budget_->Reserve(op, work));
    RETURN_IF_ERROR(remap_->Apply(op, plan, &p.src, p.dst));
    p.dst->size = std::max(p.dst->size, dst_offset + length);
    p.dst->mtime_ns = p.dst->ctime_ns = NowNs();
    if (!p.same()) RETURN_IF_ERROR(Inodes::Put(op, p.src));
    return Inodes::Put(op, *p.dst);
  }
}

Status Reflink::Dedupe(WriteOp& op, Ino src_ino, uint64_t src_offset, Ino dst_ino,
                       uint64_t dst_offset, uint64_t length, DedupeResult* result) {
  {
    InodePair p;
    RETURN_IF_ERROR(LoadInodePair(op, src_ino, dst_ino, &p));
    if (src_offset % kBlock != 0 || dst_offset % kBlock != 0) {
      return Status::Invalid(
          fmt::format("dedupe: offsets {} and {} must be multiples of the block size ({})",
                      src_offset, dst_offset, kBlock));
    }
    if (length == 0) return Status::Ok();
    auto within = [&](uint64_t offset, uint64_t size) {
      return offset < size && length <= size - offset;
    };
    if (!within(src_offset, p.src.size) || !within(dst_offset, p.dst->size)) {
      return Status::Invalid(fmt::format(
          "dedupe: both ranges must lie within their files (source {} bytes at {} of {}, "
          "destination at {} of {})",
          length, src_offset, p.src.size, dst_offset, p.dst->size));
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
      ASSIGN_OR_RETURN(size_t got_a, files_->ReadData(op, p.src, src_offset + done, {a.data(), n}));
      ASSIGN_OR_RETURN(size_t got_b,
                       files_->ReadData(op, *p.dst, dst_offset + done, {b.data(), n}));
      if (got_a != n || got_b != n || std::memcmp(a.data(), b.data(), n) != 0) {
        result->differs = true;
        return Status::Ok();
      }
      done += n;
    }
    TreeWork work;
    ASSIGN_OR_RETURN(RemapPlan plan, remap_->Plan(op, p.src, src_offset / kBlock, blocks, *p.dst,
                                                  dst_offset / kBlock, blocks, &work));
    RETURN_IF_ERROR(budget_->Reserve(op, work));
    RETURN_IF_ERROR(remap_->Apply(op, plan, &p.src, p.dst));
    if (!p.same()) RETURN_IF_ERROR(Inodes::Put(op, p.src));
    RETURN_IF_ERROR(Inodes::Put(op, *p.dst));  // contents are unchanged: so are the times
    result->bytes_deduped = count;
    return Status::Ok();
  }
}

Status Reflink::CheckUnshare(uint64_t offset, uint64_t length) {
  if (length == 0) return Status::Invalid("unshare: length 0");
  if (offset > kMaxFileSize || length > kMaxFileSize - offset) {
    return Status::TooBig(fmt::format(
        "offset {} + length {} is beyond the largest file size (2^63 - 1)", offset, length));
  }
  return Status::Ok();
}

Status Reflink::Unshare(WriteOp& op, Ino ino, uint64_t offset, uint64_t length) {
  {
    ASSIGN_OR_RETURN(Inode inode, Inodes::Get(op, ino));
    RETURN_IF_ERROR(CheckRegularFile(inode));
    uint64_t first = offset / kBlock;
    return files_->UnshareData(op, &inode, first, BlocksCovering(offset + length) - first);
  }
}

Status Reflink::CopyFileRange(WriteOp& op, Ino src_ino, uint64_t src_offset, Ino dst_ino,
                              uint64_t dst_offset, uint64_t length, uint64_t* copied) {
  {
    InodePair p;
    RETURN_IF_ERROR(LoadInodePair(op, src_ino, dst_ino, &p));
    if (length == 0 || src_offset >= p.src.size) return Status::Ok();  // nothing to copy
    uint64_t n = std::min(length, p.src.size - src_offset);
    RETURN_IF_ERROR(CheckDestination(dst_offset, n));
    if (p.same() && Overlap(src_offset, dst_offset, n)) {
      return Status::Invalid(
          fmt::format("copy_file_range: source and destination overlap within inode {}", src_ino));
    }
    // With reflink and the same offset within a block, the whole blocks in the middle are
    // shared and only the partial blocks at the edges are copied.
    std::vector<ByteCopy> copies;
    std::optional<RemapPlan> remap;
    TreeWork work;
    uint64_t mid_begin = (src_offset + kBlock - 1) / kBlock * kBlock;
    uint64_t mid_end = (src_offset + n) / kBlock * kBlock;
    if (has_reflink_ && src_offset % kBlock == dst_offset % kBlock && mid_begin < mid_end) {
      if (mid_begin > src_offset)
        copies.push_back({src_offset, dst_offset, mid_begin - src_offset});
      if (src_offset + n > mid_end) {
        copies.push_back({mid_end, dst_offset + (mid_end - src_offset), src_offset + n - mid_end});
      }
      uint64_t blocks = (mid_end - mid_begin) / kBlock;
      uint64_t dst_block = (dst_offset + (mid_begin - src_offset)) / kBlock;
      ASSIGN_OR_RETURN(remap, remap_->Plan(op, p.src, mid_begin / kBlock, blocks, *p.dst, dst_block,
                                           blocks, &work));
    } else {
      n = std::min(n, kMaxByteCopy);
      copies.push_back({src_offset, dst_offset, n});
    }
    RETURN_IF_ERROR(
        files_->CopyBytesAndRemap(op, &p.src, p.dst, copies, remap ? &*remap : nullptr, work));
    p.dst->size = std::max(p.dst->size, dst_offset + n);
    p.dst->mtime_ns = p.dst->ctime_ns = NowNs();
    if (!p.same() && remap) RETURN_IF_ERROR(Inodes::Put(op, p.src));
    RETURN_IF_ERROR(Inodes::Put(op, *p.dst));
    *copied = n;
    return Status::Ok();
  }
}

}  // namespace daxfs::fs
