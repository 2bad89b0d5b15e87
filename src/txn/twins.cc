// Metadata twins (ro_compat metadup): the superblock copies at mount, reads that fall back to a
// node's twin, the repair queue and relocation, pairing chunks, adding twins to an existing
// pool, rebuilding twins and checking them. Part of the Pool (pool.cc has the rest); knows
// nothing about what any tree other than the chunk table means.
#include <fmt/core.h>

#include <algorithm>
#include <cstring>

#include "base/coding.h"
#include "base/log.h"
#include "format/btree_node.h"
#include "format/node.h"
#include "txn/pool.h"
#include "txn/pool_internal.h"

namespace daxfs::txn {

using format::ChunkType;
using format::kBlockSize;
using format::Superblock;
using format::TreeId;

const char* RepairKindName(RepairEvent::Kind kind) {
  switch (kind) {
    case RepairEvent::kRelocated:
      return "relocated";
    case RepairEvent::kRetired:
      return "retired";
    case RepairEvent::kLost:
      return "lost";
  }
  return "?";
}

// ---------------------------------------------------------------------------------------------
// The superblock copies at mount.

namespace internal {
namespace {

// One superblock copy, decoded and checked, at `block` holding slot `slot` (0 or 1).
Result<Superblock> DecodeCopy(device::Device* dev, uint64_t block, int slot) {
  if ((block + 1) * kBlockSize > dev->size()) {
    return Status::Corruption(
        fmt::format("superblock copy at block {} is beyond the device", block));
  }
  if (dev->IsBad(block * kBlockSize, kBlockSize)) {
    return Status::IoError(fmt::format("superblock copy at block {} is on bad media", block));
  }
  ASSIGN_OR_RETURN(Superblock sb, format::DecodeSuperblock(dev->At(block * kBlockSize), slot));
  RETURN_IF_ERROR(format::CheckGeometry(sb));
  return sb;
}

// A superblock copy found at device offset `offset` is chunk 0's twin only if its own twin table
// says so, and only if it describes a filesystem of `fs_size` bytes: the primary's, or when no
// primary is readable the whole device (an image stored as a file inside it is smaller).
bool IsTwinHome(const Superblock& sb, uint64_t offset, uint64_t fs_size) {
  return sb.metadup() && sb.chunk_size != 0 && offset % sb.chunk_size == 0 &&
         sb.TwinOf(0) == static_cast<int64_t>(offset / sb.chunk_size) && sb.device_size == fs_size;
}

uint64_t WholeDevice(device::Device* dev) { return dev->size() & ~uint64_t{kBlockSize - 1}; }

bool HasSuperblockMagic(device::Device* dev, uint64_t block) {
  if ((block + 1) * kBlockSize > dev->size() || dev->IsBad(block * kBlockSize, kBlockSize))
    return false;
  return base::DecodeU64(dev->At(block * kBlockSize) + format::kNodeHeaderSize) ==
         format::kSuperblockMagic;
}

// Every chunk start for any chunk size is a multiple of the smallest chunk size.
template <typename Fn>
void ForEachChunkStart(device::Device* dev, bool thorough, Fn fn) {
  // Chunk 0's twin is usually one of the first chunks (Format takes the lowest good one): try
  // those at every chunk size first, then, when asked, every possible chunk start.
  for (uint64_t size = format::kMinChunkSize; size <= format::kMaxChunkSize; size *= 2) {
    for (uint64_t c = 1; c <= 8 && c * size + 2 * kBlockSize <= dev->size(); ++c) {
      if (fn(c * size)) return;
    }
  }
  if (!thorough) return;
  for (uint64_t at = format::kMinChunkSize; at + 2 * kBlockSize <= dev->size();
       at += format::kMinChunkSize) {
    if (fn(at)) return;
  }
}

// Chunk 0's twin when neither slot is readable: scans chunk starts for a twin superblock that
// names its own chunk as chunk 0's twin. Returns the byte offset, or 0.
uint64_t FindTwinHome(device::Device* dev, bool thorough) {
  uint64_t found = 0;
  ForEachChunkStart(dev, thorough, [&](uint64_t at) {
    for (int slot = 0; slot < 2; ++slot) {
      uint64_t block = at / kBlockSize + slot;
      if (!HasSuperblockMagic(dev, block)) continue;
      Result<Superblock> sb = DecodeCopy(dev, block, slot);
      if (sb.ok() && IsTwinHome(*sb, at, WholeDevice(dev))) {
        found = at;
        return true;
      }
    }
    return false;
  });
  return found;
}

}  // namespace

Result<SuperblockChoice> ChooseSuperblock(device::Device* dev) {
  static const uint8_t kUnreadable[kBlockSize] = {};
  bool bad0 = dev->IsBad(0, kBlockSize), bad1 = dev->IsBad(kBlockSize, kBlockSize);
  int primary_slot = 0;
  Result<Superblock> primary = format::SelectSuperblock(
      bad0 ? kUnreadable : dev->At(0), bad1 ? kUnreadable : dev->At(kBlockSize), &primary_slot);
  // Candidates: (block, slot, decoded copy).
  struct Copy {
    uint64_t block;
    int slot;
    Result<Superblock> sb;
  };
  std::vector<Copy> copies;
  copies.push_back({0, 0, DecodeCopy(dev, 0, 0)});
  copies.push_back({1, 1, DecodeCopy(dev, 1, 1)});
  uint64_t home = 0;  // byte offset of chunk 0's twin
  if (primary.ok()) {
    if (primary->metadup()) home = static_cast<uint64_t>(primary->TwinOf(0)) * primary->chunk_size;
  } else {
    // Scan every chunk start only when an image was here (a slot has the magic or is on bad
    // media); otherwise (never formatted) just the likely places.
    bool thorough = bad0 || bad1 || HasSuperblockMagic(dev, 0) || HasSuperblockMagic(dev, 1);
    home = FindTwinHome(dev, thorough);
  }
  if (home != 0) {
    for (int slot = 0; slot < 2; ++slot) {
      uint64_t block = home / kBlockSize + slot;
      Result<Superblock> sb = DecodeCopy(dev, block, slot);
      if (sb.ok() &&
          (!IsTwinHome(*sb, home, primary.ok() ? primary->device_size : WholeDevice(dev)) ||
           (primary.ok() && sb->uuid != primary->uuid))) {
        sb = Status::Corruption(
            fmt::format("superblock twin at block {} belongs to another image", block));
      }
      copies.push_back({block, slot, std::move(sb)});
    }
  }
  const Copy* best = nullptr;
  for (const Copy& c : copies) {
    if (c.sb.ok() && (!best || c.sb->generation > best->sb->generation)) best = &c;
  }
  if (!best) {
    if (bad0 && bad1) {
      return Status::IoError(
          "media error: both superblock slots (device offsets 0 and 4096) are on bad media");
    }
    return primary.status();
  }
  SuperblockChoice choice{.sb = *best->sb, .slot = best->slot};
  if (choice.sb.metadup()) {
    // The other copy of the chosen slot must be byte-identical; if not (a crash between the two
    // copies, or a damaged one), the next commit rewrites it. Bad media is left alone.
    uint64_t twin_block =
        static_cast<uint64_t>(choice.sb.TwinOf(0)) * choice.sb.chunk_blocks() + best->slot;
    uint64_t other = best->block == twin_block ? static_cast<uint64_t>(best->slot) : twin_block;
    bool same = !dev->IsBad(other * kBlockSize, kBlockSize) &&
                std::memcmp(dev->At(other * kBlockSize), dev->At(best->block * kBlockSize),
                            kBlockSize) == 0;
    if (!same && !dev->IsBad(other * kBlockSize, kBlockSize)) {
      choice.stale_copy = other;
      choice.good_copy = best->block;
    }
  }
  return choice;
}

Status ClearStaleSuperblockCopies(device::Device* dev) {
  Status status;
  ForEachChunkStart(dev, /*thorough=*/true, [&](uint64_t at) {
    for (uint64_t block = at / kBlockSize; block < at / kBlockSize + 2; ++block) {
      if (!HasSuperblockMagic(dev, block)) continue;
      std::memset(dev->At(block * kBlockSize), 0, kBlockSize);
      status = dev->Flush(block * kBlockSize, kBlockSize);
      if (!status.ok()) return true;
    }
    return false;
  });
  return status;
}

}  // namespace internal

// ---------------------------------------------------------------------------------------------
// Where the twins are.

bool Pool::metadata_dup() const {
  std::lock_guard<std::mutex> g(state_mutex_);
  return sb_.metadup();
}

uint64_t Pool::TwinBlock(uint64_t block) const {
  uint64_t chunk = block / chunk_blocks_;
  if (chunk >= chunk_count_) return 0;
  int64_t twin = twin_chunk_[chunk].load(std::memory_order_relaxed);
  if (twin < 0) return 0;
  return static_cast<uint64_t>(twin) * chunk_blocks_ + (block - chunk * chunk_blocks_);
}

void Pool::SetTwinChunk(uint64_t primary, int64_t twin) {
  int64_t old = twin_chunk_[primary].load(std::memory_order_relaxed);
  if (old >= 0) primary_of_[old].store(-1, std::memory_order_relaxed);
  if (twin >= 0) primary_of_[twin].store(static_cast<int64_t>(primary), std::memory_order_relaxed);
  twin_chunk_[primary].store(twin, std::memory_order_relaxed);
}

std::optional<std::pair<uint64_t, bool>> Pool::SlotOf(uint64_t block) const {
  uint64_t chunk = block / chunk_blocks_;
  if (chunk >= chunk_count_) return std::nullopt;
  uint64_t index = block - chunk * chunk_blocks_;
  if (nodes_.IsMetadataChunk(chunk)) {
    if (chunk == 0 && index < format::kFirstNodeBlock) return std::nullopt;  // superblock slots
    return std::make_pair(block, false);
  }
  int64_t primary = primary_of_[chunk].load(std::memory_order_relaxed);
  if (primary < 0) return std::nullopt;
  if (primary == 0 && index < format::kFirstNodeBlock) return std::nullopt;  // their twins
  uint64_t slot = static_cast<uint64_t>(primary) * chunk_blocks_ + index;
  if (slot >= sb_.total_blocks()) return std::nullopt;  // past the end of a short last primary
  return std::make_pair(slot, true);
}

// ---------------------------------------------------------------------------------------------
// Reads that fall back to the twin, and the repair queue.

Status Pool::CheckCopy(uint64_t block, uint64_t own_blockno) const {
  if (device_->IsBad(block * kBlockSize, kBlockSize)) {
    return Status::IoError(
        fmt::format("block {} (device offset {}) is on bad media", block, block * kBlockSize));
  }
  return format::VerifyBlock(device_->At(block * kBlockSize), format::BlockType::kBTreeNode,
                             own_blockno);
}

Result<const uint8_t*> Pool::ReadTwin(uint64_t blockno, const Status& why) {
  uint64_t twin = TwinBlock(blockno);
  if (twin == 0) return why;
  // A twin is a byte-identical copy: the same header and own block number as the primary.
  Status twin_status = CheckCopy(twin, blockno);
  if (!twin_status.ok()) {
    int code = why.code() == EIO || twin_status.code() == EIO ? EIO : EUCLEAN;
    return Status::Error(
        code, fmt::format("metadata node {}: both copies are bad: primary (block {}): {}; "
                          "twin (block {}): {}",
                          blockno, blockno, why.message(), twin, twin_status.message()));
  }
  QueueRepair(blockno, /*primary_bad=*/true, /*twin_bad=*/false, why.message());
  return device_->At(twin * kBlockSize);
}

std::pair<Status, Status> Pool::ScrubNode(uint64_t slot) {
  Status primary = CheckCopy(slot, slot);
  uint64_t twin = TwinBlock(slot);
  Status copy = twin != 0 ? CheckCopy(twin, slot) : Status::Ok();
  if (twin != 0 && primary.ok() != copy.ok()) {
    QueueRepair(slot, !primary.ok(), !copy.ok(), (primary.ok() ? copy : primary).message());
  }
  return {primary, copy};
}

void Pool::QueueRepair(uint64_t blockno, bool primary_bad, bool twin_bad,
                       const std::string& reason) {
  std::lock_guard<std::mutex> g(repair_mutex_);
  PendingRepair& r = repairs_[blockno];
  if (r.reason.empty()) r.reason = reason;
  r.primary_bad |= primary_bad;
  r.twin_bad |= twin_bad;
  if (primary_bad && redirected_.insert(blockno).second)
    redirected_count_.store(redirected_.size());
  repairs_queued_.store(repairs_.size());
  repairs_dirty_.store(true);
}

void Pool::RecordEvent(RepairEvent event) {
  if (event.kind == RepairEvent::kLost) {
    base::Log(base::LogLevel::kError, "metadata node {} could not be repaired: {}", event.block,
              event.reason);
  }
  std::lock_guard<std::mutex> g(repair_mutex_);
  events_.push_back(std::move(event));
}

void Pool::AbsorbRepairs(WriteTxn* txn) {
  repairs_dirty_.store(false);
  std::vector<RepairEvent> retired;
  {
    std::lock_guard<std::mutex> g(repair_mutex_);
    for (auto it = repairs_.begin(); it != repairs_.end();) {
      uint64_t b = it->first;
      space::NodeState state = nodes_.State(b);
      if (state == space::NodeState::kNotMetadata) {
        it = repairs_.erase(it);
        continue;
      }
      nodes_.Retire(b).IgnoreError();  // now if free, else once released
      // A reachable node, or one that may be again (fresh, or released by the running
      // transaction, which may abort): relocated by Repair, or dropped after the commit.
      bool keep =
          state == space::NodeState::kUsed || state == space::NodeState::kFresh ||
          (state == space::NodeState::kDeferred && txn &&
           std::find(txn->deferred_.begin(), txn->deferred_.end(), b) != txn->deferred_.end());
      if (keep) {
        ++it;
        continue;
      }
      retired.push_back({.kind = RepairEvent::kRetired,
                         .block = b,
                         .twin_block = TwinBlock(b),
                         .primary_bad = it->second.primary_bad,
                         .twin_bad = it->second.twin_bad,
                         .reason = it->second.reason});
      it = repairs_.erase(it);
    }
    repairs_queued_.store(repairs_.size());
  }
  for (RepairEvent& event : retired) {
    if (txn) {
      txn->repairs_.push_back(std::move(event));
    } else {
      RecordEvent(std::move(event));
    }
  }
}

void Pool::QueueBadMediaAtMount() {
  for (const device::BadRange& r : device_->BadRanges()) {
    uint64_t end = std::min(r.offset + r.length, sb_.device_size);
    for (uint64_t block = r.offset / kBlockSize; block * kBlockSize < end; ++block) {
      std::optional<std::pair<uint64_t, bool>> slot = SlotOf(block);
      if (!slot) continue;
      auto [b, is_twin] = *slot;
      QueueRepair(b, !is_twin, is_twin,
                  fmt::format("{} copy at block {} (device offset {}) is on bad media",
                              is_twin ? "twin" : "primary", block, block * kBlockSize));
    }
  }
}

MetadataFailure Pool::NoteMetadataFailure(uint64_t offset, uint64_t length) {
  MetadataFailure out;
  const bool dup = metadata_dup();
  uint64_t end = std::min(offset + length, chunk_count_ * chunk_blocks_ * kBlockSize);
  uint64_t sb_twin = TwinBlock(0);  // block 0 of chunk 0's twin, 0 without twins
  for (uint64_t block = offset / kBlockSize; block * kBlockSize < end; ++block) {
    if (block < format::kFirstNodeBlock || (sb_twin && block >= sb_twin && block < sb_twin + 2)) {
      out.superblock_copies.push_back(block);
      uint64_t slot = block < format::kFirstNodeBlock ? block : block - sb_twin;
      uint64_t other = block < format::kFirstNodeBlock ? (sb_twin ? sb_twin + slot : 0) : slot;
      if (!dup || device_->IsBad(other * kBlockSize, kBlockSize)) {
        out.lost.push_back(
            dup ? fmt::format("superblock slot {}: both copies (blocks {} and {}) are on bad media",
                              slot, slot, sb_twin + slot)
                : fmt::format("superblock slot {} (block {}) has no second copy", slot, block));
      }
      continue;
    }
    std::optional<std::pair<uint64_t, bool>> hit = SlotOf(block);
    if (!hit) continue;
    auto [b, is_twin] = *hit;
    space::NodeState state = nodes_.State(b);
    std::string where = fmt::format("{} copy at block {} (device offset {}) is on bad media",
                                    is_twin ? "twin" : "primary", block, block * kBlockSize);
    if (state == space::NodeState::kFree || state == space::NodeState::kRetired) {
      out.free_slots.push_back(b);
      QueueRepair(b, !is_twin, is_twin, where);
      continue;
    }
    uint64_t twin = TwinBlock(b);
    if (!dup || twin == 0) {
      out.lost.push_back(
          fmt::format("metadata node {} (device offset {}) has no second copy", b, b * kBlockSize));
      continue;
    }
    uint64_t other = is_twin ? b : twin;
    if (device_->IsBad(other * kBlockSize, kBlockSize)) {
      out.lost.push_back(fmt::format(
          "metadata node {}: both copies (blocks {} and {}) are on bad media", b, b, twin));
      continue;
    }
    out.nodes.push_back(b);
    QueueRepair(b, !is_twin, is_twin, where);
  }
  return out;
}

size_t Pool::PendingRepairs() const { return repairs_queued_.load(); }

std::vector<std::pair<uint64_t, PendingRepair>> Pool::QueuedRepairs() const {
  std::lock_guard<std::mutex> g(repair_mutex_);
  return {repairs_.begin(), repairs_.end()};
}

std::vector<RepairEvent> Pool::TakeRepairEvents() {
  std::lock_guard<std::mutex> g(repair_mutex_);
  std::vector<RepairEvent> out;
  out.swap(events_);
  return out;
}

std::vector<uint64_t> Pool::RetiredNodes() {
  WriterGate::Scoped writer(writer_gate_);
  if (!read_only_) AbsorbRepairs(nullptr);
  return nodes_.RetiredBlocks();
}

Status Pool::RetireNodes(const std::vector<uint64_t>& blocks) {
  WriterGate::Scoped writer(writer_gate_);
  for (uint64_t b : blocks) {
    if (nodes_.State(b) == space::NodeState::kNotMetadata) {
      return Status::Invalid(fmt::format("block {} is not a node slot of a METADATA chunk", b));
    }
  }
  for (uint64_t b : blocks) {
    RETURN_IF_ERROR(nodes_.Retire(b));
    if (nodes_.State(b) == space::NodeState::kUsed) {
      QueueRepair(b, false, false, fmt::format("slot {} is retired", b));
    }
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Repair: relocating queued nodes in a write transaction.

Status WriteTxn::Repair() {
  if (done_) return Status::Invalid("transaction already finished");
  if (!failed_.ok()) return failed_;
  pool_->AbsorbRepairs(this);
  // Relocating reads the path to each node, which may queue more: a few rounds.
  for (int round = 0; round < 4; ++round) {
    std::vector<std::pair<uint64_t, PendingRepair>> todo;
    {
      std::lock_guard<std::mutex> g(pool_->repair_mutex_);
      for (auto& [b, why] : pool_->repairs_) {
        if (pool_->nodes_.State(b) == space::NodeState::kUsed) todo.emplace_back(b, why);
      }
    }
    if (todo.empty()) return Status::Ok();
    for (auto& [b, why] : todo) {
      RepairEvent event{.kind = RepairEvent::kLost,
                        .block = b,
                        .twin_block = pool_->TwinBlock(b),
                        .primary_bad = why.primary_bad,
                        .twin_bad = why.twin_bad,
                        .reason = why.reason};
      // Read through the pool, not the transaction: a lost node must not poison the commit.
      Result<const uint8_t*> node = pool_->ReadNode(b, true);
      std::string lost;
      if (!node.ok()) {
        lost = node.status().message();
      } else {
        format::BTreeNodeHeader h = format::DecodeBTreeNodeHeader(*node);
        event.tree = h.tree_id;
        event.level = h.level;
        if (h.tree_id == 0 || h.tree_id >= format::kMaxTrees ||
            sb_.trees[h.tree_id].key_words == 0) {
          lost = fmt::format("block {} names tree {}, which does not exist", b, h.tree_id);
        } else {
          btree::TreeSpec spec = pool_->SpecFor(static_cast<TreeId>(h.tree_id));
          btree::Key first;
          for (int w = 0; w < spec.key_words; ++w) {
            first.w[w] = base::DecodeU64(*node + format::kBTreeEntriesOffset + 8 * w);
          }
          ASSIGN_OR_RETURN(btree::BTree * tree, Tree(spec));
          // Growing metadata inserts into the chunk table: never in the middle of changing it.
          in_chunk_op_ = h.tree_id == static_cast<uint16_t>(TreeId::kChunks);
          Result<uint64_t> moved = tree->Relocate(b, h.level, first);
          in_chunk_op_ = false;
          if (!moved.ok()) {
            if (moved.status().code() == ENOSPC) return moved.status();
            return Fail(moved.status().WithContext(fmt::format("relocating metadata node {}", b)));
          }
          if (*moved == 0) {
            lost = fmt::format("node {} is not where its first key leads in {}", b,
                               internal::TreeName(h.tree_id));
          } else {
            event.kind = RepairEvent::kRelocated;
            event.new_block = *moved;
          }
        }
      }
      if (!lost.empty()) event.reason += "; not repaired: " + lost;
      {
        std::lock_guard<std::mutex> g(pool_->repair_mutex_);
        pool_->repairs_.erase(b);
        pool_->repairs_queued_.store(pool_->repairs_.size());
      }
      if (event.kind == RepairEvent::kRelocated) unqueued_.emplace_back(b, why);
      repairs_.push_back(std::move(event));
    }
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Pairing chunks.

namespace {

// Chunks without a record and without bad bytes: where a METADATA chunk or a twin may go.
bool UsableForMetadata(const std::vector<int8_t>& types, const Superblock& sb, device::Device* dev,
                       uint64_t chunk) {
  return types[chunk] == -1 &&
         !dev->IsBad(chunk * sb.chunk_size, sb.ChunkBlockCount(chunk) * kBlockSize);
}

// The lowest usable chunk other than `primary` that is at least as long as it, or -1.
int64_t FindTwinFor(const std::vector<int8_t>& types, const Superblock& sb, device::Device* dev,
                    uint64_t primary) {
  for (uint64_t c = 1; c < types.size(); ++c) {
    if (c != primary && UsableForMetadata(types, sb, dev, c) &&
        sb.ChunkBlockCount(c) >= sb.ChunkBlockCount(primary)) {
      return static_cast<int64_t>(c);
    }
  }
  return -1;
}

Status TwinTableFull() {
  return Status::NoSpace(fmt::format(
      "the superblock's twin table is full ({} pairs): no more metadata chunks can have twins",
      format::kMaxTwinPairs));
}

}  // namespace

Result<uint64_t> WriteTxn::AllocateMetadataPair(std::optional<uint64_t> which) {
  if (sb_.twins().size() >= format::kMaxTwinPairs) return TwinTableFull();
  uint64_t primary = 0, twin = 0;
  {
    std::lock_guard<std::mutex> g(pool_->state_mutex_);
    auto& types = pool_->chunk_types_;
    device::Device* dev = pool_->device_;
    if (which) {
      if (*which >= types.size()) return Status::Invalid(fmt::format("no chunk {}", *which));
      if (types[*which] != -1)
        return Status::Exists(fmt::format("chunk {} is already typed", *which));
      int64_t t = FindTwinFor(types, sb_, dev, *which);
      if (t < 0)
        return Status::NoSpace(fmt::format("no free chunk for the twin of chunk {}", *which));
      primary = *which;
      twin = static_cast<uint64_t>(t);
    } else {
      bool found = false;
      for (uint64_t c = 1; c < types.size() && !found; ++c) {
        if (!UsableForMetadata(types, sb_, dev, c)) continue;
        int64_t t = FindTwinFor(types, sb_, dev, c);
        if (t >= 0) {
          primary = c;
          twin = static_cast<uint64_t>(t);
          found = true;
        }
      }
      if (!found) {
        return Status::NoSpace("no two free chunks for a metadata chunk and its twin");
      }
    }
    types[primary] = static_cast<int8_t>(ChunkType::kMetadata);
    types[twin] = static_cast<int8_t>(ChunkType::kMetadataTwin);
  }
  format::TwinTable table = sb_.twins();
  table.push_back({static_cast<uint32_t>(primary), static_cast<uint32_t>(twin)});
  std::shared_ptr<const format::TwinTable> before = sb_.twin_table;
  sb_.SetTwins(std::move(table));
  pool_->SetTwinChunk(primary, static_cast<int64_t>(twin));
  auto undo = [&] {
    pool_->SetTwinChunk(primary, -1);
    sb_.twin_table = before;
    std::lock_guard<std::mutex> g(pool_->state_mutex_);
    pool_->chunk_types_[primary] = -1;
    pool_->chunk_types_[twin] = -1;
  };
  Status added = pool_->nodes_.AddChunk(primary);
  if (!added.ok()) {
    undo();
    return Fail(added);
  }
  Status recorded = AddChunkRecord(primary, ChunkType::kMetadata, static_cast<uint32_t>(twin));
  if (!recorded.ok()) {
    pool_->nodes_.RemoveChunk(primary).IgnoreError();
    undo();
    return recorded;
  }
  typed_chunks_.push_back({primary, ChunkType::kMetadata});
  typed_chunks_.push_back({twin, ChunkType::kMetadataTwin});
  paired_chunks_.push_back(primary);
  new_chunks_.push_back(primary);
  // The primary's record is in: from here a failure must abort the whole transaction.
  Status twin_recorded =
      AddChunkRecord(twin, ChunkType::kMetadataTwin, static_cast<uint32_t>(primary));
  if (!twin_recorded.ok()) return Fail(twin_recorded);
  return primary;
}

Status WriteTxn::PairChunk(uint64_t primary) {
  if (sb_.twins().size() >= format::kMaxTwinPairs) return TwinTableFull();
  uint64_t twin = 0;
  {
    std::lock_guard<std::mutex> g(pool_->state_mutex_);
    int64_t t = FindTwinFor(pool_->chunk_types_, sb_, pool_->device_, primary);
    if (t < 0)
      return Status::NoSpace(
          fmt::format("no free chunk for the twin of metadata chunk {}", primary));
    twin = static_cast<uint64_t>(t);
    pool_->chunk_types_[twin] = static_cast<int8_t>(ChunkType::kMetadataTwin);
  }
  typed_chunks_.push_back({twin, ChunkType::kMetadataTwin});
  paired_chunks_.push_back(primary);
  pool_->SetTwinChunk(primary, static_cast<int64_t>(twin));
  format::TwinTable table = sb_.twins();
  table.push_back({static_cast<uint32_t>(primary), static_cast<uint32_t>(twin)});
  sb_.SetTwins(std::move(table));
  RETURN_IF_ERROR(AddChunkRecord(twin, ChunkType::kMetadataTwin, static_cast<uint32_t>(primary)));
  ASSIGN_OR_RETURN(btree::BTree * chunks, Tree(ChunkTableSpec()));
  uint8_t value[format::kChunkValueSize];
  format::EncodeChunkRecord({.type = ChunkType::kMetadata, .partner = static_cast<uint32_t>(twin)},
                            value);
  in_chunk_op_ = true;
  Status updated = chunks->Update(btree::Key{{primary}}, value);
  in_chunk_op_ = false;
  return updated.WithContext(fmt::format("recording the twin of chunk {}", primary));
}

// Pairs chunk 0 first (its twin holds the superblock twins), then every other METADATA chunk;
// a chunk typed on the way (the chunk table grew) comes with its twin already.
Status WriteTxn::EnableTwins() {
  if (sb_.metadup()) return Status::Exists("metadata twins are on already");
  std::vector<uint64_t> unpaired;
  uint64_t usable = 0;
  {
    std::lock_guard<std::mutex> g(pool_->state_mutex_);
    for (uint64_t c = 0; c < pool_->chunk_types_.size(); ++c) {
      if (pool_->chunk_types_[c] == static_cast<int8_t>(ChunkType::kMetadata))
        unpaired.push_back(c);
      if (UsableForMetadata(pool_->chunk_types_, sb_, pool_->device_, c)) ++usable;
    }
  }
  if (unpaired.size() > format::kMaxTwinPairs) return TwinTableFull();
  if (usable < unpaired.size()) {
    return Status::NoSpace(
        fmt::format("metadata twins need {} free chunks without bad bytes, {} are free",
                    unpaired.size(), usable));
  }
  sb_.ro_compat |= format::feature::kRoCompatMetadup;
  for (uint64_t c : unpaired) RETURN_IF_ERROR(PairChunk(c));
  // Both twin superblock slots start invalid; the commit writes the current one.
  device::Device* dev = pool_->device_;
  uint64_t home = pool_->TwinBlock(0) * kBlockSize;
  std::memset(dev->At(home), 0, 2 * kBlockSize);
  RETURN_IF_ERROR(dev->Flush(home, 2 * kBlockSize));
  copy_all_to_twins_ = true;
  return Status::Ok();
}

// Commit, after sealing: every fresh node (and, when enabling, every reachable node) into its
// twin, flushed; the stale copy of the current superblock slot, if mount found one. The caller
// drains.
Status WriteTxn::CopyToTwins() {
  device::Device* dev = pool_->device_;
  std::vector<uint64_t> blocks = fresh_;
  if (copy_all_to_twins_) {
    for (uint16_t id = 1; id < format::kMaxTrees; ++id) {
      auto it = trees_.find(id);
      uint64_t root = it != trees_.end() ? it->second->root() : sb_.trees[id].root;
      if (root == 0) continue;
      btree::BTree tree(pool_->SpecFor(static_cast<TreeId>(id)), this, root);
      RETURN_IF_ERROR(tree.VisitNodes([&](uint64_t b, int) {
        if (!IsFresh(b)) blocks.push_back(b);
        return Status::Ok();
      }));
    }
    std::sort(blocks.begin(), blocks.end());
  }
  // Runs of consecutive blocks whose twins are consecutive too are copied in one go.
  for (size_t i = 0; i < blocks.size();) {
    uint64_t twin = pool_->TwinBlock(blocks[i]);
    if (twin == 0) {
      return Status::Corruption(fmt::format("metadata node {}: chunk {} has no twin", blocks[i],
                                            blocks[i] / pool_->chunk_blocks_));
    }
    size_t j = i;
    while (j + 1 < blocks.size() && blocks[j + 1] == blocks[j] + 1 &&
           pool_->TwinBlock(blocks[j + 1]) == twin + (j + 1 - i)) {
      ++j;
    }
    Status s =
        dev->CopyAndFlush(twin * kBlockSize, blocks[i] * kBlockSize, (j - i + 1) * kBlockSize);
    if (!s.ok()) return s.WithContext("writing node twins");
    i = j + 1;
  }
  if (pool_->stale_sb_copy_ != UINT64_MAX) {
    RETURN_IF_ERROR(dev->CopyAndFlush(pool_->stale_sb_copy_ * kBlockSize,
                                      pool_->good_sb_copy_ * kBlockSize, kBlockSize));
  }
  return Status::Ok();
}

Status Pool::EnableMetadataDup() {
  if (read_only_) return Status::ReadOnly("the filesystem is mounted read-only");
  if (metadata_dup()) return Status::Exists("metadata twins are on already");
  ASSIGN_OR_RETURN(auto txn, BeginWrite());
  Status enabled = txn->EnableTwins();
  if (!enabled.ok()) {
    txn->Abort();
    return enabled;
  }
  return txn->Commit();
}

// ---------------------------------------------------------------------------------------------
// Rebuild and check.

Result<TwinRebuildReport> Pool::RebuildTwins() {
  if (read_only_) return Status::ReadOnly("the filesystem is mounted read-only");
  if (!metadata_dup()) return Status::Invalid("this filesystem has no metadata twins");
  TwinRebuildReport report;
  {
    WriterGate::Scoped writer(writer_gate_);
    if (closed_) return Status::Invalid("the pool is closed");
    auto view = BeginRead();
    view->verify_all_ = true;
    for (uint16_t id = 1; id < format::kMaxTrees; ++id) {
      if (sb_.trees[id].root == 0) continue;
      btree::BTree tree(SpecFor(static_cast<TreeId>(id)), view.get(), sb_.trees[id].root);
      Status walked = tree.VisitNodes([&](uint64_t b, int) {
        ++report.nodes_checked;
        uint64_t twin = TwinBlock(b);
        Status primary = CheckCopy(b, b);
        Status copy = twin ? CheckCopy(twin, b) : Status::Corruption("no twin chunk");
        if (!primary.ok()) {
          if (copy.ok()) {
            QueueRepair(b, true, false, primary.message());
            report.relocated.push_back(
                fmt::format("node {}: primary bad ({}), moved", b, primary.message()));
          } else {
            report.lost.push_back(fmt::format("node {}: primary: {}; twin: {}", b,
                                              primary.message(), copy.message()));
          }
        } else if (twin == 0) {
          report.lost.push_back(fmt::format("node {}: chunk {} has no twin", b, b / chunk_blocks_));
        } else if (device_->IsBad(twin * kBlockSize, kBlockSize)) {
          QueueRepair(b, false, true, copy.message());
          report.relocated.push_back(
              fmt::format("node {}: twin at block {} on bad media, moved", b, twin));
        } else if (!copy.ok() || std::memcmp(device_->At(b * kBlockSize),
                                             device_->At(twin * kBlockSize), kBlockSize)) {
          std::memcpy(device_->At(twin * kBlockSize), device_->At(b * kBlockSize), kBlockSize);
          RETURN_IF_ERROR(device_->Flush(twin * kBlockSize, kBlockSize));
          report.rewritten.push_back(
              fmt::format("node {}: twin at block {} rewritten ({})", b, twin,
                          copy.ok() ? "it differed from the primary" : copy.message()));
        }
        return Status::Ok();
      });
      if (!walked.ok())
        report.lost.push_back(fmt::format("{}: {}", internal::TreeName(id), walked.message()));
    }
    // The current superblock slot: whichever copy is valid rewrites the other.
    uint64_t slot = static_cast<uint64_t>(slot_), twin = TwinBlock(slot);
    auto valid = [&](uint64_t block) {
      if (device_->IsBad(block * kBlockSize, kBlockSize)) return false;
      Result<Superblock> sb =
          format::DecodeSuperblock(device_->At(block * kBlockSize), static_cast<int>(slot));
      return sb.ok() && sb->generation == sb_.generation;
    };
    bool p = valid(slot), t = valid(twin);
    if ((p || t) &&
        std::memcmp(device_->At(slot * kBlockSize), device_->At(twin * kBlockSize), kBlockSize)) {
      uint64_t to = p ? twin : slot, from = p ? slot : twin;
      if (!device_->IsBad(to * kBlockSize, kBlockSize)) {
        std::memcpy(device_->At(to * kBlockSize), device_->At(from * kBlockSize), kBlockSize);
        RETURN_IF_ERROR(device_->Flush(to * kBlockSize, kBlockSize));
        report.superblock_rewritten = true;
        stale_sb_copy_ = UINT64_MAX;
      }
    }
    RETURN_IF_ERROR(device_->Drain());
  }
  if (PendingRepairs() > 0) {
    ASSIGN_OR_RETURN(auto txn, BeginWrite());
    RETURN_IF_ERROR(txn->Commit());
  }
  return report;
}

void Pool::CheckTwins(uint64_t b, CheckReport* report) const {
  ++report->twins_checked;
  uint64_t twin = TwinBlock(b);
  if (twin == 0) {
    report->problems.push_back(
        fmt::format("block {}: metadata chunk {} has no twin", b, b / chunk_blocks_));
    return;
  }
  Status primary = CheckCopy(b, b), copy = CheckCopy(twin, b);
  if (!primary.ok()) {
    report->problems.push_back(fmt::format(
        "block {}: primary copy is bad ({}); its twin at block {} {}", b, primary.message(), twin,
        copy.ok() ? "is good" : "is bad too: " + copy.message()));
  } else if (!copy.ok()) {
    report->problems.push_back(
        fmt::format("block {}: twin at block {} is bad: {}", b, twin, copy.message()));
  } else if (std::memcmp(device_->At(b * kBlockSize), device_->At(twin * kBlockSize), kBlockSize) !=
             0) {
    report->problems.push_back(
        fmt::format("block {}: twin at block {} differs from the primary", b, twin));
  }
}

void Pool::CheckSuperblockCopies(CheckReport* report) const {
  uint64_t slot = static_cast<uint64_t>(slot_), twin = TwinBlock(slot);
  auto state = [&](uint64_t block) -> std::string {
    if (device_->IsBad(block * kBlockSize, kBlockSize)) return "is on bad media";
    Result<Superblock> sb =
        format::DecodeSuperblock(device_->At(block * kBlockSize), static_cast<int>(slot));
    if (!sb.ok()) return "is invalid: " + sb.status().message();
    if (sb->generation != sb_.generation) return fmt::format("holds generation {}", sb->generation);
    return "";
  };
  std::string p = state(slot), t = state(twin);
  std::string problem;
  if (!p.empty()) {
    problem = fmt::format("superblock slot {}: the primary copy (block {}) {}", slot, slot, p);
  } else if (!t.empty()) {
    problem = fmt::format("superblock slot {}: the twin copy (block {}) {}", slot, twin, t);
  } else if (std::memcmp(device_->At(slot * kBlockSize), device_->At(twin * kBlockSize),
                         kBlockSize) != 0) {
    problem = fmt::format("superblock slot {}: the twin copy (block {}) differs from the primary",
                          slot, twin);
  }
  if (problem.empty()) return;
  if ((p.empty() && t == "is on bad media") || (t.empty() && p == "is on bad media")) {
    report->damage.push_back(problem + " (the other copy serves)");
    return;
  }
  if (stale_sb_copy_ != UINT64_MAX) {
    report->pending.push_back(problem +
                              " (a crash between the two copies; the next commit rewrites it)");
  } else {
    report->problems.push_back(problem);
  }
}

void Pool::CheckTwinChunks(const std::vector<int8_t>& on_media, const std::vector<int64_t>& partner,
                           CheckReport* report) const {
  auto problem = [&](std::string what) {
    report->problems.push_back("chunk table: " + std::move(what));
  };
  const auto kMeta = static_cast<int8_t>(ChunkType::kMetadata);
  const auto kTwin = static_cast<int8_t>(ChunkType::kMetadataTwin);
  if (!sb_.metadup()) {
    for (uint64_t c = 0; c < on_media.size(); ++c) {
      if (on_media[c] == kTwin)
        problem(fmt::format("chunk {} is METADATA_TWIN without the metadup feature", c));
      if (on_media[c] >= 0 && partner[c] != 0)
        problem(fmt::format("chunk {} names partner {} without metadup", c, partner[c]));
    }
    return;
  }
  std::vector<int64_t> twin_of(on_media.size(), -1), primary_of(on_media.size(), -1);
  for (const format::TwinPair& p : sb_.twins()) {
    twin_of[p.primary] = p.twin;
    primary_of[p.twin] = p.primary;
  }
  for (uint64_t c = 0; c < on_media.size(); ++c) {
    if (on_media[c] == kMeta) {
      if (twin_of[c] < 0)
        problem(fmt::format("METADATA chunk {} has no twin in the superblock", c));
      else if (partner[c] != twin_of[c])
        problem(fmt::format("chunk {} names twin {}, the superblock says {}", c, partner[c],
                            twin_of[c]));
    } else if (on_media[c] == kTwin) {
      if (primary_of[c] < 0)
        problem(fmt::format("METADATA_TWIN chunk {} is no chunk's twin in the superblock", c));
      else if (partner[c] != primary_of[c])
        problem(fmt::format("twin chunk {} names primary {}, the superblock says {}", c, partner[c],
                            primary_of[c]));
    } else if (twin_of[c] >= 0 || primary_of[c] >= 0) {
      problem(fmt::format("chunk {} is paired in the superblock but {}", c,
                          internal::ChunkTypeLabel(on_media[c])));
    }
  }
}

}  // namespace daxfs::txn
