// A Pool is a formatted device: the superblock pair, the chunk table, the node allocator and the
// trees, with copy-on-write transactions over them. Uses device, format, btree and space; knows
// nothing about files, directories or what any tree other than the chunk table means.
//
// Commit protocol (docs/btree.md, "Commits"): a write transaction changes only fresh nodes;
// Commit() seals (checksums) and flushes every fresh node, drains, then writes the superblock
// slot (generation % 2) with the new roots and persists it. A power cut before that last
// persist leaves the previous superblock as the newest valid one; after it, the new one. Nodes
// released by a transaction are reused only once that transaction is durable and no reader
// holds an older root.
//
// Metadata twins (ro_compat metadup, docs/btree.md "Metadata twins"): every METADATA chunk has a
// METADATA_TWIN chunk holding a byte-identical copy of each node at the same index. Commit also
// copies every fresh node into its twin before the drain, and writes the superblock slot and its
// twin (blocks 0 and 1 of chunk 0's twin) in the last persist. A read whose primary copy fails
// verification or lies on bad media returns the verified twin and queues the node; the next
// write transaction relocates every queued node (BTree::Relocate: a new primary and twin) and
// retires the bad slot.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "btree/btree.h"
#include "daxfs/status.h"
#include "device/device.h"
#include "format/superblock.h"
#include "space/node_allocator.h"
#include "txn/writer_gate.h"

namespace daxfs::txn {

struct FormatOptions {
  uint64_t chunk_size = 0;  // bytes, power of two; 0 picks one from the device size
  std::string label;
  uint64_t ro_compat = 0;  // feature bits to set (kRoCompatMetadup here = metadata_dup)
  uint64_t incompat = 0;
  uint64_t compat = 0;
  // A twin copy of every metadata node and of the superblock (ro_compat metadup); chunk 0's
  // twin is the lowest chunk without bad bytes that is as long as chunk 0.
  bool metadata_dup = false;
};

// One node slot taken out of service because a copy of its node was bad (metadup). Reported by
// Pool::TakeRepairEvents for the filesystem to log (and to record the slot, see RetireNodes).
struct RepairEvent {
  enum Kind : uint8_t {
    kRelocated,  // the node moved to `new_block` (and its twin); durable at `generation`
    kRetired,    // the slot held no reachable node: it was only retired
    kLost,       // the node could not be repaired (both copies bad, or not found): `reason`
  };
  Kind kind = kRelocated;
  uint64_t block = 0;       // the node slot (the primary copy's block number)
  uint64_t twin_block = 0;  // its twin's block (0: none)
  bool primary_bad = false;
  bool twin_bad = false;
  std::string reason;  // what was wrong, e.g. "block 1234: checksum mismatch (...)"
  uint16_t tree = 0;   // the tree the node belonged to (kRelocated, kLost when known)
  int level = -1;
  uint64_t new_block = 0;
  uint64_t generation = 0;  // the commit that made the move durable (kRelocated)
};
const char* RepairKindName(RepairEvent::Kind kind);

// A node slot with a bad copy, waiting for the next write transaction (the pool's own).
struct PendingRepair {
  bool primary_bad = false;
  bool twin_bad = false;
  std::string reason;
};

// What NoteMetadataFailure found in a bad device range.
struct MetadataFailure {
  std::vector<uint64_t> nodes;              // node slots with a reachable node, queued for repair
  std::vector<uint64_t> free_slots;         // slots holding no node, to be retired
  std::vector<uint64_t> superblock_copies;  // superblock slot blocks (primary or twin) hit
  bool repairable() const { return lost.empty(); }
  std::vector<std::string> lost;  // nodes with no good copy left, each naming blocks
};

// What RebuildTwins did.
struct TwinRebuildReport {
  uint64_t nodes_checked = 0;
  std::vector<std::string> rewritten;  // twins rewritten from their primary, naming blocks
  std::vector<std::string> relocated;  // nodes moved (a bad primary, or a twin on bad media)
  std::vector<std::string> lost;       // nodes with no good copy
  bool superblock_rewritten = false;
};

struct OpenOptions {
  bool read_only = false;
  // Verify a committed node's checksum on every read, not only on its first read after mount
  // (committed nodes never change, so once is enough unless the medium itself is suspect).
  bool verify_every_read = false;
};

// The chunk size FormatOptions{.chunk_size = 0} picks for a device of `device_size` bytes.
uint64_t DefaultChunkSize(uint64_t device_size);
// The smallest device Format accepts.
inline constexpr uint64_t kMinDeviceSize = 1 << 20;

class Pool;

// A consistent, read-only view of the trees as of one committed generation.
class ReadTxn : public btree::NodeStore {
 public:
  ~ReadTxn() override;
  uint64_t generation() const override { return sb_->generation; }
  const format::Superblock& superblock() const { return *sb_; }
  // A tree as of this view (its root from the snapshot); `spec` says its shape.
  Result<btree::BTree> Tree(const btree::TreeSpec& spec);
  // Whether the tree on media has `spec`'s shape (Tree's check, without opening it): after it
  // passed, TreeOf(spec) opens the same tree as Tree(spec).
  Status CheckShape(const btree::TreeSpec& spec) const;
  btree::BTree TreeOf(const btree::TreeSpec& spec) {
    return btree::BTree(spec, this, sb_->tree(spec.id).root);
  }

  Result<const uint8_t*> Read(uint64_t blockno) override;
  bool IsFresh(uint64_t) const override { return false; }
  Result<uint64_t> Allocate() override { return Status::ReadOnly("read transaction"); }
  uint8_t* Writable(uint64_t) override { return nullptr; }
  void Release(uint64_t) override {}

 private:
  friend class Pool;
  // A pinned view owns a copy of the superblock; an unpinned one reads the pool's own (no
  // commit can change it while the view lives: the pool is mounting, or BeginReadUnderLock's
  // caller excludes commits).
  ReadTxn(Pool* pool, const format::Superblock& sb, bool pinned)
      : pool_(pool), pinned_(pinned) {
    if (pinned) copy_.emplace(sb);
    sb_ = pinned ? &*copy_ : &sb;
  }
  Pool* pool_;
  bool pinned_;
  std::optional<format::Superblock> copy_;
  const format::Superblock* sb_;
  bool verify_all_ = false;  // set for Check(): trust no cached verification
};

// The one write transaction. Trees obtained from it are changed copy-on-write; nothing is
// visible to readers or durable until Commit(). Destroying it without Commit() aborts.
// A corrupt node or a failed flush poisons the transaction: Commit() then returns that error and
// the caller must Abort(); the committed state is untouched. Running out of nodes (ENOSPC) does
// not poison it: the B+tree reserves before it changes anything, so the failed update had no
// effect and the transaction may go on.
class WriteTxn : public btree::NodeStore {
 public:
  ~WriteTxn() override;

  // The tree with this spec's id, as changed so far in this transaction. The pointer stays
  // valid until Commit/Abort. EINVAL if the spec's shape differs from the tree's on media.
  Result<btree::BTree*> Tree(const btree::TreeSpec& spec);

  Status Commit();
  void Abort();
  // Sets ro_compat feature bits in the superblock this transaction commits (known bits only).
  // (Not metadup: only EnableMetadataDup turns that on, with the twins.)
  void AddRoCompat(uint64_t bits) {
    sb_.ro_compat |= bits & format::feature::kKnownRoCompat & ~format::feature::kRoCompatMetadup;
  }
  // The first error inside the transaction, or OK.
  const Status& status() const { return failed_; }
  // Pool::EnableMetadataDup inside this transaction (so the caller can add its own records to the
  // same commit): the twin chunks are typed and paired now, every reachable node is copied at
  // Commit. EEXIST when on already, ENOSPC when the chunks cannot be found; on an error the
  // transaction must be aborted.
  Status EnableMetadataDup() { return EnableTwins(); }

  // Types a free chunk (one with no chunk-table record) and returns its number; ENOSPC if none
  // (the transaction is then unchanged). `which`: that chunk (EEXIST if it is typed already).
  // A METADATA chunk is never one with bad device bytes. With metadup a METADATA chunk comes
  // with its twin (a second free chunk, typed METADATA_TWIN), both or neither: ENOSPC when no
  // twin can be found or the superblock's twin table is full. METADATA_TWIN alone: EINVAL.
  Result<uint64_t> AllocateChunk(format::ChunkType type, std::optional<uint64_t> which = {});

  // Relocates every node queued for repair now (Commit does it too, first): each gets a new
  // primary and twin, and its bad slot is retired. Lets the caller see repairs() and record the
  // retired slots before Commit. A node that cannot be read at all is reported kLost, not
  // retried; ENOSPC leaves the rest queued for a later transaction. Trees are opened with their
  // registered spec (RegisterTree); an unregistered interval tree gets a placeholder end
  // function, harmless to Relocate but wrong for later changes in this transaction, so register
  // every tree you change or call Repair after your changes.
  Status Repair();
  // The repairs this transaction has done (durable when Commit returns).
  const std::vector<RepairEvent>& repairs() const { return repairs_; }

  // Makes sure `count` more nodes can be allocated: reclaims deferred nodes that are safe and
  // types new METADATA chunks as needed. ENOSPC when the device cannot provide them; chunks
  // typed on the way stay typed (harmless, empty) in this transaction.
  Status EnsureNodes(uint64_t count);
  // Free metadata nodes available right now (not counting chunks that could still be typed).
  uint64_t free_nodes() const;
  // The METADATA chunks this transaction typed, in order (the list only grows).
  const std::vector<uint64_t>& metadata_chunks_typed() const { return new_chunks_; }

  uint64_t generation() const override { return generation_; }
  Result<const uint8_t*> Read(uint64_t blockno) override;
  bool IsFresh(uint64_t blockno) const override;
  Result<uint64_t> Allocate() override;
  uint8_t* Writable(uint64_t blockno) override;
  void Release(uint64_t blockno) override;

 private:
  friend class Pool;
  WriteTxn(Pool* pool);  // the pool's writer gate is held
  Status Fail(Status s);
  Status GrowMetadata();
  Status AddChunkRecord(uint64_t chunk, format::ChunkType type, uint32_t partner = 0);
  Result<uint64_t> AllocateMetadataPair(std::optional<uint64_t> which);
  Status PairChunk(uint64_t primary);  // types a twin for an existing METADATA chunk
  Status EnableTwins();
  Status CopyToTwins();  // Commit: fresh nodes (and all, when enabling) to twins
  void Finish();

  Pool* pool_;
  bool holds_gate_ = true;  // released by Finish, on whichever thread finishes
  uint64_t generation_;
  format::Superblock sb_;  // roots as of this transaction
  std::map<uint16_t, std::unique_ptr<btree::BTree>> trees_;
  std::vector<uint64_t> fresh_;     // nodes allocated (and not yet freed) in this transaction
  std::vector<uint64_t> deferred_;  // committed nodes released in this transaction
  std::vector<uint64_t> new_chunks_;
  std::vector<std::pair<uint64_t, format::ChunkType>> typed_chunks_;
  std::vector<uint64_t> paired_chunks_;  // primaries given a twin in this transaction
  std::vector<RepairEvent> repairs_;     // relocations done in this transaction
  std::vector<std::pair<uint64_t, PendingRepair>> unqueued_;  // to re-queue on Abort
  bool copy_all_to_twins_ = false;  // EnableMetadataDup: every reachable node
  bool in_chunk_op_ = false;
  bool done_ = false;
  std::mutex fail_mu_;  // Fail may be called by parallel readers of this transaction
  Status failed_;
};

// What Check() found. Empty `problems` means consistent.
struct CheckReport {
  std::vector<std::string> problems;
  // Not problems: states a crash leaves that the next commit rewrites (a torn copy of the
  // current superblock slot whose other copy is good).
  std::vector<std::string> pending;
  // Not problems: known damage worked around (a superblock copy on bad media whose other copy
  // is good: slots cannot move, so it stays).
  std::vector<std::string> damage;
  uint64_t nodes_checked = 0;
  uint64_t twins_checked = 0;
  uint64_t records_checked = 0;
  space::NodeCounts counts;
  bool ok() const { return problems.empty(); }
};

struct SpaceInfo {
  uint64_t device_size = 0;
  uint64_t chunk_size = 0;
  uint64_t chunk_count = 0;
  uint64_t metadata_chunks = 0;
  uint64_t metadata_twin_chunks = 0;
  uint64_t data_chunks = 0;
  uint64_t free_chunks = 0;
  space::NodeCounts nodes;
};

class Pool {
 public:
  // Writes a new, empty filesystem over the whole device: both superblock slots, chunk 0 as
  // METADATA, an empty tree set. Only the superblock slots and freshly written nodes change.
  static Result<std::unique_ptr<Pool>> Format(device::Device* device, const FormatOptions& options);
  // Mounts: picks the newest valid superblock, checks version, features and geometry, reads the
  // chunk table and rebuilds the free-node set by walking every tree. Nothing is written.
  static Result<std::unique_ptr<Pool>> Open(device::Device* device, const OpenOptions& options = {});
  ~Pool();

  // Known tree shapes (for Check's full validation); trees not registered are still walked.
  void RegisterTree(const btree::TreeSpec& spec);

  // Starts the one write transaction (waits while another is running). EROFS when read-only.
  Result<std::unique_ptr<WriteTxn>> BeginWrite();
  std::unique_ptr<ReadTxn> BeginRead();
  // The same view without a pin and without the pool's state lock, for a caller that itself
  // excludes every commit of this pool for the view's whole life (the filesystem's read
  // operations hold its lock shared; every commit takes it exclusively). Nothing is shared
  // between readers but the pool's read-only state, so readers on many threads scale.
  std::unique_ptr<ReadTxn> BeginReadUnderLock();

  // Marks the image cleanly unmounted (one final commit). Further writes are refused.
  Status Close();

  // Full consistency check of the committed state: every node verified, every registered tree
  // validated, every metadata block exactly one of superblock / reachable once / free /
  // deferred, record counts and the chunk table consistent with the allocator.
  CheckReport Check();

  format::Superblock superblock() const;
  int superblock_slot() const { return slot_; }
  bool read_only() const { return read_only_; }
  bool was_clean() const { return was_clean_; }
  device::Device* device() const { return device_; }
  SpaceInfo Space() const;
  // Bad device bytes (Device::BadRanges) under the superblock slots, METADATA or METADATA_TWIN
  // chunks, merged. Without metadup mount makes the pool read-only when there are any; with it,
  // only when some node has lost both copies (the rest is queued for repair).
  std::vector<device::BadRange> MetadataDamage() const;
  std::vector<std::pair<uint64_t, format::ChunkType>> Chunks() const;
  // METADATA or METADATA_TWIN: a bad byte there is metadata by address.
  bool IsMetadataChunk(uint64_t chunk) const;

  // ---- Metadata twins (metadup).
  bool metadata_dup() const;
  // The twin of node slot (or superblock slot) `block`, or 0 when it has none.
  uint64_t TwinBlock(uint64_t block) const;
  // Adds twins to a pool made without them: types a METADATA_TWIN chunk for every METADATA
  // chunk, copies every reachable node and the superblock into the twins and sets metadup, in
  // one commit (the feature bit and the twin table become visible in one superblock write).
  // EEXIST if on already; ENOSPC (nothing changed) when there are not enough free chunks
  // without bad bytes or the twin table would overflow; EROFS when read-only.
  Status EnableMetadataDup();
  // A media failure under metadata reported while mounted (for NotifyFailure): every node slot
  // in [offset, +length), as primary or twin, is queued for repair (reads of a bad primary go to
  // the twin from now on), free slots are retired by the next writer. `lost` names the nodes
  // whose other copy is bad too, or every node hit when the pool has no twins.
  // Safe against readers; serialize it with write transactions that type chunks (the
  // filesystem calls it under its own lock).
  MetadataFailure NoteMetadataFailure(uint64_t offset, uint64_t length);
  // Nodes queued for repair (the next write transaction relocates them).
  size_t PendingRepairs() const;
  // The queue itself: (node slot, what is wrong), ascending (for recording the slots a commit
  // will retire).
  std::vector<std::pair<uint64_t, PendingRepair>> QueuedRepairs() const;
  // The node slot whose primary or twin copy is device block `block`, and whether `block` is
  // the twin copy; nullopt for superblock slots and blocks outside METADATA(_TWIN) chunks.
  std::optional<std::pair<uint64_t, bool>> NodeSlotOf(uint64_t block) const {
    return SlotOf(block);
  }
  // The allocator's state of node slot `slot` (kNotMetadata outside METADATA chunks).
  space::NodeState SlotState(uint64_t slot) const { return nodes_.State(slot); }
  // For scrub: verifies both copies of node slot `slot` (bad media, checksum, own block number)
  // and, when exactly one is bad, queues the repair as a read finding it would. The two results
  // (the twin's Ok without twins). Reads the committed copies: call it with no writer changing
  // them (the filesystem lock).
  std::pair<Status, Status> ScrubNode(uint64_t slot);
  // Repairs done since the last call, oldest first (relocations once durable).
  std::vector<RepairEvent> TakeRepairEvents();
  // Node slots retired (never allocated again this mount) or waiting to be. Retirement is not
  // recorded by the pool: the filesystem keeps the list (its poison tree) and hands it back
  // after the next mount with RetireNodes; slots on known-bad media are retired at mount anyway.
  // Both take the writer lock: call them with no write transaction open on this thread.
  std::vector<uint64_t> RetiredNodes();
  // EINVAL (nothing changed) if a block is not a node slot of a METADATA chunk. A slot holding a
  // reachable node is queued for relocation first.
  Status RetireNodes(const std::vector<uint64_t>& blocks);
  // For `daxfs repair`: verifies both copies of every reachable node; rewrites a missing, bad or
  // differing twin from a good primary in place, rewrites the current superblock slot's bad copy,
  // and relocates (one commit) nodes whose primary is bad or whose twin is on bad media. EINVAL
  // without metadup, EROFS when read-only.
  Result<TwinRebuildReport> RebuildTwins();

 private:
  friend class ReadTxn;
  friend class WriteTxn;
  Pool(device::Device* device, const format::Superblock& sb, const OpenOptions& options);
  Result<const uint8_t*> ReadNode(uint64_t blockno, bool fresh_ok, bool verify = false);
  // The primary copy of `blockno` failed with `why`: the twin if it verifies (and the node is
  // queued for repair), else an error naming both copies.
  Result<const uint8_t*> ReadTwin(uint64_t blockno, const Status& why);
  Status CheckCopy(uint64_t block, uint64_t own_blockno) const;  // media, then VerifyBlock
  void QueueRepair(uint64_t blockno, bool primary_bad, bool twin_bad, const std::string& reason);
  // Writer only: retires queued slots that hold no reachable node (events to `txn`, or to the
  // pool when null) and marks the others to be retired once released.
  void AbsorbRepairs(WriteTxn* txn);
  void RecordEvent(RepairEvent event);
  void QueueBadMediaAtMount();  // metadup: every node slot on a bad range
  // The node slot whose primary or twin copy is `block`, and whether `block` is the twin.
  std::optional<std::pair<uint64_t, bool>> SlotOf(uint64_t block) const;
  void SetTwinChunk(uint64_t primary, int64_t twin);
  void CheckTwins(uint64_t block, CheckReport* report) const;
  void CheckSuperblockCopies(CheckReport* report) const;
  void CheckTwinChunks(const std::vector<int8_t>& on_media, const std::vector<int64_t>& partner,
                       CheckReport* report) const;
  Status LoadChunkTable();
  Status RebuildFreeNodes();
  Status WriteSuperblock(format::Superblock sb);
  Status Publish(const format::Superblock& sb, WriteTxn* txn);
  void UnregisterReader(uint64_t generation);
  uint64_t SafeGeneration() const;  // deferred nodes released at or before it may be reused
  btree::TreeSpec SpecFor(format::TreeId id) const;
  Status CheckTree(format::TreeId id, std::vector<uint8_t>* seen, CheckReport* report);

  device::Device* device_;
  OpenOptions options_;
  bool read_only_;
  bool was_clean_ = false;
  int slot_ = 0;
  const uint64_t chunk_blocks_;  // geometry, fixed for the pool's life
  const uint64_t chunk_count_;

  WriterGate writer_gate_;            // held by the one WriteTxn (any thread may finish it)
  mutable std::mutex state_mutex_;    // guards sb_, readers_, chunk_types_
  format::Superblock sb_;             // last committed
  // Generations pinned by live ReadTxns: few distinct ones at a time (the last commit, sometimes
  // the one before), so counts in a small vector, which allocates nothing once it has grown.
  class ReaderPins {
   public:
    void Pin(uint64_t generation) {
      for (auto& [g, n] : pins_) {
        if (g == generation) {
          ++n;
          return;
        }
      }
      pins_.emplace_back(generation, 1);
    }
    void Unpin(uint64_t generation) {
      for (size_t i = 0; i < pins_.size(); ++i) {
        if (pins_[i].first != generation) continue;
        if (--pins_[i].second == 0) {
          pins_[i] = pins_.back();
          pins_.pop_back();
        }
        return;
      }
    }
    // The oldest pinned generation, or `none` when nothing is pinned.
    uint64_t Oldest(uint64_t none) const {
      uint64_t oldest = none;
      for (const auto& [g, n] : pins_) oldest = std::min(oldest, g);
      return oldest;
    }

   private:
    std::vector<std::pair<uint64_t, uint64_t>> pins_;  // (generation, readers)
  };
  ReaderPins readers_;
  std::vector<int8_t> chunk_types_;   // -1 free, else ChunkType
  space::NodeAllocator nodes_;
  std::map<uint16_t, btree::TreeSpec> specs_;
  // Twins: per chunk its twin chunk or -1 (set when paired, also by a running transaction,
  // whose Abort clears it again; readers only look up chunks their snapshot reaches).
  std::unique_ptr<std::atomic<int64_t>[]> twin_chunk_;
  std::unique_ptr<std::atomic<int64_t>[]> primary_of_;  // the reverse: twin chunk -> primary
  mutable std::mutex repair_mutex_;                     // guards the three below
  std::map<uint64_t, PendingRepair> repairs_;
  std::set<uint64_t> redirected_;  // slots whose primary is bad: reads use the twin
  std::vector<RepairEvent> events_;
  std::atomic<size_t> repairs_queued_{0};
  std::atomic<size_t> redirected_count_{0};
  std::atomic<bool> repairs_dirty_{false};  // queued since the writer last looked
  // A copy of the current superblock slot found invalid at mount (a crash between the two
  // copies): the next commit rewrites block `stale_sb_copy_` from `good_sb_copy_`.
  uint64_t stale_sb_copy_ = UINT64_MAX;
  uint64_t good_sb_copy_ = 0;
  bool closed_ = false;
  // Node states are not known: while the trees are first walked at mount, and for good on a
  // read-only mount whose walk a bad node stopped.
  bool mounting_ = false;
};

// The chunk table's shape.
btree::TreeSpec ChunkTableSpec();
// A general key/value tree (16-byte keys, 24-byte values) for tests and benchmarks.
btree::TreeSpec ScratchSpec();

}  // namespace daxfs::txn
