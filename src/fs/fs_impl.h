// The filesystem engine behind include/daxfs/filesystem.h and fs/face.h: mount, format, the
// operation entry points (each runs one operation through OpRunner, op_runner.h, and delegates to
// a module with the context, op.h), commit and durability. The modules own the logic and state
// (docs/fs-map.md). Seen only by the fs layer, its tests and the scrub layer; the layers above
// see fs/face.h. Uses the txn, btree, space, format and device layers.
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
#include "fs/face.h"
#include "fs/file_data.h"
#include "fs/inodes.h"
#include "fs/layouts.h"
#include "fs/mapping_hooks.h"
#include "fs/media_failures.h"
#include "fs/metadata_repairs.h"
#include "fs/namespace.h"
#include "fs/xattrs.h"
#include "fs/node_budget.h"
#include "fs/op.h"
#include "fs/op_runner.h"
#include "fs/orphans.h"
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

class FsImpl final : public FsFace, private TxnHooks {
 public:
  static Status FormatDevice(device::Device* device, const FormatOptions& options);
  // `owned` (may be null) is kept alive as long as the filesystem.
  static Result<std::unique_ptr<FsImpl>> Mount(device::Device* device,
                                               std::unique_ptr<device::Device> owned,
                                               const MountOptions& options,
                                               Scrubber* scrubber = nullptr);
  ~FsImpl() override;

  // ---- Names and inodes (Namespace, namespace.h)
  Result<Attr> Lookup(Ino dir, std::string_view name) override;
  Result<Attr> Resolve(std::string_view path, bool follow) override;
  Result<Attr> GetAttr(Ino ino) override;
  Status Retain(Ino ino) override;
  Status Release(Ino ino) override;
  Result<Attr> SetAttr(Ino ino, const SetAttrRequest& request) override;
  Result<bool> TouchAtime(Ino ino) override;
  Result<Attr> Create(Ino dir, std::string_view name, uint32_t mode) override;
  Result<Attr> Mkdir(Ino dir, std::string_view name, uint32_t mode) override;
  Result<Attr> Symlink(Ino dir, std::string_view name, std::string_view target) override;
  Result<Attr> Create(Ino dir, std::string_view name, uint32_t mode,
                      const Credentials& cred) override;
  Result<Attr> Mkdir(Ino dir, std::string_view name, uint32_t mode,
                     const Credentials& cred) override;
  Result<Attr> Mknod(Ino dir, std::string_view name, FileType type, uint32_t mode, uint64_t rdev,
                     const Credentials& cred) override;
  Result<Attr> Symlink(Ino dir, std::string_view name, std::string_view target,
                       const Credentials& cred) override;
  Result<std::string> ReadLink(Ino ino) override;
  Result<Attr> Link(Ino ino, Ino new_dir, std::string_view new_name) override;
  Status Unlink(Ino dir, std::string_view name) override;
  Status Rmdir(Ino dir, std::string_view name) override;
  Status Rename(Ino old_dir, std::string_view old_name, Ino new_dir,
                std::string_view new_name) override;
  Status Rename(Ino old_dir, std::string_view old_name, Ino new_dir, std::string_view new_name,
                uint32_t flags) override;
  Status ReadDir(Ino dir, uint64_t cookie, const std::function<bool(const DirEntry&)>& fn) override;

  // ---- Extended attributes (Xattrs, xattrs.h)
  Status SetXattr(Ino ino, std::string_view name, std::span<const uint8_t> value,
                  int flags) override;
  Result<size_t> GetXattr(Ino ino, std::string_view name, std::span<uint8_t> out) override;
  Result<std::vector<std::string>> ListXattr(Ino ino) override;
  Status RemoveXattr(Ino ino, std::string_view name) override;

  // ---- File data (FileData, file_data.h)
  Result<size_t> Read(Ino ino, uint64_t offset, std::span<uint8_t> out) override;
  Result<size_t> ReadPieces(Ino ino, uint64_t offset, uint64_t length,
                            const std::function<Status(std::span<const iovec>)>& consume) override;
  Result<size_t> Write(Ino ino, uint64_t offset, std::span<const uint8_t> data) override;
  Status Truncate(Ino ino, uint64_t size) override;
  Status Fallocate(Ino ino, uint32_t mode, uint64_t offset, uint64_t length) override;
  Result<uint64_t> SeekData(Ino ino, uint64_t offset) override;
  Result<uint64_t> SeekHole(Ino ino, uint64_t offset) override;
  Result<std::vector<FileExtent>> Bmap(Ino ino) override;

  // ---- Reflink (Reflink, reflink.h)
  Status Clone(Ino src, Ino dst) override;
  Status CloneRange(Ino src, uint64_t src_offset, Ino dst, uint64_t dst_offset,
                    uint64_t length) override;
  Result<DedupeResult> Dedupe(Ino src, uint64_t src_offset, Ino dst, uint64_t dst_offset,
                              uint64_t length) override;
  Status Unshare(Ino ino, uint64_t offset, uint64_t length) override;
  Result<uint64_t> CopyFileRange(Ino src, uint64_t src_offset, Ino dst, uint64_t dst_offset,
                                 uint64_t length) override;

  // ---- Owners (Owners, owners.h; Namespace for PathOf)
  Result<std::vector<FsmapRecord>> Fsmap(uint64_t start, uint64_t end,
                                         const std::optional<FsmapKey>& after, size_t max) override;
  Result<std::string> PathOf(Ino ino) override;

  // ---- Durability and space (fs_impl.cc)
  Status Fsync(Ino ino) override;
  Status Sync() override;
  Result<FsStats> StatFs() override;
  Status Unmount() override;
  bool read_only() const override { return runner_.read_only(); }

  // ---- Check and repair (the Scrubber handed in at mount, src/scrub)
  Result<FsCheckResult> Check() override;
  Result<RepairReport> RebuildReverseMaps() override;

  // ---- Media failures (MediaFailures, media_failures.h)
  Result<MediaFailureRecord> RecordMediaFailure(uint64_t offset, uint64_t length,
                                                uint32_t flags) override;
  Result<MediaFailureRecord> RecordCheckedFailure(const DeviceRange& range, uint32_t flags,
                                                  FailurePlanObserver* observer) override;
  Result<MediaErrorList> MediaErrors() override;
  // The device bytes [offset, +length) cut by kind, by address (clipped to the device; a piece
  // past its end is kOutside). Runs its own read operation.
  Result<std::vector<RangePiece>> ClassifyRange(uint64_t offset, uint64_t length);

  // ---- The face to the layers above (face.h; Layouts, layouts.h; Owners)
  void SetMappingObserver(MappingObserver* observer) override;
  void SetRepairObserver(RepairObserver* observer) override;
  Result<ScrubReport> Scrub(const ScrubOptions& options, const ScrubRoute& route) override;
  Status PrepareMapping(Ino ino, uint64_t offset, uint64_t length, bool writable,
                        const std::function<Status(const MapLayout&)>& install) override;
  device::Device* device() const override { return device_; }
  bool has_rmap() const override { return has_rmap_; }
  Result<std::vector<FsmapRecord>> FsmapByFullScan(uint64_t start, uint64_t end,
                                                   const std::optional<FsmapKey>& after,
                                                   size_t max) override;

  bool has_reflink() const { return has_reflink_; }
  // Adds metadata twins to a filesystem made without them (Pool::EnableMetadataDup in a write
  // operation of its own, committed before it returns). EEXIST, ENOSPC, EROFS.
  Status EnableMetadataDup();
  // For the scrub layer: the runner and modules it checks and repairs through.
  ScrubAccess scrub_access();
  // For tests: the pool underneath (do not write through it).
  txn::Pool* pool() { return pool_.get(); }

 private:
  FsImpl(device::Device* device, std::unique_ptr<device::Device> owned,
         std::unique_ptr<txn::Pool> pool, const MountOptions& options);

  // ---- TxnHooks (fs_impl.cc)
  void TxnBegan(txn::WriteTxn& txn) override;
  void Publish(const ReadOp& op, LayoutNotes& notes) override;
  Status BeforeCommit(WriteOp& op) override;
  void TxnCommitted() override;
  void TxnAborted() override;
  bool WantsCommit() const override { return repairs_.WantsCommit(); }

  // Mount with bad bytes under metadata (`damage`): without twins, or when a node lost both
  // copies, read-only with the reason; with twins every other hit is queued for repair.
  void HandleMetadataDamageAtMount(const std::vector<device::BadRange>& damage);

  // What a writable mount does before it is handed out: an older image's upgrade, then every
  // orphan freed (the references of the last mount are gone).
  Status MountWrites();
  // Frees every orphan that nothing references, one operation each.
  Status ReclaimOrphans();
  // Before the pool closes (Unmount, the destructor): the references go, and their orphans.
  void ReleaseAllForUnmount();
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
  MetadataRepairs repairs_;
  ExtentMap extents_;
  Remapper remap_;
  FileData files_;
  Reflink reflink_;
  Orphans orphans_;  // open references (before names_, which uses them)
  Namespace names_;
  Xattrs xattrs_;
  Owners owners_;
  OpRunner runner_;
  Layouts layouts_;
  MediaFailures media_;
  Scrubber* scrubber_ = nullptr;  // check and repair (src/scrub); may be null
};

}  // namespace daxfs::fs
