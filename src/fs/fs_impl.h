// The filesystem engine behind include/daxfs/filesystem.h. One class, its methods split by
// concern across files: fs_impl.cc (mount, format, the operation scaffolding, durability),
// namespace.cc (directories and names), file_io.cc (file data), extent_map.cc (the one place
// that changes extent maps and data space), check.cc (the consistency checker).
// Uses the txn, btree, space, format and device layers; knows nothing of the CLI or FUSE.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "btree/btree.h"
#include "daxfs/filesystem.h"
#include "device/device.h"
#include "format/records.h"
#include "space/extent_allocator.h"
#include "txn/pool.h"

namespace daxfs::fs {

// Tree shapes of the filesystem trees.
btree::TreeSpec InodeTreeSpec();
btree::TreeSpec DirentTreeSpec();
btree::TreeSpec ExtentTreeSpec();
btree::TreeSpec RmapTreeSpec();      // interval tree
btree::TreeSpec RefcountTreeSpec();

class FsImpl final : public Filesystem {
 public:
  static Status FormatDevice(device::Device* device, const FormatOptions& options);
  // `owned` (may be null) is kept alive as long as the filesystem.
  static Result<std::unique_ptr<FsImpl>> Mount(device::Device* device,
                                               std::unique_ptr<device::Device> owned,
                                               const MountOptions& options);
  ~FsImpl() override;

  // ---- namespace.cc
  Result<Attr> Lookup(Ino dir, std::string_view name) override;
  Result<Attr> Resolve(std::string_view path, bool follow) override;
  Result<Attr> GetAttr(Ino ino) override;
  Result<Attr> SetAttr(Ino ino, const SetAttrRequest& request) override;
  Result<Attr> Create(Ino dir, std::string_view name, uint32_t mode) override;
  Result<Attr> Mkdir(Ino dir, std::string_view name, uint32_t mode) override;
  Result<Attr> Symlink(Ino dir, std::string_view name, std::string_view target) override;
  Result<std::string> ReadLink(Ino ino) override;
  Result<Attr> Link(Ino ino, Ino new_dir, std::string_view new_name) override;
  Status Unlink(Ino dir, std::string_view name) override;
  Status Rmdir(Ino dir, std::string_view name) override;
  Status Rename(Ino old_dir, std::string_view old_name, Ino new_dir,
                std::string_view new_name) override;
  Status ReadDir(Ino dir, uint64_t cookie, const std::function<bool(const DirEntry&)>& fn) override;

  // ---- file_io.cc
  Result<size_t> Read(Ino ino, uint64_t offset, std::span<uint8_t> out) override;
  Result<size_t> Write(Ino ino, uint64_t offset, std::span<const uint8_t> data) override;
  Status Truncate(Ino ino, uint64_t size) override;
  Status Fallocate(Ino ino, uint32_t mode, uint64_t offset, uint64_t length) override;
  Result<uint64_t> SeekData(Ino ino, uint64_t offset) override;
  Result<uint64_t> SeekHole(Ino ino, uint64_t offset) override;
  Result<std::vector<FileExtent>> Bmap(Ino ino) override;

  // ---- reflink.cc
  Status Clone(Ino src, Ino dst) override;
  Status CloneRange(Ino src, uint64_t src_offset, Ino dst, uint64_t dst_offset,
                    uint64_t length) override;
  Result<DedupeResult> Dedupe(Ino src, uint64_t src_offset, Ino dst, uint64_t dst_offset,
                              uint64_t length) override;
  Status Unshare(Ino ino, uint64_t offset, uint64_t length) override;
  Result<uint64_t> CopyFileRange(Ino src, uint64_t src_offset, Ino dst, uint64_t dst_offset,
                                 uint64_t length) override;

  // ---- fsmap.cc
  Result<std::vector<FsmapRecord>> Fsmap(uint64_t start, uint64_t end,
                                         const std::optional<FsmapKey>& after, size_t max) override;
  Result<std::string> PathOf(Ino ino) override;
  // ---- repair.cc
  Result<RepairReport> RebuildReverseMaps() override;

  bool has_rmap() const { return has_rmap_; }
  bool has_reflink() const { return has_reflink_; }

  // ---- fs_impl.cc
  Status Fsync(Ino ino) override;
  Status Sync() override;
  Result<FsStats> StatFs() override;
  Status Unmount() override;
  bool read_only() const override { return read_only_; }

  // ---- check.cc
  Result<FsCheckResult> Check() override;

  // For tests: the pool underneath (do not write through it).
  txn::Pool* pool() { return pool_.get(); }

 private:
  FsImpl(device::Device* device, std::unique_ptr<device::Device> owned,
         std::unique_ptr<txn::Pool> pool, const MountOptions& options);

  // ---------------------------------------------------------------------------------------------
  // Operation scaffolding (fs_impl.cc). Every public method runs its body through one of these;
  // inside a body, `trees_` points at the trees to use and `mu_` is held.
  //
  // ReadOp: the open write transaction's trees if there is one (read-your-writes in group
  // commit mode), else a read snapshot.
  Status ReadOp(const std::function<Status()>& body);
  // WriteOp: opens the write transaction if none is open, runs the body, then commits according
  // to the durability mode. The body must follow docs/fs.md ("Operations and atomicity"): it
  // validates and reserves before it changes anything, so an error it returns means "nothing
  // changed" -- unless the transaction was poisoned (a corrupt node, a failed flush), in which
  // case the transaction is aborted and the filesystem shuts down read-only.
  Status WriteOp(const std::function<Status()>& body);
  Status CommitLocked();         // REQUIRES: mu_ held
  std::vector<btree::TreeSpec> TreeSpecs() const;
  void SetTrees(btree::BTree** trees, size_t n);
  void ShutDown(const Status& why);  // REQUIRES: mu_ held

  struct Trees {
    btree::BTree* inodes = nullptr;
    btree::BTree* dirents = nullptr;
    btree::BTree* extents = nullptr;
    btree::BTree* rmap = nullptr;      // null on a filesystem made without the rmap
    btree::BTree* refcount = nullptr;  // null on a filesystem made without reflink
  };

  // ---- Inode helpers (fs_impl.cc); valid inside an operation.
  Result<format::Inode> GetInode(Ino ino);  // ENOENT when absent
  Status PutInode(const format::Inode& inode);
  Status DeleteInode(Ino ino);
  Result<Ino> NextIno();
  static Attr ToAttr(const format::Inode& inode);
  static int64_t NowNs();
  // Makes sure the pool can hand out the nodes `tree_updates` B+tree updates may need in the
  // worst case (path copy plus splits up to a new root, at the current tree heights). ENOSPC.
  Status ReserveNodes(uint64_t tree_updates);

  // ---- Extent map and data space (extent_map.cc): the only code that changes extent maps.
  // Device blocks come from and return to `data_` through these.
  // Maps [file_block, file_block + x.blocks) of `ino` to x (the range must be unmapped);
  // merges with a contiguous neighbour of the same flags.
  Status MapExtent(Ino ino, uint64_t file_block, const format::ExtentRecord& x);
  // Removes every mapping in [first_block, first_block + count) of `ino` (trimming extents that
  // straddle the ends) and releases their device blocks. Returns the blocks unmapped.
  Result<uint64_t> UnmapRange(Ino ino, uint64_t first_block, uint64_t count);
  // Marks [file_block, +count) written where it is unwritten (splitting extents as needed).
  Status ConvertUnwritten(Ino ino, uint64_t file_block, uint64_t count);
  // Calls fn(file_block, extent) for every extent overlapping [first_block, first_block+count),
  // in order, with the extent as stored (it may start before first_block). fn returns false to stop.
  Status ForEachExtent(Ino ino, uint64_t first_block, uint64_t count,
                       const std::function<bool(uint64_t, const format::ExtentRecord&)>& fn);
  // Allocates `count` data blocks (all or nothing), preferring one run at `goal`; types new DATA
  // chunks as needed. The blocks are fresh: writable in place until commit.
  Result<std::vector<space::Run>> AllocateData(uint64_t count, uint64_t goal);
  // Gives back device blocks no longer mapped: fresh ones at once, committed ones deferred.
  void ReleaseData(uint64_t device_block, uint64_t count);
  // Records a device byte range written by this transaction, to flush before commit.
  void NoteDirty(uint64_t device_offset, uint64_t length);
  // Mount: rebuilds data free space from DATA chunks minus every extent.
  Status RebuildDataSpace();

  // ---- file_io.cc internals used by namespace.cc.
  // Writes/reads file data of `ino` without the operation scaffolding (inside a body).
  Status WriteData(format::Inode* inode, uint64_t offset, std::span<const uint8_t> data);
  Result<size_t> ReadData(const format::Inode& inode, uint64_t offset, std::span<uint8_t> out);
  // Frees every block of an inode whose last link went away (inside a body).
  Status FreeAllData(format::Inode* inode);

  // ---- BEGIN data-path private helpers (file_io.cc, extent_map.cc) ---------------------------
  struct WritePlan;    // how a byte range will be written: pieces by treatment (file_io.cc)
  struct BlockSource;  // the new blocks an operation allocated, handed out in file order
  struct FileSpan;     // a stretch of file blocks with one state
  // file_io.cc
  Status PlanWrite(Ino ino, uint64_t offset, uint64_t length, const uint8_t* src, bool zeroing,
                   WritePlan* plan);
  Result<BlockSource> ReserveForOp(uint64_t new_blocks, uint64_t goal, uint64_t records,
                                   uint64_t updates);
  Status ApplyPlan(Ino ino, const WritePlan& plan, BlockSource* blocks);
  Status PlanEdgeZeroing(const format::Inode& inode, uint64_t offset, uint64_t end,
                         WritePlan* plan);
  Status TruncateData(format::Inode* inode, uint64_t size);
  Status AllocateRange(format::Inode* inode, uint64_t offset, uint64_t length, bool keep_size);
  Status PunchOrZero(format::Inode* inode, uint64_t offset, uint64_t length, bool zero,
                     bool keep_size);
  Status MapUnwritten(Ino ino, const FileSpan& span, BlockSource* blocks);
  // extent_map.cc
  Result<uint64_t> CountExtents(Ino ino, uint64_t first_block, uint64_t count);
  // The device block after the extent at or before `file_block` (0 when none): a goal that
  // keeps a file contiguous.
  Result<uint64_t> DataGoal(Ino ino, uint64_t file_block);
  // ReserveNodes for `updates` extent-tree updates that all fall among `records` consecutive
  // records of one inode (plus one inode update).
  Status ReserveExtentUpdates(uint64_t records, uint64_t updates);
  // Maps a run of any length (split at kMaxExtentBlocks).
  Status MapRun(Ino ino, uint64_t file_block, uint64_t device_block, uint64_t count,
                uint32_t flags);
  // DATA chunks typed by AllocateData whose transaction has not committed yet: if that
  // transaction aborts, the chunk is untyped and `data_` must forget its blocks.
  struct PendingDataChunk {
    uint64_t chunk;
    uint64_t generation;
  };
  std::vector<PendingDataChunk> pending_data_chunks_;
  Status DropAbortedDataChunks();
  void ForgetDataChunksOfFailingOp();
  // ---- END data-path private helpers ----------------------------------------------------------

  // ---- namespace.cc helpers (valid inside an operation unless they say they run one).
  struct NameSlot;    // where a name is, or could go, in a directory
  struct RenamePlan;  // everything Rename checked, ready to apply
  // Runs a WriteOp that creates a file, directory or symlink (`target`) named `name` in `dir`.
  Result<Attr> MakeNode(Ino dir, std::string_view name, format::FileType type, uint32_t mode,
                        std::string_view target);
  Result<format::Inode> MakeNodeLocked(Ino dir, std::string_view name, format::FileType type,
                                       uint32_t mode, std::string_view target);
  Result<format::Inode> GetDirectory(Ino dir);  // ENOENT, ENOTDIR
  Result<NameSlot> FindName(Ino dir, std::string_view name);
  Result<uint64_t> FreeSlotFor(const NameSlot& where, Ino dir, std::string_view name);
  Result<format::Inode> EntryInode(Ino dir, const format::Dirent& entry);  // EUCLEAN if missing
  Result<format::Inode> LookupLocked(const format::Inode& dir, std::string_view name);
  Result<format::Inode> ResolveLocked(std::string_view path, bool follow);
  Result<std::string> ReadLinkLocked(const format::Inode& link);
  Status PutEntry(Ino dir, uint64_t slot, const format::Inode& inode, std::string_view name);
  Status DeleteEntry(Ino dir, uint64_t slot);
  Result<bool> HasEntries(Ino dir);
  Result<uint64_t> TreeUpdatesToFree(const format::Inode& inode);
  Status DropLink(format::Inode* inode, int64_t now);
  Status UnlinkLocked(Ino dir, std::string_view name);
  Status RmdirLocked(Ino dir, std::string_view name);
  Result<format::Inode> LinkLocked(Ino ino, Ino new_dir, std::string_view new_name);
  Status CheckNotInside(Ino moving_dir, Ino new_parent);
  Result<RenamePlan> PlanRename(Ino old_dir, std::string_view old_name, Ino new_dir,
                                std::string_view new_name);
  Status CheckReplace(const RenamePlan& plan);
  Status ApplyRename(RenamePlan* plan, std::string_view new_name);
  Status ReadDirBatch(Ino dir, uint64_t cookie, size_t max, std::vector<DirEntry>* out);
  // ---- end of namespace.cc helpers

  device::Device* device_;
  std::unique_ptr<device::Device> owned_device_;
  std::unique_ptr<txn::Pool> pool_;
  MountOptions options_;
  bool read_only_;
  bool unmounted_ = false;
  Status shutdown_;  // why the filesystem went read-only, if it did

  std::mutex mu_;
  std::unique_ptr<txn::WriteTxn> txn_;  // open write transaction (group commit keeps it open)
  uint32_t ops_in_txn_ = 0;
  std::unique_ptr<txn::ReadTxn> read_view_;
  std::optional<btree::BTree> read_trees_[5];
  bool has_rmap_ = false;
  bool has_reflink_ = false;
  Trees trees_;
  bool in_write_op_ = false;

  space::ExtentAllocator data_;
  std::vector<std::pair<uint64_t, uint64_t>> dirty_;  // device byte ranges to flush at commit
};

}  // namespace daxfs::fs
