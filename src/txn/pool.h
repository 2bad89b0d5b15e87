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
#pragma once

#include <array>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "btree/btree.h"
#include "daxfs/status.h"
#include "device/device.h"
#include "format/superblock.h"
#include "space/node_allocator.h"

namespace daxfs::txn {

struct FormatOptions {
  uint64_t chunk_size = 0;  // bytes, power of two; 0 picks one from the device size
  std::string label;
  uint64_t ro_compat = 0;   // feature bits to set
  uint64_t incompat = 0;
  uint64_t compat = 0;
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
  uint64_t generation() const override { return sb_.generation; }
  const format::Superblock& superblock() const { return sb_; }
  // A tree as of this view (its root from the snapshot); `spec` says its shape.
  Result<btree::BTree> Tree(const btree::TreeSpec& spec);

  Result<const uint8_t*> Read(uint64_t blockno) override;
  bool IsFresh(uint64_t) const override { return false; }
  Result<uint64_t> Allocate() override { return Status::ReadOnly("read transaction"); }
  uint8_t* Writable(uint64_t) override { return nullptr; }
  void Release(uint64_t) override {}

 private:
  friend class Pool;
  ReadTxn(Pool* pool, const format::Superblock& sb) : pool_(pool), sb_(sb) {}
  Pool* pool_;
  format::Superblock sb_;
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
  void AddRoCompat(uint64_t bits) { sb_.ro_compat |= bits & format::feature::kKnownRoCompat; }
  // The first error inside the transaction, or OK.
  const Status& status() const { return failed_; }

  // Types a free chunk (one with no chunk-table record) and returns its number; ENOSPC if none
  // (the transaction is then unchanged). `which`: that chunk (EEXIST if it is typed already).
  // A METADATA chunk is never one with bad device bytes.
  Result<uint64_t> AllocateChunk(format::ChunkType type, std::optional<uint64_t> which = {});

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
  WriteTxn(Pool* pool, std::unique_lock<std::mutex> lock);
  Status Fail(Status s);
  Status GrowMetadata();
  Status AddChunkRecord(uint64_t chunk, format::ChunkType type);
  void Finish();

  Pool* pool_;
  std::unique_lock<std::mutex> writer_lock_;
  uint64_t generation_;
  format::Superblock sb_;  // roots as of this transaction
  std::map<uint16_t, std::unique_ptr<btree::BTree>> trees_;
  std::vector<uint64_t> fresh_;     // nodes allocated (and not yet freed) in this transaction
  std::vector<uint64_t> deferred_;  // committed nodes released in this transaction
  std::vector<uint64_t> new_chunks_;
  std::vector<std::pair<uint64_t, format::ChunkType>> typed_chunks_;
  bool in_chunk_op_ = false;
  bool done_ = false;
  Status failed_;
};

// What Check() found. Empty `problems` means consistent.
struct CheckReport {
  std::vector<std::string> problems;
  uint64_t nodes_checked = 0;
  uint64_t records_checked = 0;
  space::NodeCounts counts;
  bool ok() const { return problems.empty(); }
};

struct SpaceInfo {
  uint64_t device_size = 0;
  uint64_t chunk_size = 0;
  uint64_t chunk_count = 0;
  uint64_t metadata_chunks = 0;
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
  // Bad device bytes (Device::BadRanges) under the superblock slots or METADATA chunks, merged.
  // Mount makes the pool read-only when there are any.
  std::vector<device::BadRange> MetadataDamage() const;
  std::vector<std::pair<uint64_t, format::ChunkType>> Chunks() const;

 private:
  friend class ReadTxn;
  friend class WriteTxn;
  Pool(device::Device* device, const format::Superblock& sb, const OpenOptions& options);
  Result<const uint8_t*> ReadNode(uint64_t blockno, bool fresh_ok, bool verify = false);
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

  std::mutex writer_mutex_;           // held by the one WriteTxn
  mutable std::mutex state_mutex_;    // guards sb_, readers_, chunk_types_
  format::Superblock sb_;             // last committed
  std::multiset<uint64_t> readers_;   // generations pinned by live ReadTxns
  std::vector<int8_t> chunk_types_;   // -1 free, else ChunkType
  space::NodeAllocator nodes_;
  std::map<uint16_t, btree::TreeSpec> specs_;
  bool closed_ = false;
  bool mounting_ = false;  // node states are not known yet while the trees are first walked
};

// The chunk table's shape.
btree::TreeSpec ChunkTableSpec();
// A general key/value tree (16-byte keys, 24-byte values) for tests and benchmarks.
btree::TreeSpec ScratchSpec();

}  // namespace daxfs::txn
