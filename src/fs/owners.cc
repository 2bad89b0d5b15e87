// Owner lookup (owners.h). Semantics (docs/reflink.md, ioctl_getfsmap(2)):
// - The query is in bytes and is widened to whole blocks: [start / 4096, ceil(end / 4096)),
//   clipped to the device. start > end is EINVAL; start == end gives no records.
// - Records are trimmed to the query range (our choice among the readings of ioctl_getfsmap(2)):
//   a record that starts before the range is reported from the range's first block, its file
//   offset advanced by as much; one that ends after it is cut at the range's end. Keys and order
//   are those of the trimmed records, so resuming with the last record's key (same start and
//   end) is exact: no record is lost or repeated across pages.
// - Order: (physical, owner, offset); one record per owner of a shared block, each flagged
//   kFsmapShared when any block it reports has two or more owners.
// - Free space is not reported (no kOwnerFree records): it is not in the rmap (DESIGN.md §4), and
//   in DATA chunks it is simply the gaps between records.
// - kFsmapLast marks the final record of the whole query; a page cut short by `max` has none.
#include "fs/owners.h"

#include <fmt/core.h>

#include <algorithm>
#include <limits>
#include <tuple>

#include "fs/blocks.h"
#include "fs/poison.h"
#include "fs/refcount.h"
#include "fs/rmap.h"
#include "txn/pool.h"

namespace daxfs::fs {

using format::RefcountRecord;
using format::RmapRecord;

namespace {

uint64_t End(const RmapRecord& r) { return r.device_block + r.blocks; }

auto FsmapKeyOf(const FsmapRecord& r) { return std::tie(r.physical, r.owner, r.offset); }

bool FsmapLess(const FsmapRecord& a, const FsmapRecord& b) { return FsmapKeyOf(a) < FsmapKeyOf(b); }

bool After(const FsmapRecord& r, const std::optional<FsmapKey>& after) {
  return !after || FsmapKeyOf(r) > std::tie(after->physical, after->owner, after->offset);
}

}  // namespace

bool FsmapQuery::Overlaps(const RmapRecord& r) const {
  return first < end && r.device_block < end && End(r) > first;
}

FsmapRecord FsmapQuery::Trimmed(const RmapRecord& r) const {
  uint64_t s = std::max(r.device_block, first), e = std::min(End(r), end);
  bool special = format::IsSpecialOwner(r.owner);
  FsmapRecord out{.physical = s * kBlock,
                  .length = (e - s) * kBlock,
                  .owner = r.owner,
                  .offset = special ? 0 : (r.file_block + (s - r.device_block)) * kBlock};
  if (special) out.flags |= kFsmapSpecialOwner;
  if (r.flags & format::kRmapUnwritten) out.flags |= kFsmapUnwritten;
  return out;
}

void FsmapQuery::Finish(std::vector<FsmapRecord>* records) const {
  if (max != 0 && records->size() > max) {
    records->resize(max);
  } else if (!records->empty()) {
    records->back().flags |= kFsmapLast;
  }
}

Result<FsmapQuery> Owners::MakeQuery(uint64_t start, uint64_t end,
                                     const std::optional<FsmapKey>& after, size_t max) const {
  if (start > end) {
    return Status::Invalid(fmt::format("fsmap: start {} is past end {}", start, end));
  }
  uint64_t total = pool_->superblock().total_blocks();
  FsmapQuery q;
  q.first = std::min(start / kBlock, total);
  q.end = start == end ? q.first : std::min(end / kBlock + (end % kBlock != 0 ? 1 : 0), total);
  q.after = after;
  q.max = max;
  return q;
}

// ---- With the reverse map: one overlap query, O(log n + k).
//
// Let lo = max(query start, resume block). A record starting at or before lo may be trimmed to
// start at lo, which can reorder it among the others starting there; every record starting after
// lo keeps its key, so those arrive from the tree already in answer order, and after all the
// former. So: gather and sort the few records overlapping block lo, then take the rest in tree
// order and stop as soon as one more record than the page holds is known.
Result<std::vector<FsmapRecord>> Owners::FromRmap(const ReadOp& op, const FsmapQuery& q) const {
  uint64_t lo = q.first;
  if (q.after) lo = std::max(lo, q.after->physical / kBlock);
  std::vector<FsmapRecord> head, tail;
  if (lo < q.end) {
    Status bad;
    RETURN_IF_ERROR(
        op.rmap()->Overlaps(lo, q.end, [&](const btree::Key& k, std::span<const uint8_t> v) {
          Result<RmapRecord> r = format::DecodeRmap(k.w[0], k.w[1], k.w[2], v.data());
          if (!r.ok()) {
            bad = r.status();
            return false;
          }
          FsmapRecord rec = q.Trimmed(*r);
          if (!After(rec, q.after)) return true;
          (r->device_block <= lo ? head : tail).push_back(rec);
          return q.max == 0 || tail.empty() || head.size() + tail.size() <= q.max;
        }));
    RETURN_IF_ERROR(bad);
  }
  std::sort(head.begin(), head.end(), FsmapLess);
  head.insert(head.end(), tail.begin(), tail.end());
  q.Finish(&head);
  if (op.refcount() != nullptr) {
    for (FsmapRecord& rec : head) {
      if (rec.flags & kFsmapSpecialOwner) continue;
      ASSIGN_OR_RETURN(bool shared,
                       Refcount::AnyShared(op, rec.physical / kBlock, rec.length / kBlock));
      if (shared) rec.flags |= kFsmapShared;
    }
  }
  return head;
}

// ---- Without the reverse map: the baseline. Every extent of every file, plus the special
// owners the chunk table implies, filtered, trimmed, flagged and sorted. O(all extents).
Result<std::vector<FsmapRecord>> Owners::ByFullScan(const ReadOp& op, const FsmapQuery& q) const {
  std::vector<RmapRecord> all;
  RETURN_IF_ERROR(ScanFileOwners(op, &all));
  ASSIGN_OR_RETURN(std::vector<RmapRecord> retired,
                   poison_->RetiredRecords(op, all));  // owner `bad`
  for (const RmapRecord& s : SpecialOwnerRecords()) all.push_back(s);
  all.insert(all.end(), retired.begin(), retired.end());
  std::vector<RmapRecord> in_range;  // trimmed to the query, for the sharing sweep
  std::vector<FsmapRecord> out;
  for (const RmapRecord& r : all) {
    if (!q.Overlaps(r)) continue;
    FsmapRecord rec = q.Trimmed(r);
    RmapRecord t = r;
    t.device_block = rec.physical / kBlock;
    t.blocks = rec.length / kBlock;
    in_range.push_back(t);
    if (After(rec, q.after)) out.push_back(rec);
  }
  std::vector<RefcountRecord> shared = RefcountsOf(in_range);  // disjoint, sorted
  for (FsmapRecord& rec : out) {
    if (rec.flags & kFsmapSpecialOwner) continue;
    uint64_t first = rec.physical / kBlock, end = first + rec.length / kBlock;
    // The first shared range ending after `first` overlaps the record iff it starts before its end.
    auto it = std::upper_bound(
        shared.begin(), shared.end(), first,
        [](uint64_t b, const RefcountRecord& s) { return b < s.device_block + s.blocks; });
    if (it != shared.end() && it->device_block < end) rec.flags |= kFsmapShared;
  }
  std::sort(out.begin(), out.end(), FsmapLess);
  q.Finish(&out);
  return out;
}

// ---- What the reverse maps must hold.

Status Owners::ScanFileOwners(const ReadOp& op, std::vector<RmapRecord>* out) {
  btree::Cursor c(op.extents());
  for (Status s = c.SeekFirst();; s = c.Next()) {
    RETURN_IF_ERROR(s);
    if (!c.Valid()) break;
    uint64_t ino = c.key().w[0], file_block = c.key().w[1];
    ASSIGN_OR_RETURN(format::ExtentRecord x,
                     format::DecodeExtent(ino, file_block, c.value().data()));
    out->push_back({.device_block = x.device_block,
                    .owner = ino,
                    .file_block = file_block,
                    .blocks = x.blocks,
                    .flags = x.flags});
  }
  std::sort(out->begin(), out->end(), RmapKeyLess);
  return Status::Ok();
}

// (Retired space, owner `bad`, comes from the poison tree: RetiredRecords, media.cc.)
std::vector<RmapRecord> Owners::SpecialOwnerRecords() const {
  format::Superblock sb = pool_->superblock();
  std::vector<RmapRecord> out;
  out.push_back(
      {.device_block = 0, .owner = format::kOwnerSuperblock, .blocks = format::kFirstNodeBlock});
  for (auto& [chunk, type] : pool_->Chunks()) {
    if (type != format::ChunkType::kMetadata && type != format::ChunkType::kMetadataTwin) continue;
    uint64_t first = sb.ChunkFirstBlock(chunk), count = sb.ChunkBlockCount(chunk);
    bool sb_twin = type == format::ChunkType::kMetadataTwin && pool_->TwinBlock(0) == first;
    if (sb_twin) {  // chunk 0's twin starts with the superblock copies
      out.push_back({.device_block = first,
                     .owner = format::kOwnerSuperblock,
                     .blocks = format::kFirstNodeBlock});
    }
    if (chunk == 0 || sb_twin) {  // after the superblock slots
      first += format::kFirstNodeBlock;
      count -= format::kFirstNodeBlock;
    }
    if (count > 0)
      out.push_back({.device_block = first, .owner = format::kOwnerMetadata, .blocks = count});
  }
  return out;
}

}  // namespace daxfs::fs
