// Media failures (media_failures.h): classification by address, the failure plan, recording it
// (poison tree or in memory), and the list of everything known to be bad.
#include "fs/media_failures.h"

#include <fmt/core.h>

#include <algorithm>
#include <limits>

#include "base/log.h"
#include "device/device.h"
#include "fs/blocks.h"
#include "fs/data_space.h"
#include "fs/layouts.h"
#include "fs/metadata_repairs.h"
#include "fs/namespace.h"
#include "fs/node_budget.h"
#include "fs/op_runner.h"
#include "fs/owners.h"
#include "fs/poison.h"
#include "fs/refcount.h"
#include "fs/rmap.h"
#include "fs/runs.h"

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

// ---- What unmapping and freeing do when something is poisoned.

// ---- Classification by address.

std::vector<RangePiece> MediaFailures::ClassifyNow(uint64_t offset, uint64_t length) const {
  std::vector<RangePiece> pieces;
  format::Superblock sb = p_.pool->superblock();
  uint64_t end = SaturatingEnd(offset, length);
  uint64_t fs_end = sb.total_blocks() * kBlock;
  std::vector<int8_t> types(sb.chunk_count, -1);
  for (auto& [chunk, type] : p_.pool->Chunks()) types[chunk] = static_cast<int8_t>(type);
  uint64_t chunk_bytes = sb.chunk_size;
  const uint64_t sb_twin = p_.pool->TwinBlock(0) * kBlock;  // chunk 0's twin (0: none)
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
        uint64_t b = at / kBlock, next = std::min((b + 1) * kBlock, chunk_end);
        AppendPiece(&pieces, at, next - at,
                    p_.data->blocks().IsFree(b) ? RangeKind::kFree : RangeKind::kData);
        at = next;
      }
      continue;
    }
    if (type == static_cast<int8_t>(format::ChunkType::kMetadata) ||
        type == static_cast<int8_t>(format::ChunkType::kMetadataTwin)) {
      // Chunk 0 and its twin start with the superblock slots (and their copies).
      bool sb_home = chunk == 0 || (sb_twin != 0 && chunk * chunk_bytes == sb_twin);
      uint64_t slots_end = chunk * chunk_bytes + format::kFirstNodeBlock * kBlock;
      if (sb_home && at < slots_end) {
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

Result<std::vector<RangePiece>> MediaFailures::Classify(uint64_t offset, uint64_t length) {
  if (length == 0) return Status::Invalid("classify: empty range");
  std::vector<RangePiece> pieces;
  RETURN_IF_ERROR(p_.runner->Read([&](const ReadOp& op) -> Status {
    pieces = ClassifyNow(offset, length);
    return Status::Ok();
  }));
  return pieces;
}

// ---- Recording a failure.

struct MediaFailures::Plan {
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
  std::optional<RangePiece> metadata;    // the first metadata piece that shuts down
  std::string lost;                      // why (metadup: a node with no good copy)
  std::vector<RangePiece> repairable;    // metadup: metadata pieces whose nodes have a twin
  uint64_t nodes_hit = 0;                // ... the nodes in them, queued for repair
  uint64_t superblock_copies_hit = 0;    // ... and superblock copies (the other copy serves)
  bool any_metadata() const { return metadata.has_value(); }
};

Status MediaFailures::MakePlan(const ReadOp& op, uint64_t offset, uint64_t length,
                               Plan* plan) const {
  format::Superblock sb = p_.pool->superblock();
  plan->first = offset / kBlock;
  plan->end = (offset + length + kBlock - 1) / kBlock;
  plan->pieces = ClassifyNow(plan->first * kBlock, (plan->end - plan->first) * kBlock);
  bool simulated = plan->flags & kFailureSimulated;
  // Metadata is found by address alone, before any tree is read: the bad bytes may be the very
  // nodes that would name the owners. With twins every hit node with a good copy is queued for
  // repair (reads use the good copy from now on) and the rest of the failure is planned as
  // usual; without, or when a node lost both copies, the filesystem shuts down without recording
  // anything.
  const bool dup = p_.pool->metadata_dup();
  for (const RangePiece& p : plan->pieces) {
    if (!IsMetadataKind(p.kind)) continue;
    if (dup) {
      txn::MetadataFailure f = p_.pool->NoteMetadataFailure(p.offset, p.length);
      if (f.repairable()) {
        plan->repairable.push_back(p);
        plan->nodes_hit += f.nodes.size();
        plan->superblock_copies_hit += f.superblock_copies.size();
        continue;
      }
      plan->lost = f.lost[0];
    }
    plan->metadata = p;
    return Status::Ok();
  }

  // Owners of the data pieces: the rmap, or a scan of every extent map without it.
  std::vector<RmapRecord> owners;
  std::vector<RmapRecord> scanned;
  bool scanned_done = false;
  for (const RangePiece& p : plan->pieces) {
    if (p.kind != RangeKind::kData) continue;
    uint64_t s = p.offset / kBlock, e = (p.offset + p.length) / kBlock;
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
        RETURN_IF_ERROR(Owners::ScanFileOwners(op, &scanned));
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
    Result<std::string> path = p_.names->PathOf(op, r.owner);
    plan->owners.push_back({.ino = r.owner,
                            .path = path.ok() ? *path : "",
                            .file_offset = fb * kBlock,
                            .length = (e - s) * kBlock,
                            .device_offset = s * kBlock,
                            .shared = shared});
    ASSIGN_OR_RETURN(std::vector<LostRecord> known,
                     p_.poison->Losses(op, r.owner, fb, fb + (e - s)));
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
    ASSIGN_OR_RETURN(std::vector<BadRecord> bad, p_.poison->BadRecords(op, plan->first, plan->end));
    for (const BadRecord& b : bad) known_bad.push_back({b.device_block, b.blocks});
    for (const space::Run& b : p_.poison->kept_bad()) known_bad.push_back(b);
    known_bad = Union(std::move(known_bad));
  }
  std::vector<int8_t> types(sb.chunk_count, -1);
  for (auto& [chunk, type] : p_.pool->Chunks()) types[chunk] = static_cast<int8_t>(type);
  for (const RangePiece& p : plan->pieces) {
    if (p.kind != RangeKind::kData && p.kind != RangeKind::kFree) continue;
    uint64_t s = p.offset / kBlock, e = (p.offset + p.length) / kBlock;
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

Status MediaFailures::Apply(WriteOp& op, const Plan& plan) {
  // Reserve: every record insert, the retirements' rmap merges, the chunk-table records.
  uint64_t inserts = plan.new_lost.size() + plan.new_bad.size();
  uint64_t retires = plan.retire_free.size() + plan.retire_chunk.size();
  ASSIGN_OR_RETURN(uint64_t poison_nodes,
                   p_.budget->WorstCaseNodes(op, op.poison(), inserts, inserts));
  ASSIGN_OR_RETURN(uint64_t rmap_nodes,
                   p_.budget->WorstCaseNodes(op, op.rmap(), 3 * retires, retires));
  RETURN_IF_ERROR(op.txn().EnsureNodes(poison_nodes + rmap_nodes + 8 * plan.chunks_to_type.size()));
  op.txn().AddRoCompat(format::feature::kRoCompatPoison);  // older builds: read-only from now on

  format::Superblock sb = p_.pool->superblock();
  for (uint64_t chunk : plan.chunks_to_type) {
    RETURN_IF_ERROR(op.txn().AllocateChunk(format::ChunkType::kData, chunk).status());
    p_.data->AddFree(sb.ChunkFirstBlock(chunk), sb.ChunkBlockCount(chunk));
  }
  for (const std::vector<space::Run>* runs : {&plan.retire_free, &plan.retire_chunk}) {
    for (const space::Run& r : *runs) {
      Status used = p_.data->MarkUsed(r.start, r.count);
      if (!used.ok()) {
        return Status::Corruption(fmt::format("retiring device blocks {}..{}: {}", r.start,
                                              r.start + r.count - 1, used.message()));
      }
      if (op.rmap() != nullptr) RETURN_IF_ERROR(Rmap::Retire(op, r.start, r.count));
    }
  }
  for (const BadRecord& b : plan.new_bad) RETURN_IF_ERROR(PoisonIndex::RecordBad(op, b));
  for (const LostRecord& l : plan.new_lost) RETURN_IF_ERROR(PoisonIndex::RecordLost(op, l));
  return Status::Ok();
}

void MediaFailures::KeepInMemory(const ReadOp& op, const Plan& plan) {
  LayoutNotes notes(p_.runner->observer());
  for (const LostRecord& l : plan.new_lost) {
    p_.poison->KeepLost(l);
    notes.Note(l.ino, l.file_block, l.blocks);
  }
  std::vector<space::Run> bad;
  for (const BadRecord& b : plan.new_bad) bad.push_back({b.device_block, b.blocks});
  p_.poison->KeepBad(bad);
  for (const RangePiece& p : plan.pieces) {
    if (IsMetadataKind(p.kind)) p_.poison->KeepMetadataHit(p);
  }
  p_.layouts->Publish(op, notes);
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

Result<DeviceRange> CheckFailedRange(const device::Device& device, uint64_t offset,
                                     uint64_t length) {
  if (length == 0) return Status::Invalid("media failure: the range is empty");
  uint64_t size = device.size();
  if (offset >= size) {
    return Status::Error(ENXIO, fmt::format("media failure at device offset {}: past the end of "
                                            "the device ({} bytes)",
                                            offset, size));
  }
  return DeviceRange{offset, std::min(length, size - offset)};  // a crossing range is clipped
}

Result<MediaFailureRecord> MediaFailures::Record(const DeviceRange& range, uint32_t flags,
                                                 FailurePlanObserver* observer) {
  const uint64_t offset = range.offset, length = range.length;
  if (flags & kFailureRemove) {  // the device is going away: nothing is corrupt, nothing recorded
    ASSIGN_OR_RETURN(std::vector<RangePiece> pieces, Classify(offset, length));
    MediaFailureRecord rec = Report(pieces, {});
    rec.recorded = false;
    rec.message = fmt::format(
        "device range at offset {} (+{}) is about to be removed: nothing "
        "recorded",
        offset, length);
    return rec;
  }
  bool writable = p_.runner->Exclusive([&] { return !p_.runner->read_only(); });
  // Start from a committed state: every block then is committed (never written in place), and a
  // failure of this operation aborts nothing but itself.
  if (writable) RETURN_IF_ERROR(p_.runner->Sync());

  MediaFailureRecord rec;
  const size_t repairs_mark = p_.runner->Exclusive([&] { return p_.repairs->reported(); });
  bool handled = false;  // done in memory (read-only, or a metadata hit)
  Plan plan;
  plan.flags = flags;
  // One plan per failure: made in a read operation and recorded by the write operation that
  // follows it under the same hold of the filesystem lock, so nothing changes in between.
  RETURN_IF_ERROR(p_.runner->PlanThenWrite(
      [&](const ReadOp& op) -> Result<bool> {
        Status planned = MakePlan(op, offset, length, &plan);
        if (planned.code() == EIO || planned.IsCorruption()) {
          // The trees that name the owners are unreadable: that is a metadata failure too.
          handled = true;
          rec = Report(plan.pieces, {});
          rec.recorded = false;
          rec.metadata_hit = true;
          rec.message = "the metadata needed to record the failure cannot be read (" +
                        planned.message() + "): filesystem shut down read-only";
          p_.runner->ShutDown(Status::IoError(rec.message));
          return false;
        }
        RETURN_IF_ERROR(planned);
        if (observer != nullptr && !plan.any_metadata()) observer->Planned(range, plan.owners);
        if (!p_.runner->read_only() && !plan.any_metadata()) return true;  // record it
        handled = true;
        rec = Report(plan.pieces, plan.owners);
        rec.recorded = false;
        KeepInMemory(op, plan);
        for (const space::Run& r : plan.retire_free)
          rec.retired.push_back({r.start * kBlock, r.count * kBlock});
        for (const space::Run& r : plan.retire_chunk)
          rec.retired.push_back({r.start * kBlock, r.count * kBlock});
        if (plan.any_metadata()) {
          rec.metadata_hit = true;
          rec.message = fmt::format(
              "media error in {} at device offset {} (chunk {}){}: filesystem shut down read-only",
              plan.metadata->kind == RangeKind::kSuperblock ? "the superblock" : "metadata",
              plan.metadata->offset, plan.metadata->offset / p_.pool->superblock().chunk_size,
              plan.lost.empty() ? "" : ": " + plan.lost);
          p_.runner->ShutDown(Status::IoError(rec.message));
        } else if (!plan.repairable.empty()) {
          rec.message = fmt::format(
              "media error in metadata at device offset {}: {} node(s) hit, each with a good "
              "twin: reads use the twin (read-only: repaired at the next read-write mount)",
              plan.repairable[0].offset, plan.nodes_hit);
        } else {
          rec.message =
              Describe(rec, offset, length) + " (read-only: kept in memory for this mount)";
        }
        return false;
      },
      [&](WriteOp& op) -> Status { return Apply(op, plan); }));
  if (handled) return rec;

  RETURN_IF_ERROR(p_.runner->Sync());
  rec = Report(plan.pieces, plan.owners);
  rec.repairs = p_.runner->Exclusive([&] { return p_.repairs->Since(repairs_mark); });
  for (const space::Run& r : plan.retire_free)
    rec.retired.push_back({r.start * kBlock, r.count * kBlock});
  for (const space::Run& r : plan.retire_chunk)
    rec.retired.push_back({r.start * kBlock, r.count * kBlock});
  std::sort(rec.retired.begin(), rec.retired.end(),
            [](auto& a, auto& b) { return a.offset < b.offset; });
  rec.message = Describe(rec, offset, length);
  if (!plan.repairable.empty()) {
    uint64_t moved = 0, retired = 0;
    for (const MetadataRepair& r : rec.repairs) {
      moved += r.kind == MetadataRepair::Kind::kRelocated;
      retired += r.kind == MetadataRepair::Kind::kRetired;
    }
    rec.message += fmt::format(
        "; metadata hit at device offset {}: repaired from the twin copies ({} node(s) moved, {} "
        "slot(s) retired{})",
        plan.repairable[0].offset, moved, retired,
        plan.superblock_copies_hit
            ? fmt::format(", {} superblock copy(ies) bad: the other copy serves",
                          plan.superblock_copies_hit)
            : "");
  }
  base::Log(base::LogLevel::kInfo, "{}", rec.message);
  return rec;
}

// ---- Everything known to be bad.

Result<MediaErrorList> MediaFailures::List() {
  MediaErrorList out;
  std::vector<space::Run> bad;  // device blocks
  Status read = p_.runner->Read([&](const ReadOp& op) -> Status {
    ASSIGN_OR_RETURN(std::vector<LostRecord> lost, p_.poison->AllLosses(op));
    for (const LostRecord& r : lost) {
      bool shared = false;
      if (op.refcount() != nullptr) {
        ASSIGN_OR_RETURN(shared, Refcount::AnyShared(op, r.device_block, r.blocks));
      }
      Result<std::string> path = p_.names->PathOf(op, r.ino);
      out.lost.push_back({.ino = r.ino,
                          .path = path.ok() ? *path : "",
                          .file_offset = r.file_block * kBlock,
                          .length = r.blocks * kBlock,
                          .device_offset = r.device_block * kBlock,
                          .shared = shared});
      bad.push_back({r.device_block, r.blocks});
    }
    std::vector<RmapRecord> files;
    RETURN_IF_ERROR(Owners::ScanFileOwners(op, &files));
    ASSIGN_OR_RETURN(std::vector<RmapRecord> retired, p_.poison->RetiredRecords(op, files));
    for (const RmapRecord& r : retired)
      out.retired.push_back({r.device_block * kBlock, r.blocks * kBlock});
    ASSIGN_OR_RETURN(std::vector<BadRecord> recorded, p_.poison->BadRecords(op, 0, kNoEnd));
    for (const BadRecord& r : recorded) {
      bad.push_back({r.device_block, r.blocks});
      if (r.flags & format::kBadMetadata)
        out.retired_metadata.push_back({r.device_block * kBlock, r.blocks * kBlock});
    }
    for (const space::Run& r : p_.poison->kept_bad()) bad.push_back(r);
    for (const RangePiece& p : p_.poison->kept_metadata_hits()) out.metadata_damage.push_back(p);
    return Status::Ok();
  });
  if (!read.ok()) {
    // With damaged metadata the trees may be unreadable: report what is known by address (the
    // metadata damage and the device's bad list) and say why the rest is missing.
    if (p_.pool->MetadataDamage().empty()) return read;
    out.lost.clear();
    out.retired.clear();
    out.retired_metadata.clear();
    out.incomplete = read.ToString();
  }
  for (const device::BadRange& r : p_.pool->MetadataDamage()) {
    uint64_t slots_end = format::kFirstNodeBlock * kBlock;
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
  for (const space::Run& r : bad) bytes.push_back({r.start * kBlock, r.count * kBlock});
  for (const device::BadRange& r : p_.device->BadRanges()) bytes.push_back({r.offset, r.length});
  for (const RangePiece& p : out.metadata_damage) bytes.push_back({p.offset, p.length});
  for (const space::Run& r : Union(std::move(bytes))) out.bad.push_back({r.start, r.count});
  return out;
}

}  // namespace fs
}  // namespace daxfs
