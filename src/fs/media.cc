// Media failures (docs/media.md): classifying a failed device range by address, recording lost
// file ranges and bad device ranges in the poison tree (or, read-only, in memory for this mount),
// retiring bad space, the checks the data path makes when something is poisoned, and the list of
// everything known to be bad. Changes extent maps never; knows nothing of mappings or signals
// (the DAX layer hears of lost ranges through NoteLayoutChange).
#include <fmt/core.h>

#include <algorithm>
#include <limits>

#include "base/log.h"
#include "fs/fs_impl.h"
#include "fs/rmap.h"
#include "fs/refcount.h"

namespace daxfs {

const char* RangeKindName(RangeKind kind) {
  switch (kind) {
    case RangeKind::kSuperblock:
      return "superblock";
    case RangeKind::kMetadata:
      return "metadata";
    case RangeKind::kData:
      return "data";
    case RangeKind::kFree:
      return "free";
    case RangeKind::kOutside:
      return "outside";
  }
  return "unknown";
}

namespace fs {

using format::BadRecord;
using format::LostRecord;
using format::RmapRecord;

namespace {

constexpr uint64_t kB = format::kBlockSize;
constexpr uint64_t kNoEnd = std::numeric_limits<uint64_t>::max();

uint64_t SaturatingEnd(uint64_t first, uint64_t count) {
  return count > kNoEnd - first ? kNoEnd : first + count;
}

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
      ASSIGN_OR_RETURN(LostRecord r, format::DecodeLost(ino, k.w[2], c.value().data()));
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

// The runs of [first, end) not covered by `covered` (sorted runs, may overlap).
std::vector<space::Run> Gaps(uint64_t first, uint64_t end, const std::vector<space::Run>& covered) {
  std::vector<space::Run> out;
  uint64_t at = first;
  for (const space::Run& r : covered) {
    if (r.start + r.count <= at) continue;
    if (r.start >= end) break;
    if (r.start > at) out.push_back({at, r.start - at});
    at = std::max(at, r.start + r.count);
    if (at >= end) break;
  }
  if (at < end) out.push_back({at, end - at});
  return out;
}

// Sorted, merged union of runs.
std::vector<space::Run> Union(std::vector<space::Run> runs) {
  std::sort(runs.begin(), runs.end(), [](auto& a, auto& b) { return a.start < b.start; });
  std::vector<space::Run> out;
  for (const space::Run& r : runs) {
    if (r.count == 0) continue;
    if (!out.empty() && out.back().start + out.back().count >= r.start) {
      uint64_t end = std::max(out.back().start + out.back().count, r.start + r.count);
      out.back().count = end - out.back().start;
    } else {
      out.push_back(r);
    }
  }
  return out;
}

void AppendPiece(std::vector<RangePiece>* pieces, uint64_t offset, uint64_t length,
                 RangeKind kind) {
  if (length == 0) return;
  if (!pieces->empty() && pieces->back().kind == kind &&
      pieces->back().offset + pieces->back().length == offset) {
    pieces->back().length += length;
    return;
  }
  pieces->push_back({offset, length, kind});
}

bool IsMetadataKind(RangeKind k) {
  return k == RangeKind::kSuperblock || k == RangeKind::kMetadata;
}

}  // namespace

// ---- What the data path asks.

Result<std::vector<space::Run>> FsImpl::LostRuns(const ReadOp& op, Ino ino, uint64_t first_block,
                                                       uint64_t count) {
  uint64_t end = SaturatingEnd(first_block, count);
  ASSIGN_OR_RETURN(std::vector<LostRecord> losses,
                   CollectLosses(op.poison(), overlay_lost_, ino, first_block, end));
  std::vector<space::Run> runs;
  for (const LostRecord& r : losses) {
    uint64_t s = std::max(r.file_block, first_block), e = std::min(r.file_block + r.blocks, end);
    runs.push_back({s, e - s});
  }
  return Union(std::move(runs));
}

Status FsImpl::CheckNotLost(const ReadOp& op, Ino ino, uint64_t first_block, uint64_t count, const char* what) {
  uint64_t end = SaturatingEnd(first_block, count);
  ASSIGN_OR_RETURN(std::vector<LostRecord> losses,
                   CollectLosses(op.poison(), overlay_lost_, ino, first_block, end));
  if (losses.empty()) return Status::Ok();
  const LostRecord& r = losses.front();
  uint64_t b = std::max(r.file_block, first_block);
  return Status::IoError(fmt::format(
      "media error: {} of inode {} at file offset {}: the data is lost (bad media at device "
      "offset {})",
      what, ino, b * kB, (r.device_block + (b - r.file_block)) * kB));
}

Status FsImpl::CheckDeviceGood(Ino ino, uint64_t file_block, uint64_t device_block,
                                     uint64_t count, const char* what) {
  if (!device_->IsBad(device_block * kB, count * kB)) return Status::Ok();
  uint64_t i = 0;
  while (i + 1 < count && !device_->IsBad((device_block + i) * kB, kB)) ++i;
  return Status::IoError(
      fmt::format("media error: {} of inode {} at file offset {}: device offset {} is on bad media",
                  what, ino, (file_block + i) * kB, (device_block + i) * kB));
}

Status FsImpl::ForEachLostRange(const ReadOp& op, Ino ino, uint64_t first_block, uint64_t count,
                                      const std::function<void(uint64_t, uint64_t, uint64_t)>& fn) {
  if (!PoisonActive(op) || count == 0) return Status::Ok();
  uint64_t end = SaturatingEnd(first_block, count);
  ASSIGN_OR_RETURN(std::vector<LostRecord> losses,
                   CollectLosses(op.poison(), overlay_lost_, ino, first_block, end));
  for (const LostRecord& r : losses) {
    uint64_t s = std::max(r.file_block, first_block), e = std::min(r.file_block + r.blocks, end);
    fn(s, e - s, r.device_block + (s - r.file_block));
  }
  return Status::Ok();
}

// ---- What unmapping and freeing do when something is poisoned.

Status FsImpl::ForgetLosses(WriteOp& op, Ino ino, uint64_t first_block, uint64_t count) {
  uint64_t end = SaturatingEnd(first_block, count);
  std::erase_if(overlay_lost_, [&](const LostRecord& r) {
    return r.ino == ino && r.file_block >= first_block && r.file_block + r.blocks <= end;
  });
  if (op.poison() == nullptr || op.poison()->root() == 0) return Status::Ok();
  ASSIGN_OR_RETURN(std::vector<LostRecord> losses,
                   CollectLosses(op.poison(), {}, ino, first_block, end));
  uint8_t value[format::kPoisonValueSize];
  for (const LostRecord& r : losses) {
    RETURN_IF_ERROR(op.writer(FsTree::kPoison).Delete(LostKey(ino, r.file_block)));
    if (r.file_block < first_block) {  // the head stays lost
      format::EncodeLostValue(
          {.blocks = first_block - r.file_block, .device_block = r.device_block}, value);
      RETURN_IF_ERROR(op.writer(FsTree::kPoison).Insert(LostKey(ino, r.file_block), value));
    }
    uint64_t r_end = r.file_block + r.blocks;
    if (r_end > end) {  // and so does the tail
      format::EncodeLostValue(
          {.blocks = r_end - end, .device_block = r.device_block + (end - r.file_block)}, value);
      RETURN_IF_ERROR(op.writer(FsTree::kPoison).Insert(LostKey(ino, end), value));
    }
    uint64_t s = std::max(r.file_block, first_block), e = std::min(r_end, end);
    op.NoteLayoutChange(ino, s, e - s);
  }
  return Status::Ok();
}

Status FsImpl::ReleaseOrRetire(WriteOp& op, uint64_t device_block, uint64_t count) {
  uint64_t end = device_block + count;
  ASSIGN_OR_RETURN(std::vector<BadRecord> bad, BadRecords(op, device_block, end));
  uint64_t at = device_block;
  for (const BadRecord& r : bad) {
    uint64_t s = std::max(r.device_block, device_block),
             e = std::min(r.device_block + r.blocks, end);
    if (s > at) ReleaseData(op, at, s - at);
    if (op.rmap() != nullptr) RETURN_IF_ERROR(Rmap::Retire(op, s, e - s));  // never free again: its last owner is gone
    at = e;
  }
  if (at < end) ReleaseData(op, at, end - at);
  return Status::Ok();
}

Result<std::vector<BadRecord>> FsImpl::BadRecords(const ReadOp& op, uint64_t first, uint64_t end) {
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
    ASSIGN_OR_RETURN(BadRecord r, format::DecodeBad(k.w[1], k.w[2], c.value().data()));
    if (r.device_block + r.blocks > first) out.push_back(r);
  }
  return out;
}

Result<std::vector<RmapRecord>> FsImpl::RetiredRecords(const ReadOp& op, 
    const std::vector<RmapRecord>& file_owners) {
  ASSIGN_OR_RETURN(std::vector<BadRecord> bad, BadRecords(op, 0, kNoEnd));
  std::vector<RmapRecord> out;
  if (bad.empty()) return out;
  std::vector<space::Run> bad_runs, owned;
  for (const BadRecord& r : bad) bad_runs.push_back({r.device_block, r.blocks});
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

Status FsImpl::ExcludeBadFromDataSpace(const ReadOp& op) {
  ASSIGN_OR_RETURN(std::vector<BadRecord> bad, BadRecords(op, 0, kNoEnd));
  for (const BadRecord& r : bad) {
    for (uint64_t b = r.device_block; b < r.device_block + r.blocks;) {
      if (!data_.IsFree(b)) {
        ++b;
        continue;
      }
      uint64_t e = b + 1;
      while (e < r.device_block + r.blocks && data_.IsFree(e)) ++e;
      RETURN_IF_ERROR(data_.MarkUsed(b, e - b));
      b = e;
    }
  }
  return Status::Ok();
}

Result<uint64_t> FsImpl::PoisonWorkNodes(WriteOp& op, uint64_t extent_changes, uint64_t frees) {
  // Each extent change may trim one lost record (a delete and two inserts); each freed run may
  // retire bad pieces (a merge: two deletes and an insert per piece).
  ASSIGN_OR_RETURN(uint64_t poison,
                   WorstCaseNodes(op, op.poison(), 3 * extent_changes + 3, 2 * extent_changes + 2));
  ASSIGN_OR_RETURN(uint64_t rmap, WorstCaseNodes(op, op.rmap(), 3 * frees + 6, frees + 2));
  return poison + rmap;
}

// ---- Classification by address.

std::vector<RangePiece> FsImpl::ClassifyRangeNow(uint64_t offset, uint64_t length) {
  std::vector<RangePiece> pieces;
  format::Superblock sb = pool_->superblock();
  uint64_t end = SaturatingEnd(offset, length);
  uint64_t fs_end = sb.total_blocks() * kB;
  std::vector<int8_t> types(sb.chunk_count, -1);
  for (auto& [chunk, type] : pool_->Chunks()) types[chunk] = static_cast<int8_t>(type);
  uint64_t chunk_bytes = sb.chunk_size;
  for (uint64_t at = offset; at < end;) {
    if (at >= fs_end) {
      AppendPiece(&pieces, at, end - at, RangeKind::kOutside);
      break;
    }
    uint64_t chunk = at / chunk_bytes;
    uint64_t chunk_end = std::min({(chunk + 1) * chunk_bytes, fs_end, end});
    int8_t type = types[chunk];
    if (type == static_cast<int8_t>(format::ChunkType::kData)) {
      // Block by block: free or not (owned, retired or waiting to be freed).
      while (at < chunk_end) {
        uint64_t b = at / kB, next = std::min((b + 1) * kB, chunk_end);
        AppendPiece(&pieces, at, next - at, data_.IsFree(b) ? RangeKind::kFree : RangeKind::kData);
        at = next;
      }
      continue;
    }
    if (type == static_cast<int8_t>(format::ChunkType::kMetadata)) {
      uint64_t slots_end = format::kFirstNodeBlock * kB;
      if (at < slots_end) {
        uint64_t next = std::min(slots_end, chunk_end);
        AppendPiece(&pieces, at, next - at, RangeKind::kSuperblock);
        at = next;
      }
      AppendPiece(&pieces, at, chunk_end - at, RangeKind::kMetadata);
    } else {
      AppendPiece(&pieces, at, chunk_end - at, RangeKind::kFree);  // an unallocated chunk
    }
    at = chunk_end;
  }
  return pieces;
}

Result<std::vector<RangePiece>> FsImpl::ClassifyRange(uint64_t offset, uint64_t length) {
  if (length == 0) return Status::Invalid("classify: empty range");
  std::vector<RangePiece> pieces;
  RETURN_IF_ERROR(runner_.Read([&](const ReadOp& op) -> Status {
    pieces = ClassifyRangeNow(offset, length);
    return Status::Ok();
  }));
  return pieces;
}

// ---- Recording a failure.

struct FsImpl::FailurePlan {
  uint64_t first = 0, end = 0;  // device blocks, the failure widened to whole blocks
  uint32_t flags = 0;           // FailureFlags
  std::vector<RangePiece> pieces;
  std::vector<FileRangeLoss> owners;    // every file owner of the data pieces
  std::vector<LostRecord> new_lost;     // losses not known yet
  std::vector<BadRecord> new_bad;       // bad device ranges not known yet
  std::vector<space::Run> retire_free;  // free DATA blocks to take out of service
  std::vector<uint64_t>
      chunks_to_type;  // unallocated chunks hit: typed DATA to hold the retirement
  std::vector<space::Run> retire_chunk;  // the bad blocks in those chunks
  std::optional<RangePiece> metadata;    // the first metadata piece hit
  bool any_metadata() const { return metadata.has_value(); }
};

Status FsImpl::PlanFailure(const ReadOp& op, uint64_t offset, uint64_t length, FailurePlan* plan) {
  format::Superblock sb = pool_->superblock();
  plan->first = offset / kB;
  plan->end = (offset + length + kB - 1) / kB;
  plan->pieces = ClassifyRangeNow(plan->first * kB, (plan->end - plan->first) * kB);
  bool simulated = plan->flags & kFailureSimulated;
  // Metadata is found by address alone, before any tree is read: the bad bytes may be the very
  // nodes that would name the owners, and the filesystem shuts down without recording them.
  for (const RangePiece& p : plan->pieces) {
    if (IsMetadataKind(p.kind)) {
      plan->metadata = p;
      return Status::Ok();
    }
  }

  // Owners of the data pieces: the rmap, or a scan of every extent map without it.
  std::vector<RmapRecord> owners;
  std::vector<RmapRecord> scanned;
  bool scanned_done = false;
  for (const RangePiece& p : plan->pieces) {
    if (p.kind != RangeKind::kData) continue;
    uint64_t s = p.offset / kB, e = (p.offset + p.length) / kB;
    if (op.rmap() != nullptr) {
      Status bad;
      RETURN_IF_ERROR(
          op.rmap()->Overlaps(s, e, [&](const btree::Key& k, std::span<const uint8_t> v) {
            if (format::IsSpecialOwner(k.w[1])) return true;
            Result<RmapRecord> r = format::DecodeRmap(k.w[0], k.w[1], k.w[2], v.data());
            if (!r.ok()) {
              bad = r.status();
              return false;
            }
            owners.push_back(*r);
            return true;
          }));
      RETURN_IF_ERROR(bad);
    } else {
      if (!scanned_done) {
        RETURN_IF_ERROR(ScanFileOwners(op, &scanned));
        scanned_done = true;
      }
      for (const RmapRecord& r : scanned) {
        if (r.device_block < e && r.device_block + r.blocks > s) owners.push_back(r);
      }
    }
  }
  // Clip each owner to the failed blocks; note the gaps in what is already known lost.
  for (size_t i = 0; i < owners.size(); ++i) {
    const RmapRecord& r = owners[i];
    uint64_t s = std::max(r.device_block, plan->first);
    uint64_t e = std::min(r.device_block + r.blocks, plan->end);
    if (s >= e) continue;
    bool shared = false;
    for (size_t j = 0; j < owners.size() && !shared; ++j) {
      const RmapRecord& o = owners[j];
      shared = j != i && o.device_block < e && o.device_block + o.blocks > s;
    }
    if (!shared && op.refcount() != nullptr) {
      ASSIGN_OR_RETURN(shared, Refcount::AnyShared(op, s, e - s));
    }
    uint64_t fb = r.file_block + (s - r.device_block);
    Result<std::string> path = PathOf(op, r.owner);
    plan->owners.push_back({.ino = r.owner,
                            .path = path.ok() ? *path : "",
                            .file_offset = fb * kB,
                            .length = (e - s) * kB,
                            .device_offset = s * kB,
                            .shared = shared});
    ASSIGN_OR_RETURN(std::vector<LostRecord> known,
                     CollectLosses(op.poison(), overlay_lost_, r.owner, fb, fb + (e - s)));
    for (const LostRecord& n : plan->new_lost) {
      if (n.ino == r.owner) known.push_back(n);
    }
    std::vector<space::Run> covered;
    for (const LostRecord& k : known) covered.push_back({k.file_block, k.blocks});
    for (const space::Run& g : Gaps(fb, fb + (e - s), Union(std::move(covered)))) {
      plan->new_lost.push_back({.ino = r.owner,
                                .file_block = g.start,
                                .blocks = g.count,
                                .device_block = s + (g.start - fb)});
    }
  }
  // Bad device ranges (data and free pieces) not recorded yet, and the free space to retire.
  std::vector<space::Run> known_bad;
  {
    ASSIGN_OR_RETURN(std::vector<BadRecord> bad, BadRecords(op, plan->first, plan->end));
    for (const BadRecord& b : bad) known_bad.push_back({b.device_block, b.blocks});
    for (const space::Run& b : overlay_bad_) known_bad.push_back(b);
    known_bad = Union(std::move(known_bad));
  }
  std::vector<int8_t> types(sb.chunk_count, -1);
  for (auto& [chunk, type] : pool_->Chunks()) types[chunk] = static_cast<int8_t>(type);
  for (const RangePiece& p : plan->pieces) {
    if (p.kind != RangeKind::kData && p.kind != RangeKind::kFree) continue;
    uint64_t s = p.offset / kB, e = (p.offset + p.length) / kB;
    uint32_t flags = (p.kind == RangeKind::kFree ? format::kBadHitFree : 0) |
                     (simulated ? format::kBadSimulated : 0);
    for (const space::Run& g : Gaps(s, e, known_bad)) {
      plan->new_bad.push_back({.device_block = g.start, .blocks = g.count, .flags = flags});
    }
    if (p.kind != RangeKind::kFree) continue;
    for (uint64_t at = s; at < e;) {  // split by chunk: free DATA blocks or unallocated chunks
      uint64_t chunk = at / sb.chunk_blocks();
      uint64_t next = std::min(e, sb.ChunkFirstBlock(chunk) + sb.ChunkBlockCount(chunk));
      if (types[chunk] == -1) {
        if (plan->chunks_to_type.empty() || plan->chunks_to_type.back() != chunk) {
          plan->chunks_to_type.push_back(chunk);
        }
        plan->retire_chunk.push_back({at, next - at});
      } else {
        plan->retire_free.push_back({at, next - at});
      }
      at = next;
    }
  }
  return Status::Ok();
}

Status FsImpl::ApplyFailure(WriteOp& op, const FailurePlan& plan) {
  // Reserve: every record insert, the retirements' rmap merges, the chunk-table records.
  uint64_t inserts = plan.new_lost.size() + plan.new_bad.size();
  uint64_t retires = plan.retire_free.size() + plan.retire_chunk.size();
  ASSIGN_OR_RETURN(uint64_t poison_nodes, WorstCaseNodes(op, op.poison(), inserts, inserts));
  ASSIGN_OR_RETURN(uint64_t rmap_nodes, WorstCaseNodes(op, op.rmap(), 3 * retires, retires));
  RETURN_IF_ERROR(op.txn().EnsureNodes(poison_nodes + rmap_nodes + 8 * plan.chunks_to_type.size()));
  op.txn().AddRoCompat(format::feature::kRoCompatPoison);  // older builds: read-only from now on

  format::Superblock sb = pool_->superblock();
  for (uint64_t chunk : plan.chunks_to_type) {
    RETURN_IF_ERROR(op.txn().AllocateChunk(format::ChunkType::kData, chunk).status());
    data_.AddFree(sb.ChunkFirstBlock(chunk), sb.ChunkBlockCount(chunk));
  }
  for (const std::vector<space::Run>* runs : {&plan.retire_free, &plan.retire_chunk}) {
    for (const space::Run& r : *runs) {
      Status used = data_.MarkUsed(r.start, r.count);
      if (!used.ok()) {
        return Status::Corruption(fmt::format("retiring device blocks {}..{}: {}", r.start,
                                              r.start + r.count - 1, used.message()));
      }
      if (op.rmap() != nullptr) RETURN_IF_ERROR(Rmap::Retire(op, r.start, r.count));
    }
  }
  uint8_t value[format::kPoisonValueSize];
  for (const BadRecord& b : plan.new_bad) {
    format::EncodeBadValue(b, value);
    RETURN_IF_ERROR(op.writer(FsTree::kPoison).Insert(BadKey(b.device_block), value));
  }
  for (const LostRecord& l : plan.new_lost) {
    format::EncodeLostValue(l, value);
    RETURN_IF_ERROR(op.writer(FsTree::kPoison).Insert(LostKey(l.ino, l.file_block), value));
    op.NoteLayoutChange(l.ino, l.file_block, l.blocks);
  }
  return Status::Ok();
}

void FsImpl::KeepFailureInMemory(const ReadOp& op, const FailurePlan& plan) {
  LayoutNotes notes(runner_.observer());
  for (const LostRecord& l : plan.new_lost) {
    overlay_lost_.push_back(l);
    notes.Note(l.ino, l.file_block, l.blocks);
  }
  for (const BadRecord& b : plan.new_bad) overlay_bad_.push_back({b.device_block, b.blocks});
  overlay_bad_ = Union(std::move(overlay_bad_));
  for (const RangePiece& p : plan.pieces) {
    if (IsMetadataKind(p.kind)) overlay_metadata_.push_back(p);
  }
  Publish(op, notes);
}

namespace {

MediaFailureRecord Report(const std::vector<RangePiece>& pieces,
                          const std::vector<FileRangeLoss>& owners) {
  MediaFailureRecord rec;
  rec.pieces = pieces;
  rec.owners = owners;
  return rec;
}

std::string Describe(const MediaFailureRecord& rec, uint64_t offset, uint64_t length) {
  return fmt::format(
      "media failure at device offset {} (+{}): {} file owner(s), {} retired range(s)", offset,
      length, rec.owners.size(), rec.retired.size());
}

}  // namespace

Result<MediaFailureRecord> FsImpl::RecordMediaFailure(uint64_t offset, uint64_t length,
                                                      uint32_t flags) {
  if (length == 0) return Status::Invalid("media failure: empty range");
  uint64_t fs_bytes = pool_->superblock().total_blocks() * kB;
  if (offset >= fs_bytes) {
    return Status::Error(ENXIO, fmt::format("media failure at device offset {} is past the end of "
                                            "the filesystem ({} bytes)",
                                            offset, fs_bytes));
  }
  length = std::min(length, fs_bytes - offset);  // a crossing range is clipped
  if (flags & kFailureRemove) {  // the device is going away: nothing is corrupt, nothing recorded
    ASSIGN_OR_RETURN(std::vector<RangePiece> pieces, ClassifyRange(offset, length));
    MediaFailureRecord rec = Report(pieces, {});
    rec.recorded = false;
    rec.message = fmt::format(
        "device range at offset {} (+{}) is about to be removed: nothing "
        "recorded",
        offset, length);
    return rec;
  }
  bool writable = runner_.Exclusive([&] { return !runner_.read_only(); });
  // Start from a committed state: every block then is committed (never written in place), and a
  // failure of this operation aborts nothing but itself.
  if (writable) RETURN_IF_ERROR(Sync());

  MediaFailureRecord rec;
  bool handled = false;  // done in memory (read-only, or a metadata hit)
  FailurePlan plan;
  plan.flags = flags;
  RETURN_IF_ERROR(runner_.ReadForUpdate([&](const ReadOp& op) -> Status {
    Status planned = PlanFailure(op, offset, length, &plan);
    if (planned.code() == EIO || planned.IsCorruption()) {
      // The trees that name the owners are unreadable: that is a metadata failure too.
      handled = true;
      rec = Report(plan.pieces, {});
      rec.recorded = false;
      rec.metadata_hit = true;
      rec.message = "the metadata needed to record the failure cannot be read (" +
                    planned.message() + "): filesystem shut down read-only";
      runner_.ShutDown(Status::IoError(rec.message));
      return Status::Ok();
    }
    RETURN_IF_ERROR(planned);
    if (!runner_.read_only() && !plan.any_metadata()) return Status::Ok();
    handled = true;
    rec = Report(plan.pieces, plan.owners);
    rec.recorded = false;
    KeepFailureInMemory(op, plan);
    for (const space::Run& r : plan.retire_free)
      rec.retired.push_back({r.start * kB, r.count * kB});
    for (const space::Run& r : plan.retire_chunk)
      rec.retired.push_back({r.start * kB, r.count * kB});
    if (plan.any_metadata()) {
      rec.metadata_hit = true;
      rec.message = fmt::format(
          "media error in {} at device offset {} (chunk {}): filesystem shut down read-only",
          plan.metadata->kind == RangeKind::kSuperblock ? "the superblock" : "metadata",
          plan.metadata->offset, plan.metadata->offset / pool_->superblock().chunk_size);
      runner_.ShutDown(Status::IoError(rec.message));
    } else {
      rec.message = Describe(rec, offset, length) + " (read-only: kept in memory for this mount)";
    }
    return Status::Ok();
  }));
  if (handled) return rec;

  RETURN_IF_ERROR(runner_.Write([&](WriteOp& op) -> Status {
    plan = FailurePlan{.flags = flags};
    RETURN_IF_ERROR(PlanFailure(op, offset, length, &plan));
    if (plan.any_metadata()) {
      return Status::Busy("media failure: the metadata changed meanwhile; try again");
    }
    return ApplyFailure(op, plan);
  }));
  RETURN_IF_ERROR(Sync());
  rec = Report(plan.pieces, plan.owners);
  for (const space::Run& r : plan.retire_free) rec.retired.push_back({r.start * kB, r.count * kB});
  for (const space::Run& r : plan.retire_chunk) rec.retired.push_back({r.start * kB, r.count * kB});
  std::sort(rec.retired.begin(), rec.retired.end(),
            [](auto& a, auto& b) { return a.offset < b.offset; });
  rec.message = Describe(rec, offset, length);
  base::Log(base::LogLevel::kInfo, "{}", rec.message);
  return rec;
}

// ---- Everything known to be bad.

Result<MediaErrorList> FsImpl::MediaErrors() {
  MediaErrorList out;
  std::vector<space::Run> bad;  // device blocks
  Status read = runner_.Read([&](const ReadOp& op) -> Status {
    std::vector<LostRecord> lost = overlay_lost_;
    if (op.poison()->root() != 0) {
      btree::Cursor c(op.poison());
      for (Status s = c.SeekGE(LostKey(0, 0));; s = c.Next()) {
        RETURN_IF_ERROR(s);
        if (!c.Valid() || c.key().w[0] != format::kPoisonLost) break;
        ASSIGN_OR_RETURN(LostRecord r,
                         format::DecodeLost(c.key().w[1], c.key().w[2], c.value().data()));
        lost.push_back(r);
      }
    }
    std::sort(lost.begin(), lost.end(), [](auto& a, auto& b) {
      return std::tie(a.ino, a.file_block) < std::tie(b.ino, b.file_block);
    });
    for (const LostRecord& r : lost) {
      bool shared = false;
      if (op.refcount() != nullptr) {
        ASSIGN_OR_RETURN(shared, Refcount::AnyShared(op, r.device_block, r.blocks));
      }
      Result<std::string> path = PathOf(op, r.ino);
      out.lost.push_back({.ino = r.ino,
                          .path = path.ok() ? *path : "",
                          .file_offset = r.file_block * kB,
                          .length = r.blocks * kB,
                          .device_offset = r.device_block * kB,
                          .shared = shared});
      bad.push_back({r.device_block, r.blocks});
    }
    std::vector<RmapRecord> files;
    RETURN_IF_ERROR(ScanFileOwners(op, &files));
    ASSIGN_OR_RETURN(std::vector<RmapRecord> retired, RetiredRecords(op, files));
    for (const RmapRecord& r : retired) out.retired.push_back({r.device_block * kB, r.blocks * kB});
    ASSIGN_OR_RETURN(std::vector<BadRecord> recorded, BadRecords(op, 0, kNoEnd));
    for (const BadRecord& r : recorded) bad.push_back({r.device_block, r.blocks});
    for (const space::Run& r : overlay_bad_) bad.push_back(r);
    for (const RangePiece& p : overlay_metadata_) out.metadata_damage.push_back(p);
    return Status::Ok();
  });
  if (!read.ok()) {
    // With damaged metadata the trees may be unreadable: report what is known by address (the
    // metadata damage and the device's bad list) and say why the rest is missing.
    if (pool_->MetadataDamage().empty()) return read;
    out.lost.clear();
    out.retired.clear();
    out.incomplete = read.ToString();
  }
  for (const device::BadRange& r : pool_->MetadataDamage()) {
    uint64_t slots_end = format::kFirstNodeBlock * kB;
    if (r.offset < slots_end) {
      uint64_t n = std::min(r.length, slots_end - r.offset);
      out.metadata_damage.push_back({r.offset, n, RangeKind::kSuperblock});
      if (n < r.length)
        out.metadata_damage.push_back({slots_end, r.length - n, RangeKind::kMetadata});
    } else {
      out.metadata_damage.push_back({r.offset, r.length, RangeKind::kMetadata});
    }
  }
  std::sort(out.metadata_damage.begin(), out.metadata_damage.end(),
            [](auto& a, auto& b) { return a.offset < b.offset; });
  // Every bad range: the device's list, the recorded ones, the metadata hits (bytes, merged).
  std::vector<space::Run> bytes;
  for (const space::Run& r : bad) bytes.push_back({r.start * kB, r.count * kB});
  for (const device::BadRange& r : device_->BadRanges()) bytes.push_back({r.offset, r.length});
  for (const RangePiece& p : out.metadata_damage) bytes.push_back({p.offset, p.length});
  for (const space::Run& r : Union(std::move(bytes))) out.bad.push_back({r.start, r.count});
  return out;
}

}  // namespace fs
}  // namespace daxfs
