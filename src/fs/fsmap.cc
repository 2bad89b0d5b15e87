// GETFSMAP queries (who owns device range [a, b)?) from the reverse map, or, without it, from a
// scan of every extent map; owner paths for display; and what the reverse maps must hold,
// computed from the extent maps and the chunk table (shared with the checker and the repair).
// Reads only; never changes a tree. Knows nothing of the CLI.
//
// Semantics (docs/reflink.md, ioctl_getfsmap(2)):
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
#include <fmt/core.h>

#include <algorithm>
#include <limits>
#include <tuple>

#include "fs/blocks.h"
#include "fs/fs_impl.h"
#include "fs/inodes.h"
#include "fs/rmap.h"
#include "fs/refcount.h"

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

struct FsImpl::FsmapQuery {
  uint64_t first = 0;  // device blocks [first, end)
  uint64_t end = 0;
  std::optional<FsmapKey> after;
  size_t max = 0;  // 0: all

  bool Overlaps(const RmapRecord& r) const {
    return first < end && r.device_block < end && End(r) > first;
  }

  // `r` (which overlaps the query) as a GETFSMAP record trimmed to the query range.
  FsmapRecord Trimmed(const RmapRecord& r) const {
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

  // Cuts a sorted answer to the page size and marks the last record of the whole query.
  void Finish(std::vector<FsmapRecord>* records) const {
    if (max != 0 && records->size() > max) {
      records->resize(max);
    } else if (!records->empty()) {
      records->back().flags |= kFsmapLast;
    }
  }
};

Result<FsImpl::FsmapQuery> FsImpl::MakeFsmapQuery(uint64_t start, uint64_t end,
                                                  const std::optional<FsmapKey>& after,
                                                  size_t max) const {
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

Result<std::vector<FsmapRecord>> FsImpl::Fsmap(uint64_t start, uint64_t end,
                                               const std::optional<FsmapKey>& after, size_t max) {
  ASSIGN_OR_RETURN(FsmapQuery q, MakeFsmapQuery(start, end, after, max));
  std::vector<FsmapRecord> out;
  RETURN_IF_ERROR(runner_.Read([&](const ReadOp& op) -> Status {
    ASSIGN_OR_RETURN(out, has_rmap_ ? FsmapFromRmap(op, q) : FsmapFromScan(op, q));
    return Status::Ok();
  }));
  return out;
}

Result<std::vector<FsmapRecord>> FsImpl::FsmapByScan(uint64_t start, uint64_t end,
                                                     const std::optional<FsmapKey>& after,
                                                     size_t max) {
  ASSIGN_OR_RETURN(FsmapQuery q, MakeFsmapQuery(start, end, after, max));
  std::vector<FsmapRecord> out;
  RETURN_IF_ERROR(runner_.Read([&](const ReadOp& op) -> Status {
    ASSIGN_OR_RETURN(out, FsmapFromScan(op, q));
    return Status::Ok();
  }));
  return out;
}

// ---- With the reverse map: one overlap query, O(log n + k).
//
// Let lo = max(query start, resume block). A record starting at or before lo may be trimmed to
// start at lo, which can reorder it among the others starting there; every record starting after
// lo keeps its key, so those arrive from the tree already in answer order, and after all the
// former. So: gather and sort the few records overlapping block lo, then take the rest in tree
// order and stop as soon as one more record than the page holds is known.
Result<std::vector<FsmapRecord>> FsImpl::FsmapFromRmap(const ReadOp& op, const FsmapQuery& q) {
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
      ASSIGN_OR_RETURN(bool shared, Refcount::AnyShared(op, rec.physical / kBlock, rec.length / kBlock));
      if (shared) rec.flags |= kFsmapShared;
    }
  }
  return head;
}

// ---- Without the reverse map: the baseline. Every extent of every file, plus the special
// owners the chunk table implies, filtered, trimmed, flagged and sorted. O(all extents).
Result<std::vector<FsmapRecord>> FsImpl::FsmapFromScan(const ReadOp& op, const FsmapQuery& q) {
  std::vector<RmapRecord> all;
  RETURN_IF_ERROR(ScanFileOwners(op, &all));
  ASSIGN_OR_RETURN(std::vector<RmapRecord> retired, poison_.RetiredRecords(op, all));  // owner `bad`
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

Status FsImpl::ScanFileOwners(const ReadOp& op, std::vector<RmapRecord>* out) {
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
std::vector<RmapRecord> FsImpl::SpecialOwnerRecords() const {
  format::Superblock sb = pool_->superblock();
  std::vector<RmapRecord> out;
  out.push_back(
      {.device_block = 0, .owner = format::kOwnerSuperblock, .blocks = format::kFirstNodeBlock});
  for (auto& [chunk, type] : pool_->Chunks()) {
    if (type != format::ChunkType::kMetadata) continue;
    uint64_t first = sb.ChunkFirstBlock(chunk), count = sb.ChunkBlockCount(chunk);
    if (chunk == 0) {  // after the superblock slots
      first = format::kFirstNodeBlock;
      count -= format::kFirstNodeBlock;
    }
    if (count > 0)
      out.push_back({.device_block = first, .owner = format::kOwnerMetadata, .blocks = count});
  }
  return out;
}

// ---- Paths, for display.
//
// A directory's path comes from its parent pointers, looking its name up in each parent (a scan
// of that directory's entries). A file has no parent pointer: the whole dirent tree is scanned
// for an entry naming it (O(entries in the filesystem)); with several hard links the first entry
// in (directory, slot) order wins.

namespace {

// The name under which `dir` holds `ino`, or nullopt.
Result<std::optional<std::string>> NameIn(const btree::BTree* dirents, Ino dir, Ino ino) {
  btree::Cursor c(dirents);
  for (Status s = c.SeekGE(btree::Key{{dir, 0}});; s = c.Next()) {
    RETURN_IF_ERROR(s);
    if (!c.Valid() || c.key().w[0] != dir) break;
    ASSIGN_OR_RETURN(format::Dirent e, format::DecodeDirent(dir, c.key().w[1], c.value().data()));
    if (e.ino == ino) return std::optional<std::string>(std::move(e.name));
  }
  return std::optional<std::string>();
}

// Some entry naming `ino`: (its directory, its name), or nullopt.
Result<std::optional<std::pair<Ino, std::string>>> AnyEntryNaming(const btree::BTree* dirents, Ino ino) {
  btree::Cursor c(dirents);
  for (Status s = c.SeekFirst();; s = c.Next()) {
    RETURN_IF_ERROR(s);
    if (!c.Valid()) break;
    ASSIGN_OR_RETURN(format::Dirent e,
                     format::DecodeDirent(c.key().w[0], c.key().w[1], c.value().data()));
    if (e.ino == ino) return std::optional<std::pair<Ino, std::string>>({c.key().w[0], e.name});
  }
  return std::optional<std::pair<Ino, std::string>>();
}

}  // namespace

Result<std::string> FsImpl::PathOf(Ino ino) {
  std::string path;
  RETURN_IF_ERROR(runner_.Read([&](const ReadOp& op) -> Status {
    ASSIGN_OR_RETURN(path, PathOf(op, ino));
    return Status::Ok();
  }));
  return path;
}

Result<std::string> FsImpl::PathOf(const ReadOp& op, Ino ino) {
  ASSIGN_OR_RETURN(format::Inode inode, Inodes::Get(op, ino));
  std::vector<std::string> names;  // leaf first
  Ino current = ino;               // a directory whose name is still to be found
  if (inode.type != format::FileType::kDirectory) {
    ASSIGN_OR_RETURN(auto entry, AnyEntryNaming(op.dirents(), ino));
    if (!entry) return Status::NotFound(fmt::format("no directory entry names inode {}", ino));
    names.push_back(std::move(entry->second));
    current = entry->first;
  }
  for (size_t depth = 0; current != format::kRootIno; ++depth) {
    if (depth > format::kMaxPathLen) {
      return Status::Corruption(
          fmt::format("inode {}: its parent chain does not reach the root", ino));
    }
    ASSIGN_OR_RETURN(format::Inode dir, Inodes::Get(op, current));
    if (dir.type != format::FileType::kDirectory) {
      return Status::Corruption(
          fmt::format("inode {} holds entries but is not a directory", current));
    }
    ASSIGN_OR_RETURN(std::optional<std::string> name, NameIn(op.dirents(), dir.parent, current));
    if (!name) {
      return Status::Corruption(fmt::format(
          "directory {} says its parent is {}, which has no entry naming it", current, dir.parent));
    }
    names.push_back(std::move(*name));
    current = dir.parent;
  }
  if (names.empty()) return std::string("/");
  std::string path;
  for (auto it = names.rbegin(); it != names.rend(); ++it) path += "/" + *it;
  return path;
}

}  // namespace daxfs::fs
