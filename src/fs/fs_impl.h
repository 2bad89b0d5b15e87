// The filesystem engine behind include/daxfs/filesystem.h. One class, its methods split by
// concern across files: fs_impl.cc (mount, format, durability, the transaction hooks),
// namespace.cc (directories and names), file_io.cc (file data), extent_map.cc (the one place
// that changes extent maps and data space), check.cc (the consistency checker).
// Operations run through OpRunner (op_runner.h) and get their context (op.h) as an argument.
// Uses the txn, btree, space, format and device layers; knows nothing of the CLI or FUSE.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "btree/btree.h"
#include "daxfs/filesystem.h"
#include "device/device.h"
#include "format/records.h"
#include "fs/data_space.h"
#include "fs/extent_map.h"
#include "fs/file_data.h"
#include "fs/inodes.h"
#include "fs/layouts.h"
#include "fs/mapping_hooks.h"
#include "fs/media_failures.h"
#include "fs/namespace.h"
#include "fs/node_budget.h"
#include "fs/op.h"
#include "fs/op_runner.h"
#include "fs/owners.h"
#include "fs/poison.h"
#include "fs/reflink.h"
#include "fs/remap.h"
#include "fs/rmap.h"
#include "fs/scrubber.h"
#include "fs/trees.h"
#include "space/extent_allocator.h"
#include "txn/pool.h"

namespace daxfs::fs {

class FsImpl final : public Filesystem, private TxnHooks {
 public:
  static Status FormatDevice(device::Device* device, const FormatOptions& options);
  // `owned` (may be null) is kept alive as long as the filesystem.
  static Result<std::unique_ptr<FsImpl>> Mount(device::Device* device,
                                               std::unique_ptr<device::Device> owned,
                                               const MountOptions& options,
                                               Scrubber* scrubber = nullptr);
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
  bool read_only() const override { return runner_.read_only(); }

  // ---- check.cc
  Result<FsCheckResult> Check() override;

  // ---- media.cc: media failures, the poison tree, and what the DAX layer needs.
  Result<MediaFailureRecord> RecordMediaFailure(uint64_t offset, uint64_t length,
                                                uint32_t flags) override;
  Result<MediaErrorList> MediaErrors() override;
  // The device bytes [offset, +length) cut by kind, by address (clipped to the device; a piece
  // past its end is kOutside). Runs its own read operation.
  Result<std::vector<RangePiece>> ClassifyRange(uint64_t offset, uint64_t length);
  // The DAX layer's observer of watched files (null: none). Set before the first mapping.
  void SetMappingObserver(MappingObserver* observer);
  // One operation that makes [offset, +length) of regular file `ino` mappable and hands its
  // layout to `install` under the filesystem lock (so no extent changes in between; `install`
  // must not call back into the filesystem; its error is returned and, for a writable mapping,
  // the preparation stays done). offset block-aligned, length > 0, the range within the file
  // size rounded up to a block: else EINVAL. writable: first allocates holes (zeroed, written),
  // zeroes and converts unwritten extents and unshares shared blocks, so the layout is all kData
  // of private blocks (kLost stays kLost); EROFS on a read-only filesystem, ENOSPC. Read-only:
  // unwritten and holes are kZero.
  Status PrepareMapping(Ino ino, uint64_t offset, uint64_t length, bool writable,
                        const std::function<Status(const MapLayout&)>& install);
  device::Device* device() const { return device_; }

  // For the scrub layer: the runner and modules it checks and repairs through.
  ScrubAccess scrub_access();
  // For tests: the pool underneath (do not write through it).
  txn::Pool* pool() { return pool_.get(); }

  // For tests and benchmarks: Fsmap answered by the no-rmap baseline (a scan of every extent map
  // and the chunk table), even on a filesystem that keeps the reverse map. Same contract as Fsmap.
  Result<std::vector<FsmapRecord>> FsmapByScan(uint64_t start, uint64_t end,
                                               const std::optional<FsmapKey>& after, size_t max);

 private:
  FsImpl(device::Device* device, std::unique_ptr<device::Device> owned,
         std::unique_ptr<txn::Pool> pool, const MountOptions& options);

  // ---- TxnHooks (fs_impl.cc)
  void TxnBegan(txn::WriteTxn& txn) override;
  void Publish(const ReadOp& op, LayoutNotes& notes) override;
  Status BeforeCommit(WriteOp& op) override;
  void TxnCommitted() override;
  void TxnAborted() override;

  FsStats FillSpace(FsStats st);  // the space figures of StatFs (under the filesystem lock)

  device::Device* device_;
  std::unique_ptr<device::Device> owned_device_;
  std::unique_ptr<txn::Pool> pool_;
  MountOptions options_;
  bool has_rmap_ = false;
  bool has_reflink_ = false;
  Rmap rmap_;
  DataSpace data_;
  PoisonIndex poison_;
  NodeBudget budget_;
  ExtentMap extents_;
  Remapper remap_;
  FileData files_;
  Reflink reflink_;
  Namespace names_;
  Owners owners_;
  OpRunner runner_;
  Layouts layouts_;
  MediaFailures media_;
  Scrubber* scrubber_ = nullptr;  // check and repair (src/scrub); may be null
};

}  // namespace daxfs::fs
