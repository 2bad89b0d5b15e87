// Pool: format, mount, copy-on-write transactions and the consistency check over the trees.
// Knows the chunk table and the superblock; every other tree is opaque records to it. The
// metadata twins (second copies, repair) are in twins.cc.
#include "txn/pool.h"

#include <fmt/core.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstring>
#include <random>

#include "base/log.h"
#include "format/node.h"
#include "txn/pool_internal.h"

namespace daxfs::txn {

using format::ChunkType;
using format::kBlockSize;
using format::Superblock;
using format::TreeId;
using format::TreeRoot;

using internal::ChunkTypeLabel;
using internal::kNodeReserve;
using internal::NowNs;
using internal::ShapeOf;
using internal::TreeName;

namespace {

uint64_t PlaceholderEnd(const btree::Key& key, const uint8_t*) { return key.w[0] + 1; }

}  // namespace

namespace internal {

uint64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string TreeName(uint16_t id) {
  switch (static_cast<TreeId>(id)) {
    case TreeId::kChunks:
      return "chunk table";
    case TreeId::kScratch:
      return "scratch tree";
    default:
      return fmt::format("tree {}", id);
  }
}

std::string ChunkTypeLabel(int8_t type) {
  return type < 0 ? "unallocated" : format::ChunkTypeName(static_cast<ChunkType>(type));
}

TreeRoot ShapeOf(const btree::TreeSpec& spec) {
  return {.key_words = spec.key_words,
          .value_size = spec.value_size,
          .flags = static_cast<uint16_t>(spec.is_interval() ? format::kTreeInterval : 0)};
}

}  // namespace internal

btree::TreeSpec ChunkTableSpec() {
  return {.id = TreeId::kChunks, .name = "chunks", .key_words = 1,
          .value_size = format::kChunkValueSize};
}

btree::TreeSpec ScratchSpec() {
  return {.id = TreeId::kScratch, .name = "scratch", .key_words = 2, .value_size = 24};
}

uint64_t DefaultChunkSize(uint64_t device_size) {
  uint64_t target = std::bit_floor(std::max<uint64_t>(device_size / 16, 1));
  return std::clamp(target, format::kMinChunkSize, format::kDefaultChunkSize);
}

// ---------------------------------------------------------------------------------------------
// ReadTxn

ReadTxn::~ReadTxn() {
  if (pinned_) pool_->UnregisterReader(sb_->generation);
}

Result<const uint8_t*> ReadTxn::Read(uint64_t blockno) {
  return pool_->ReadNode(blockno, false, verify_all_);
}

Status ReadTxn::CheckShape(const btree::TreeSpec& spec) const {
  const TreeRoot& t = sb_->tree(spec.id);
  if (t.root != 0 && !(ShapeOf(spec).key_words == t.key_words &&
                       ShapeOf(spec).value_size == t.value_size && ShapeOf(spec).flags == t.flags)) {
    return Status::Invalid(fmt::format("{}: shape on media differs from the expected one", spec.name));
  }
  return Status::Ok();
}

Result<btree::BTree> ReadTxn::Tree(const btree::TreeSpec& spec) {
  RETURN_IF_ERROR(CheckShape(spec));
  return TreeOf(spec);
}

// ---------------------------------------------------------------------------------------------
// WriteTxn

WriteTxn::WriteTxn(Pool* pool) : pool_(pool) {
  std::lock_guard<std::mutex> g(pool_->state_mutex_);
  sb_ = pool_->sb_;
  generation_ = sb_.generation + 1;
}

WriteTxn::~WriteTxn() {
  if (!done_) Abort();
}

Status WriteTxn::Fail(Status s) {
  // Also from read operations running in parallel over this transaction's trees.
  std::lock_guard<std::mutex> g(fail_mu_);
  if (failed_.ok()) failed_ = s;
  return s;
}

Result<btree::BTree*> WriteTxn::Tree(const btree::TreeSpec& spec) {
  if (done_) return Status::Invalid("transaction already finished");
  uint16_t id = static_cast<uint16_t>(spec.id);
  if (id == 0 || id >= format::kMaxTrees) return Status::Invalid(fmt::format("tree id {} out of range", id));
  auto it = trees_.find(id);
  if (it != trees_.end()) return it->second.get();
  const TreeRoot& t = sb_.trees[id];
  TreeRoot want = ShapeOf(spec);
  if (t.key_words != 0 &&
      (t.key_words != want.key_words || t.value_size != want.value_size || t.flags != want.flags)) {
    return Status::Invalid(fmt::format(
        "{}: on media it has {} key words and {}-byte values, this build expects {} and {}",
        TreeName(id), t.key_words, t.value_size, want.key_words, want.value_size));
  }
  auto tree = std::make_unique<btree::BTree>(spec, this, t.root);
  btree::BTree* raw = tree.get();
  trees_.emplace(id, std::move(tree));
  return raw;
}

Result<const uint8_t*> WriteTxn::Read(uint64_t blockno) {
  Result<const uint8_t*> r = pool_->ReadNode(blockno, true);
  if (!r.ok()) Fail(r.status()).IgnoreError();
  return r;
}

bool WriteTxn::IsFresh(uint64_t blockno) const { return pool_->nodes_.IsFresh(blockno); }

uint8_t* WriteTxn::Writable(uint64_t blockno) {
  return IsFresh(blockno) ? pool_->device_->At(blockno * kBlockSize) : nullptr;
}

Result<uint64_t> WriteTxn::Allocate() {
  if (!failed_.ok()) return failed_;
  if (pool_->repairs_dirty_.load(std::memory_order_relaxed)) pool_->AbsorbRepairs(this);
  space::NodeAllocator& nodes = pool_->nodes_;
  if (!in_chunk_op_ && nodes.Counts().free < kNodeReserve) {
    nodes.ReleaseDeferred(pool_->SafeGeneration());
    if (nodes.Counts().free < kNodeReserve) {
      Status grown = GrowMetadata();
      if (!grown.ok() && nodes.Counts().free == 0) return grown;
    }
  }
  Result<uint64_t> b = nodes.Allocate();
  if (!b.ok()) {
    return Status::NoSpace(fmt::format("no space for metadata nodes ({})", b.status().message()));
  }
  fresh_.push_back(*b);
  return *b;
}

void WriteTxn::Release(uint64_t blockno) {
  space::NodeAllocator& nodes = pool_->nodes_;
  if (nodes.IsFresh(blockno)) {
    nodes.FreeFresh(blockno);
  } else {
    nodes.Defer(blockno, generation_);
    deferred_.push_back(blockno);
  }
}

Status WriteTxn::GrowMetadata() {
  ASSIGN_OR_RETURN(uint64_t chunk, AllocateChunk(ChunkType::kMetadata));
  (void)chunk;
  return Status::Ok();
}

Result<uint64_t> WriteTxn::AllocateChunk(ChunkType type, std::optional<uint64_t> which) {
  if (!failed_.ok()) return failed_;
  if (type == ChunkType::kMetadataTwin) {
    return Status::Invalid("a METADATA_TWIN chunk is typed only with its METADATA chunk");
  }
  if (type == ChunkType::kMetadata && sb_.metadup()) return AllocateMetadataPair(which);
  uint64_t chunk = 0;
  {
    std::lock_guard<std::mutex> g(pool_->state_mutex_);
    auto& types = pool_->chunk_types_;
    if (which) {
      if (*which >= types.size()) return Status::Invalid(fmt::format("no chunk {}", *which));
      if (types[*which] != -1) return Status::Exists(fmt::format("chunk {} is already typed", *which));
      chunk = *which;
    } else {
      // Nodes never go to a chunk with bad bytes (a DATA chunk may: its bad blocks are retired).
      auto usable = [&](size_t c) {
        if (types[c] != -1) return false;
        if (type != ChunkType::kMetadata) return true;
        return !pool_->device_->IsBad(c * pool_->sb_.chunk_size,
                                      pool_->sb_.ChunkBlockCount(c) * kBlockSize);
      };
      size_t c = 0;
      while (c < types.size() && !usable(c)) ++c;
      if (c == types.size()) return Status::NoSpace("every chunk is in use");
      chunk = c;
    }
    types[chunk] = static_cast<int8_t>(type);
  }
  auto untype = [&] {
    std::lock_guard<std::mutex> g(pool_->state_mutex_);
    pool_->chunk_types_[chunk] = -1;
  };
  if (type == ChunkType::kMetadata) {
    Status added = pool_->nodes_.AddChunk(chunk);
    if (!added.ok()) {
      untype();
      return Fail(added);
    }
  }
  Status recorded = AddChunkRecord(chunk, type);
  if (!recorded.ok()) {
    if (type == ChunkType::kMetadata) pool_->nodes_.RemoveChunk(chunk).IgnoreError();
    untype();
    return recorded;
  }
  typed_chunks_.push_back({chunk, type});
  if (type == ChunkType::kMetadata) new_chunks_.push_back(chunk);
  return chunk;
}

Status WriteTxn::EnsureNodes(uint64_t count) {
  if (!failed_.ok()) return failed_;
  space::NodeAllocator& nodes = pool_->nodes_;
  if (nodes.Counts().free < count + kNodeReserve) nodes.ReleaseDeferred(pool_->SafeGeneration());
  while (nodes.Counts().free < count + kNodeReserve) {
    Status grown = GrowMetadata();
    if (!grown.ok()) {
      return Status::NoSpace(fmt::format("need {} metadata nodes, {} free and no free chunk left",
                                         count, nodes.Counts().free));
    }
  }
  return Status::Ok();
}

uint64_t WriteTxn::free_nodes() const { return pool_->nodes_.Counts().free; }

Status WriteTxn::AddChunkRecord(uint64_t chunk, ChunkType type, uint32_t partner) {
  ASSIGN_OR_RETURN(btree::BTree * table, Tree(ChunkTableSpec()));
  uint8_t value[format::kChunkValueSize];
  format::EncodeChunkRecord({.type = type, .partner = partner}, value);
  in_chunk_op_ = true;
  Status s = table->Insert(btree::Key{{chunk}}, value);
  in_chunk_op_ = false;
  return s.WithContext(fmt::format("recording chunk {}", chunk));
}

Status WriteTxn::Commit() {
  if (done_) return Status::Invalid("transaction already finished");
  if (!failed_.ok()) return failed_;
  if (pool_->repairs_queued_.load(std::memory_order_relaxed) > 0) {
    Status repaired = Repair();  // ENOSPC leaves the rest queued for a later transaction
    if (!repaired.ok() && repaired.code() != ENOSPC) return Fail(repaired);
  }
  for (auto& [id, tree] : trees_) {
    TreeRoot& t = sb_.trees[id];
    int64_t records = static_cast<int64_t>(t.records) + tree->count_delta();
    if (records < 0) return Fail(Status::Corruption(fmt::format("{}: record count below zero", TreeName(id))));
    TreeRoot shape = ShapeOf(tree->spec());
    t = {.root = tree->root(), .records = static_cast<uint64_t>(records), .key_words = shape.key_words,
         .value_size = shape.value_size, .flags = shape.flags};
  }
  // Nodes freed and reallocated within the transaction appear more than once; freed ones not at all.
  std::sort(fresh_.begin(), fresh_.end());
  fresh_.erase(std::unique(fresh_.begin(), fresh_.end()), fresh_.end());
  std::erase_if(fresh_, [&](uint64_t b) { return !pool_->nodes_.IsFresh(b); });

  device::Device* dev = pool_->device_;
  for (size_t i = 0; i < fresh_.size();) {
    size_t j = i;
    while (j + 1 < fresh_.size() && fresh_[j + 1] == fresh_[j] + 1) ++j;
    for (size_t k = i; k <= j; ++k) format::SealBlock(dev->At(fresh_[k] * kBlockSize));
    Status s = dev->Flush(fresh_[i] * kBlockSize, (j - i + 1) * kBlockSize);
    if (!s.ok()) return Fail(s.WithContext("flushing new nodes"));
    i = j + 1;
  }
  if (sb_.metadup()) {
    Status copied = CopyToTwins();
    if (!copied.ok()) return Fail(copied);
  }
  Status drained = dev->Drain();
  if (!drained.ok()) return Fail(drained.WithContext("persisting new nodes"));

  sb_.generation = generation_;
  sb_.commit_time_ns = NowNs();
  sb_.state &= ~format::kStateClean;
  Status written = pool_->WriteSuperblock(sb_);
  if (!written.ok()) return Fail(written);
  RETURN_IF_ERROR(pool_->Publish(sb_, this));
  Finish();
  return Status::Ok();
}

void WriteTxn::Abort() {
  if (done_) return;
  space::NodeAllocator& nodes = pool_->nodes_;
  for (uint64_t b : fresh_) {
    if (nodes.IsFresh(b)) nodes.FreeFresh(b);
  }
  nodes.UndoDefer(deferred_);
  for (uint64_t c : new_chunks_) nodes.RemoveChunk(c).IgnoreError();
  {
    std::lock_guard<std::mutex> g(pool_->state_mutex_);
    for (auto& [c, type] : typed_chunks_) pool_->chunk_types_[c] = -1;
  }
  for (uint64_t c : paired_chunks_) pool_->SetTwinChunk(c, -1);
  // Relocations are undone with the trees: their nodes go back to the queue. Retirements stand.
  for (auto& [block, why] : unqueued_) {
    pool_->QueueRepair(block, why.primary_bad, why.twin_bad, why.reason);
  }
  for (RepairEvent& event : repairs_) {
    if (event.kind != RepairEvent::kRelocated) pool_->RecordEvent(std::move(event));
  }
  Finish();
}

void WriteTxn::Finish() {
  trees_.clear();
  fresh_.clear();
  deferred_.clear();
  repairs_.clear();
  unqueued_.clear();
  done_ = true;
  if (holds_gate_) {
    holds_gate_ = false;
    pool_->writer_gate_.Release();
  }
}

// ---------------------------------------------------------------------------------------------
// Pool: format and open

Pool::Pool(device::Device* device, const Superblock& sb, const OpenOptions& options)
    : device_(device),
      options_(options),
      read_only_(options.read_only),
      chunk_blocks_(sb.chunk_blocks()),
      chunk_count_(sb.chunk_count),
      sb_(sb),
      chunk_types_(sb.chunk_count, -1),
      nodes_(sb.total_blocks(), sb.chunk_blocks()),
      twin_chunk_(std::make_unique<std::atomic<int64_t>[]>(sb.chunk_count)),
      primary_of_(std::make_unique<std::atomic<int64_t>[]>(sb.chunk_count)) {
  for (uint64_t c = 0; c < chunk_count_; ++c) {
    twin_chunk_[c].store(-1, std::memory_order_relaxed);
    primary_of_[c].store(-1, std::memory_order_relaxed);
  }
  for (const format::TwinPair& p : sb.twins()) SetTwinChunk(p.primary, p.twin);
}

Pool::~Pool() = default;

Result<std::unique_ptr<Pool>> Pool::Format(device::Device* device, const FormatOptions& options) {
  uint64_t size = device->size() & ~uint64_t{kBlockSize - 1};
  if (size < kMinDeviceSize) {
    return Status::Invalid(fmt::format("device too small: {} bytes (at least {} needed)",
                                       device->size(), kMinDeviceSize));
  }
  uint64_t chunk_size = options.chunk_size ? options.chunk_size : DefaultChunkSize(size);
  if (!std::has_single_bit(chunk_size) || chunk_size < format::kMinChunkSize ||
      chunk_size > format::kMaxChunkSize || chunk_size > size / 2) {
    return Status::Invalid(fmt::format(
        "chunk size {} is invalid: it must be a power of two from {} to {} and at most half the "
        "device ({} bytes)", chunk_size, format::kMinChunkSize, format::kMaxChunkSize, size));
  }
  if (options.label.size() >= sizeof(Superblock::label)) {
    return Status::Invalid(fmt::format("label is longer than {} bytes", sizeof(Superblock::label) - 1));
  }
  if (options.incompat & ~format::feature::kKnownIncompat ||
      options.ro_compat & ~format::feature::kKnownRoCompat) {
    return Status::NotSupported("unknown feature bits requested");
  }
  const bool dup = options.metadata_dup || (options.ro_compat & format::feature::kRoCompatMetadup);
  Superblock sb;
  sb.compat = options.compat;
  sb.ro_compat = options.ro_compat | (dup ? format::feature::kRoCompatMetadup : 0);
  sb.incompat = options.incompat;
  std::random_device rd;
  for (auto& byte : sb.uuid) byte = static_cast<uint8_t>(rd());
  sb.device_size = size;
  sb.chunk_size = chunk_size;
  sb.chunk_count = (size + chunk_size - 1) / chunk_size;
  sb.create_time_ns = NowNs();
  std::memcpy(sb.label.data(), options.label.data(), options.label.size());
  uint64_t twin0 = 0;
  if (dup) {
    // Chunk 0's twin (it holds the superblock twins): the lowest chunk as long as chunk 0
    // without bad bytes.
    for (uint64_t c = 1; c < sb.chunk_count && twin0 == 0; ++c) {
      if (sb.ChunkBlockCount(c) >= sb.ChunkBlockCount(0) &&
          !device->IsBad(c * chunk_size, sb.ChunkBlockCount(c) * kBlockSize)) {
        twin0 = c;
      }
    }
    if (twin0 == 0) {
      return Status::NoSpace(
          "metadata twins need a second chunk as long as chunk 0, without bad bytes");
    }
    sb.SetTwins({{0, static_cast<uint32_t>(twin0)}});
  }

  // Invalidate both slots (and any twin superblock an older image left at a chunk start) first,
  // so no older filesystem's superblock can win at mount.
  std::memset(device->At(0), 0, 2 * kBlockSize);
  RETURN_IF_ERROR(device->Flush(0, 2 * kBlockSize));
  if (dup) {
    std::memset(device->At(twin0 * chunk_size), 0, 2 * kBlockSize);
    RETURN_IF_ERROR(device->Flush(twin0 * chunk_size, 2 * kBlockSize));
  }
  RETURN_IF_ERROR(internal::ClearStaleSuperblockCopies(device));
  RETURN_IF_ERROR(device->Drain());

  std::unique_ptr<Pool> pool(new Pool(device, sb, OpenOptions{}));
  RETURN_IF_ERROR(pool->nodes_.AddChunk(0, format::kFirstNodeBlock));
  pool->chunk_types_[0] = static_cast<int8_t>(ChunkType::kMetadata);
  if (dup) pool->chunk_types_[twin0] = static_cast<int8_t>(ChunkType::kMetadataTwin);
  ASSIGN_OR_RETURN(auto txn, pool->BeginWrite());
  RETURN_IF_ERROR(txn->AddChunkRecord(0, ChunkType::kMetadata, static_cast<uint32_t>(twin0)));
  if (dup) RETURN_IF_ERROR(txn->AddChunkRecord(twin0, ChunkType::kMetadataTwin, 0));
  RETURN_IF_ERROR(txn->Commit());
  return pool;
}

Result<std::unique_ptr<Pool>> Pool::Open(device::Device* device, const OpenOptions& options) {
  if (device->size() < 2 * kBlockSize) {
    return Status::Corruption(fmt::format("device too small to hold a superblock: {} bytes", device->size()));
  }
  // A slot on bad media is never loaded: it reads as an invalid (zeroed) slot.
  ASSIGN_OR_RETURN(internal::SuperblockChoice choice, internal::ChooseSuperblock(device));
  const Superblock& sb = choice.sb;
  bool ro_only = false;
  Status supported = format::CheckSupported(sb, &ro_only);
  if (!supported.ok() && !(ro_only && options.read_only)) return supported;
  if (device->size() < sb.device_size) {
    return Status::Corruption(fmt::format("device is truncated: {} bytes, but the superblock says {}",
                                          device->size(), sb.device_size));
  }
  std::unique_ptr<Pool> pool(new Pool(device, sb, options));
  pool->slot_ = choice.slot;
  pool->stale_sb_copy_ = choice.stale_copy;
  pool->good_sb_copy_ = choice.good_copy;
  pool->was_clean_ = sb.state & format::kStateClean;
  pool->mounting_ = true;
  RETURN_IF_ERROR(pool->LoadChunkTable());
  Status walked = pool->RebuildFreeNodes();
  if (!pool->MetadataDamage().empty()) {
    // Bad bytes under metadata. Without twins: read-only for this mount. With twins: every node
    // with a good copy is queued for repair; read-only only when some node lost both. A tree
    // walk stopped by a bad node leaves the free-node set unknown, which a read-only pool never
    // needs.
    if (!sb.metadup() || !walked.ok()) pool->read_only_ = true;
    if (!walked.ok()) base::Log(base::LogLevel::kError, "mount with metadata damage: {}", walked.ToString());
    if (sb.metadup() && walked.ok()) pool->QueueBadMediaAtMount();
  } else {
    RETURN_IF_ERROR(walked);
  }
  // A walk stopped by a bad node leaves node states unknown: reads then verify every node
  // instead of trusting states and marks (the pool is read-only).
  pool->mounting_ = !walked.ok();
  if (!pool->read_only_) pool->AbsorbRepairs(nullptr);  // retire the free slots on bad media now
  return pool;
}

Result<const uint8_t*> Pool::ReadNode(uint64_t blockno, bool fresh_ok, bool verify) {
  if (blockno < format::kFirstNodeBlock || blockno >= sb_.total_blocks()) {
    return Status::Corruption(fmt::format("node pointer to block {} is outside the metadata space", blockno));
  }
  const uint8_t* p = device_->At(blockno * kBlockSize);
  const bool bad = device_->IsBad(blockno * kBlockSize, kBlockSize);
  auto media_error = [&] {
    return Status::IoError(fmt::format("media error: metadata node {} at device offset {} is on bad media",
                                       blockno, blockno * kBlockSize));
  };
  if (bad) {
    if (!mounting_ && nodes_.IsFresh(blockno)) return media_error();  // no twin yet
    return ReadTwin(blockno, media_error());
  }
  if (!mounting_) {
    space::NodeState state = nodes_.State(blockno);
    if (state == space::NodeState::kFresh) {
      if (fresh_ok) return p;
      return Status::Corruption(
          fmt::format("block {}: a reader reached an uncommitted node", blockno));
    }
    if (state == space::NodeState::kFree) {
      return Status::Corruption(fmt::format("block {}: node pointer to a free block", blockno));
    }
    if (!verify && !options_.verify_every_read && nodes_.TestMark(blockno)) return p;
    if (redirected_count_.load(std::memory_order_relaxed) > 0) {
      std::unique_lock<std::mutex> g(repair_mutex_);
      if (redirected_.count(blockno)) {
        g.unlock();
        return ReadTwin(blockno, Status::Corruption(fmt::format(
                                     "block {}: the primary copy is known to be bad", blockno)));
      }
    }
  }
  Status verified = format::VerifyBlock(p, format::BlockType::kBTreeNode, blockno);
  if (!verified.ok()) return ReadTwin(blockno, verified);
  if (!mounting_) nodes_.SetMark(blockno);
  return p;
}

Status Pool::LoadChunkTable() {
  const TreeRoot& t = sb_.tree(TreeId::kChunks);
  if (t.root == 0) return Status::Corruption("superblock: the chunk table is empty");
  // Nodes are read before any chunk is known to be metadata: ReadNode sees kNotMetadata and
  // verifies each one by checksum and own block number.
  ReadTxn view(this, sb_, true);  // pinned just below
  {
    std::lock_guard<std::mutex> g(state_mutex_);
    readers_.Pin(sb_.generation);
  }
  ASSIGN_OR_RETURN(btree::BTree table, view.Tree(ChunkTableSpec()));
  btree::Cursor c(&table);
  for (Status s = c.SeekFirst(); ; s = c.Next()) {
    RETURN_IF_ERROR(s.WithContext("chunk table"));
    if (!c.Valid()) break;
    uint64_t chunk = c.key().w[0];
    if (chunk >= sb_.chunk_count) {
      return Status::Corruption(fmt::format("chunk table: record for chunk {} beyond the last chunk {}",
                                            chunk, sb_.chunk_count - 1));
    }
    ASSIGN_OR_RETURN(format::ChunkRecord rec, format::DecodeChunkRecord(chunk, c.value().data()));
    chunk_types_[chunk] = static_cast<int8_t>(rec.type);
    if (rec.type == ChunkType::kMetadata) {
      RETURN_IF_ERROR(nodes_.AddChunk(chunk, chunk == 0 ? format::kFirstNodeBlock : 0));
    }
  }
  if (chunk_types_[0] != static_cast<int8_t>(ChunkType::kMetadata)) {
    return Status::Corruption("chunk table: chunk 0 is not a metadata chunk");
  }
  // Twins are written at every commit: a pair whose chunks the chunk table gives another use
  // (file data) would be overwritten. Other disagreements are for Check to report.
  for (const format::TwinPair& p : sb_.twins()) {
    if (chunk_types_[p.primary] != static_cast<int8_t>(ChunkType::kMetadata) ||
        chunk_types_[p.twin] != static_cast<int8_t>(ChunkType::kMetadataTwin)) {
      return Status::Corruption(
          fmt::format("the superblock pairs chunk {} with twin chunk {}, but the chunk table has "
                      "them as {} and {}",
                      p.primary, p.twin, ChunkTypeLabel(chunk_types_[p.primary]),
                      ChunkTypeLabel(chunk_types_[p.twin])));
    }
  }
  return Status::Ok();
}

btree::TreeSpec Pool::SpecFor(TreeId id) const {
  auto it = specs_.find(static_cast<uint16_t>(id));
  if (it != specs_.end()) return it->second;
  if (id == TreeId::kChunks) return ChunkTableSpec();
  const TreeRoot& t = sb_.tree(id);
  btree::TreeSpec spec{.id = id, .name = "unregistered", .key_words = t.key_words,
                       .value_size = t.value_size};
  if (t.flags & format::kTreeInterval) spec.interval_end = &PlaceholderEnd;
  return spec;
}

Status Pool::RebuildFreeNodes() {
  ReadTxn view(this, sb_, true);  // pinned just below
  {
    std::lock_guard<std::mutex> g(state_mutex_);
    readers_.Pin(sb_.generation);
  }
  for (uint16_t id = 1; id < format::kMaxTrees; ++id) {
    if (sb_.trees[id].root == 0) continue;
    btree::BTree tree(SpecFor(static_cast<TreeId>(id)), &view, sb_.trees[id].root);
    Status s = tree.VisitNodes([&](uint64_t b, int) { return nodes_.MarkUsed(b); });
    RETURN_IF_ERROR(s.WithContext(TreeName(id)));
  }
  return Status::Ok();
}

std::vector<device::BadRange> Pool::MetadataDamage() const {
  std::vector<device::BadRange> out;
  std::vector<device::BadRange> bad = device_->BadRanges();
  if (bad.empty()) return out;
  std::lock_guard<std::mutex> g(state_mutex_);
  uint64_t chunk_bytes = sb_.chunk_size;
  for (const device::BadRange& r : bad) {
    uint64_t end = std::min(r.offset + r.length, sb_.device_size);
    for (uint64_t at = r.offset; at < end;) {
      uint64_t chunk = at / chunk_bytes;
      uint64_t piece_end = std::min(end, (chunk + 1) * chunk_bytes);
      bool metadata = chunk < chunk_types_.size() &&
                      (chunk_types_[chunk] == static_cast<int8_t>(ChunkType::kMetadata) ||
                       chunk_types_[chunk] == static_cast<int8_t>(ChunkType::kMetadataTwin));
      if (metadata) {
        if (!out.empty() && out.back().offset + out.back().length == at) {
          out.back().length += piece_end - at;
        } else {
          out.push_back({at, piece_end - at});
        }
      }
      at = piece_end;
    }
  }
  return out;
}

void Pool::RegisterTree(const btree::TreeSpec& spec) { specs_[static_cast<uint16_t>(spec.id)] = spec; }

// ---------------------------------------------------------------------------------------------
// Pool: transactions

Result<std::unique_ptr<WriteTxn>> Pool::BeginWrite() {
  if (read_only_) return Status::ReadOnly("the filesystem is mounted read-only");
  writer_gate_.Acquire();
  if (closed_) {
    writer_gate_.Release();
    return Status::Invalid("the pool is closed");
  }
  std::unique_ptr<WriteTxn> txn(new WriteTxn(this));
  AbsorbRepairs(txn.get());  // before any slot can be freed and handed out
  nodes_.ReleaseDeferred(SafeGeneration());
  return txn;
}

std::unique_ptr<ReadTxn> Pool::BeginRead() {
  std::lock_guard<std::mutex> g(state_mutex_);
  readers_.Pin(sb_.generation);
  return std::unique_ptr<ReadTxn>(new ReadTxn(this, sb_, true));
}

std::unique_ptr<ReadTxn> Pool::BeginReadUnderLock() {
  return std::unique_ptr<ReadTxn>(new ReadTxn(this, sb_, false));
}

void Pool::UnregisterReader(uint64_t generation) {
  std::lock_guard<std::mutex> g(state_mutex_);
  readers_.Unpin(generation);
}

uint64_t Pool::SafeGeneration() const {
  std::lock_guard<std::mutex> g(state_mutex_);
  return readers_.Oldest(sb_.generation);
}

// The slot and, with metadup, its twin (a byte-identical copy) in one persist.
Status Pool::WriteSuperblock(Superblock sb) {
  uint64_t slot = sb.generation % 2;
  uint8_t* block = device_->At(slot * kBlockSize);
  format::EncodeSuperblock(sb, slot, block);
  Status s = device_->Flush(slot * kBlockSize, kBlockSize);
  if (s.ok() && sb.metadup()) {
    uint64_t twin = static_cast<uint64_t>(sb.TwinOf(0)) * chunk_blocks_ + slot;
    s = device_->CopyAndFlush(twin * kBlockSize, slot * kBlockSize, kBlockSize);
  }
  if (s.ok()) s = device_->Drain();
  if (!s.ok()) {
    read_only_ = true;  // a failed persist: never retry blindly (STYLE.md)
    return s.WithContext("persisting the superblock; the filesystem is now read-only");
  }
  return Status::Ok();
}

Status Pool::Publish(const Superblock& sb, WriteTxn* txn) {
  nodes_.CommitFresh(txn->fresh_);
  stale_sb_copy_ = UINT64_MAX;  // rewritten by this commit (CopyToTwins)
  for (RepairEvent& event : txn->repairs_) {
    if (event.kind == RepairEvent::kRelocated) event.generation = sb.generation;
    RecordEvent(std::move(event));
  }
  txn->repairs_.clear();
  {
    std::lock_guard<std::mutex> g(state_mutex_);
    sb_ = sb;
    slot_ = static_cast<int>(sb.generation % 2);
  }
  // Queued nodes this transaction released are unreachable for good now: retire them.
  if (repairs_queued_.load() > 0) AbsorbRepairs(nullptr);
  return Status::Ok();
}

Status Pool::Close() {
  if (read_only_ || closed_) {
    closed_ = true;
    return Status::Ok();
  }
  if (PendingRepairs() > 0) {  // repairs first, in a commit of their own
    ASSIGN_OR_RETURN(auto repair, BeginWrite());
    RETURN_IF_ERROR(repair->Commit());
  }
  ASSIGN_OR_RETURN(auto txn, BeginWrite());
  Superblock sb = txn->sb_;
  sb.generation = txn->generation_;
  sb.commit_time_ns = NowNs();
  sb.state |= format::kStateClean;
  RETURN_IF_ERROR(WriteSuperblock(sb));
  RETURN_IF_ERROR(Publish(sb, txn.get()));
  txn->Finish();
  closed_ = true;
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Pool: inspection and checking

Superblock Pool::superblock() const {
  std::lock_guard<std::mutex> g(state_mutex_);
  return sb_;
}

bool Pool::IsMetadataChunk(uint64_t chunk) const {
  std::lock_guard<std::mutex> g(state_mutex_);
  if (chunk >= chunk_types_.size()) return false;
  return chunk_types_[chunk] == static_cast<int8_t>(ChunkType::kMetadata) ||
         chunk_types_[chunk] == static_cast<int8_t>(ChunkType::kMetadataTwin);
}

std::vector<std::pair<uint64_t, ChunkType>> Pool::Chunks() const {
  std::lock_guard<std::mutex> g(state_mutex_);
  std::vector<std::pair<uint64_t, ChunkType>> out;
  for (uint64_t c = 0; c < chunk_types_.size(); ++c) {
    if (chunk_types_[c] >= 0) out.push_back({c, static_cast<ChunkType>(chunk_types_[c])});
  }
  return out;
}

SpaceInfo Pool::Space() const {
  SpaceInfo info;
  std::lock_guard<std::mutex> g(state_mutex_);
  info.device_size = sb_.device_size;
  info.chunk_size = sb_.chunk_size;
  info.chunk_count = sb_.chunk_count;
  for (int8_t t : chunk_types_) {
    if (t < 0) ++info.free_chunks;
    else if (t == static_cast<int8_t>(ChunkType::kMetadata)) ++info.metadata_chunks;
    else if (t == static_cast<int8_t>(ChunkType::kMetadataTwin))
      ++info.metadata_twin_chunks;
    else ++info.data_chunks;
  }
  info.nodes = nodes_.Counts();
  return info;
}

Status Pool::CheckTree(TreeId id, std::vector<uint8_t>* seen, CheckReport* report) {
  uint16_t i = static_cast<uint16_t>(id);
  const TreeRoot& t = sb_.trees[i];
  if (t.root == 0) return Status::Ok();
  auto view = BeginRead();
  view->verify_all_ = true;
  btree::TreeSpec spec = SpecFor(id);
  btree::BTree tree(spec, view.get(), t.root);
  Status walked = tree.VisitNodes([&](uint64_t b, int) {
    ++report->nodes_checked;
    if ((*seen)[b]) {
      report->problems.push_back(fmt::format("{}: block {} is reachable twice (owned twice)", TreeName(i), b));
    }
    (*seen)[b] = 1;
    if (sb_.metadup()) CheckTwins(b, report);
    space::NodeState st = nodes_.State(b);
    if (st != space::NodeState::kUsed) {
      report->problems.push_back(fmt::format("{}: block {} is reachable but the allocator has it {}",
                                             TreeName(i), b, space::NodeStateName(st)));
    }
    return Status::Ok();
  });
  if (!walked.ok()) report->problems.push_back(fmt::format("{}: {}", TreeName(i), walked.message()));
  if (walked.ok() && (specs_.count(i) || id == TreeId::kChunks)) {
    btree::TreeStats stats;
    Status valid = tree.Validate(&stats);
    if (!valid.ok()) {
      report->problems.push_back(fmt::format("{}: {}", TreeName(i), valid.message()));
    } else if (stats.records != t.records) {
      report->problems.push_back(fmt::format("{}: holds {} records but the superblock says {}",
                                             TreeName(i), stats.records, t.records));
    }
    report->records_checked += stats.records;
  }
  return Status::Ok();
}

CheckReport Pool::Check() {
  CheckReport report;
  WriterGate::Scoped writer(writer_gate_);
  std::vector<uint8_t> seen(sb_.total_blocks(), 0);
  for (uint16_t id = 1; id < format::kMaxTrees; ++id) {
    CheckTree(static_cast<TreeId>(id), &seen, &report).IgnoreError();
  }
  for (uint64_t c = 0; c < sb_.chunk_count; ++c) {
    if (!nodes_.IsMetadataChunk(c)) continue;
    uint64_t first = sb_.ChunkFirstBlock(c);
    for (uint64_t b = first; b < first + sb_.ChunkBlockCount(c); ++b) {
      space::NodeState st = nodes_.State(b);
      if (st == space::NodeState::kUsed && !seen[b]) {
        report.problems.push_back(fmt::format("block {} is leaked: in use but reachable from no tree", b));
      } else if (st == space::NodeState::kRetired && seen[b]) {
        report.problems.push_back(fmt::format("block {} is retired but reachable", b));
      } else if (st == space::NodeState::kFresh) {
        report.problems.push_back(fmt::format("block {} is fresh outside a transaction", b));
      }
    }
  }
  // The chunk table on media must agree with the in-memory chunk types and allocator.
  auto view = BeginRead();
  Result<btree::BTree> table = view->Tree(ChunkTableSpec());
  std::vector<int8_t> on_media(sb_.chunk_count, -1);
  std::vector<int64_t> partner(sb_.chunk_count, -1);
  if (table.ok()) {
    btree::Cursor cur(&*table);
    for (Status s = cur.SeekFirst();; s = cur.Next()) {
      if (!s.ok()) {
        report.problems.push_back("chunk table: " + s.ToString());
        break;
      }
      if (!cur.Valid()) break;
      Result<format::ChunkRecord> rec = format::DecodeChunkRecord(cur.key().w[0], cur.value().data());
      if (!rec.ok()) {
        report.problems.push_back(rec.status().message());
      } else if (cur.key().w[0] < on_media.size()) {
        on_media[cur.key().w[0]] = static_cast<int8_t>(rec->type);
        partner[cur.key().w[0]] = rec->partner;
      }
    }
  } else {
    report.problems.push_back("chunk table: " + table.status().ToString());
  }
  CheckTwinChunks(on_media, partner, &report);
  if (sb_.metadup()) CheckSuperblockCopies(&report);
  {
    std::lock_guard<std::mutex> g(state_mutex_);
    for (uint64_t c = 0; c < sb_.chunk_count; ++c) {
      bool meta = on_media[c] == static_cast<int8_t>(ChunkType::kMetadata);
      if (on_media[c] != chunk_types_[c] || meta != nodes_.IsMetadataChunk(c)) {
        report.problems.push_back(fmt::format("chunk {}: chunk table and allocator disagree", c));
      }
    }
  }
  report.counts = nodes_.Counts();
  return report;
}

}  // namespace daxfs::txn
