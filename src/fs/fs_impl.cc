// Mount, format, the operation scaffolding (read and write operations, commits, durability,
// shutdown) and inode helpers of the filesystem engine.
#include "fs/fs_impl.h"

#include <fmt/core.h>

#include <algorithm>
#include <chrono>

#include "base/log.h"
#include "format/btree_node.h"
#include "fs/inodes.h"
#include "fs/rmap.h"

namespace daxfs {

// ---- The public factories.

Status Filesystem::Format(const std::string& path, const FormatOptions& options) {
  ASSIGN_OR_RETURN(auto dev, device::OpenDevice(path));
  return fs::FsImpl::FormatDevice(dev.get(), options).WithContext(path);
}

Status Filesystem::Format(device::Device* device, const FormatOptions& options) {
  return fs::FsImpl::FormatDevice(device, options);
}

namespace fs {

using format::Inode;
using format::TreeId;

namespace {

Status NoScrubber() {
  return Status::NotSupported("this mount has no checker (mount through src/scrub)");
}

void RegisterTrees(txn::Pool* pool) {
  for (const FsTreeDef& def : FsTrees()) pool->RegisterTree(def.spec);
}

// Format's one transaction: no data space yet, no mappings; its body adds the rmap records.
class FormatHooks final : public TxnHooks {
  void TxnBegan(txn::WriteTxn&) override {}
  void Publish(const ReadOp&, LayoutNotes&) override {}
  Status BeforeCommit(WriteOp&) override { return Status::Ok(); }
  void TxnCommitted() override {}
  void TxnAborted() override {}
  bool WantsCommit() const override { return false; }
};

}  // namespace

// ---- Format and mount.

Status FsImpl::FormatDevice(device::Device* device, const FormatOptions& options) {
  if (options.reflink && !options.rmap) {
    return Status::Invalid("reflink needs the reverse map (rmap); enable rmap or disable reflink");
  }
  uint64_t ro_compat = (options.rmap ? format::feature::kRoCompatRmap : 0) |
                       (options.reflink ? format::feature::kRoCompatReflink : 0) |
                       format::feature::kRoCompatPosix;
  ASSIGN_OR_RETURN(auto pool, txn::Pool::Format(device, {.chunk_size = options.chunk_size,
                                                         .label = options.label,
                                                         .ro_compat = ro_compat,
                                                         .metadata_dup = options.metadata_dup}));
  RegisterTrees(pool.get());
  FormatHooks hooks;
  OpRunner runner(pool.get(), device, MountOptions{}, options.rmap, options.rmap && options.reflink,
                  &hooks);
  RETURN_IF_ERROR(runner.Write([&](WriteOp& op) -> Status {
    int64_t now = NowNs();
    Inode root{.ino = format::kRootIno,
               .type = format::FileType::kDirectory,
               .mode = 0755,
               .nlink = 2,
               .atime_ns = now,
               .mtime_ns = now,
               .ctime_ns = now,
               .btime_ns = now,
               .parent = format::kRootIno};
    RETURN_IF_ERROR(op.writer(FsTree::kInodes).Insert(InodeKey(root.ino), InodeValue(root).bytes));
    RETURN_IF_ERROR(Inodes::CreateHeader(op));  // next number 2, one directory
    if (!options.rmap) return Status::Ok();
    return Rmap::AddFormatRecords(op, pool->superblock());
  }));
  return runner.Unmount();  // closes the pool
}

Result<std::unique_ptr<FsImpl>> FsImpl::Mount(device::Device* device,
                                              std::unique_ptr<device::Device> owned,
                                              const MountOptions& options, Scrubber* scrubber) {
  ASSIGN_OR_RETURN(auto pool,
                   txn::Pool::Open(device, {.read_only = options.read_only,
                                            .verify_every_read = options.verify_every_read}));
  RegisterTrees(pool.get());
  std::vector<device::BadRange> damage = pool->MetadataDamage();
  std::unique_ptr<FsImpl> fs(new FsImpl(device, std::move(owned), std::move(pool), options));
  fs->scrubber_ = scrubber;
  std::vector<uint64_t> retired_slots;
  Status root = fs->runner_.ReadForUpdate([&](const ReadOp& op) -> Status {
    Result<Inode> r = Inodes::Get(op, format::kRootIno);
    if (!r.ok()) {
      return r.status().IsNotFound() ? Status::Corruption("the root directory (inode 1) is missing")
                                     : r.status();
    }
    if (r->type != format::FileType::kDirectory) {
      return Status::Corruption("inode 1 (the root) is not a directory");
    }
    RETURN_IF_ERROR(fs->data_.Rebuild(op));
    RETURN_IF_ERROR(fs->poison_.ExcludeBadFromDataSpace(op));
    ASSIGN_OR_RETURN(retired_slots, fs->repairs_.LoadAtMount(op));
    return Status::Ok();
  });
  if (root.ok() && !retired_slots.empty()) {
    // Slots a repair took out of service: the pool does not keep them, the poison tree does.
    Status retired = fs->pool_->RetireNodes(retired_slots);
    if (!retired.ok())
      base::Log(base::LogLevel::kError, "retiring metadata slots: {}", retired.ToString());
  }
  if (!damage.empty()) {
    if (!root.ok())
      base::Log(base::LogLevel::kError, "mount with metadata damage: {}", root.ToString());
    fs->HandleMetadataDamageAtMount(damage);
    if (!root.ok() && !fs->runner_.read_only()) {
      fs->runner_.Exclusive([&] { fs->runner_.ShutDown(root); });
    }
    if (fs->runner_.read_only()) return fs;
  }
  RETURN_IF_ERROR(root);
  // Repairs found by the mount (a bad copy on the device's list or failing its checksum) are
  // made durable now, with their poison records.
  fs->repairs_.Absorb(fs->pool_->TakeRepairEvents());
  if (fs->WantsCommit()) {
    Status repaired = fs->runner_.CommitIfWanted();
    if (!repaired.ok())
      base::Log(base::LogLevel::kError, "metadata repair at mount: {}", repaired.ToString());
  }
  if (!fs->read_only()) RETURN_IF_ERROR(fs->MountWrites());
  return fs;
}

void FsImpl::HandleMetadataDamageAtMount(const std::vector<device::BadRange>& damage) {
  std::string why;
  if (!pool_->metadata_dup()) {
    why = fmt::format(
        "media error in metadata at device offset {} (chunk {}): filesystem shut down read-only",
        damage[0].offset, damage[0].offset / pool_->superblock().chunk_size);
  } else {
    // Every hit was queued by the pool's mount already; this finds the nodes with no good copy.
    for (const device::BadRange& r : damage) {
      txn::MetadataFailure f = pool_->NoteMetadataFailure(r.offset, r.length);
      if (!f.repairable()) {
        why = fmt::format(
            "media error in metadata at device offset {} (chunk {}): {}: filesystem "
            "shut down read-only",
            r.offset, r.offset / pool_->superblock().chunk_size, f.lost[0]);
        break;
      }
    }
    if (why.empty() && pool_->read_only() && !options_.read_only) {
      why = fmt::format(
          "media error in metadata at device offset {} (chunk {}): a tree could not "
          "be walked: filesystem shut down read-only",
          damage[0].offset, damage[0].offset / pool_->superblock().chunk_size);
    }
  }
  if (why.empty()) return;
  runner_.Exclusive([&] { runner_.ShutDown(Status::IoError(why)); });
}

// An image made before the inode table's header gets one (and ro_compat posix, so older builds
// mount it read-only from now on), in one operation.
Status FsImpl::MountWrites() {
  bool has_header = false;
  RETURN_IF_ERROR(runner_.Read([&](const ReadOp& op) -> Status {
    Result<format::InodeTableHeader> h = Inodes::Header(op, false);
    if (!h.ok() && !h.status().IsNotFound()) return h.status();
    has_header = h.ok();
    return Status::Ok();
  }));
  if (!has_header) {
    RETURN_IF_ERROR(runner_.Write([&](WriteOp& op) -> Status {
      RETURN_IF_ERROR(budget_.ReserveNodes(op, 1));
      op.txn().AddRoCompat(format::feature::kRoCompatPosix);
      return Inodes::CreateHeader(op);
    }));
  }
  return ReclaimOrphans();
}

Status FsImpl::ReclaimOrphans() {
  std::vector<Ino> orphans;
  RETURN_IF_ERROR(runner_.Read([&](const ReadOp& op) -> Status {
    ASSIGN_OR_RETURN(orphans, Orphans::List(op));
    return Status::Ok();
  }));
  for (Ino ino : orphans) {
    RETURN_IF_ERROR(runner_.Write([&](WriteOp& op) { return names_.FreeOrphan(op, ino); }));
  }
  return Status::Ok();
}

void FsImpl::ReleaseAllForUnmount() {
  orphans_.DropAll();
  if (runner_.unmounted() || read_only()) return;
  Status s = ReclaimOrphans();  // what fails here stays for the next mount to free
  if (!s.ok()) base::Log(base::LogLevel::kError, "freeing orphans at unmount: {}", s.ToString());
}

Status FsImpl::Retain(Ino ino) {
  return runner_.Read([&](const ReadOp& op) -> Status {
    RETURN_IF_ERROR(Inodes::Get(op, ino).status());
    orphans_.Retain(ino);  // under the operation: no unlink runs between the check and this
    return Status::Ok();
  });
}

// The last reference of an orphan frees it. On a read-only mount it stays for the next mount.
Status FsImpl::Release(Ino ino) {
  ASSIGN_OR_RETURN(bool last, orphans_.Release(ino));
  if (!last) return Status::Ok();
  bool orphan = false;
  RETURN_IF_ERROR(runner_.Read([&](const ReadOp& op) -> Status {
    ASSIGN_OR_RETURN(orphan, Orphans::IsOrphan(op, ino));
    return Status::Ok();
  }));
  if (!orphan || read_only()) return Status::Ok();
  return runner_.Write([&](WriteOp& op) { return names_.FreeOrphan(op, ino); });
}

namespace {
bool HasFeature(const txn::Pool& pool, uint64_t bit) { return pool.superblock().ro_compat & bit; }
}  // namespace

FsImpl::FsImpl(device::Device* device, std::unique_ptr<device::Device> owned,
               std::unique_ptr<txn::Pool> pool, const MountOptions& options)
    : device_(device),
      owned_device_(std::move(owned)),
      pool_(std::move(pool)),
      options_(options),
      has_rmap_(HasFeature(*pool_, format::feature::kRoCompatRmap)),
      has_reflink_(has_rmap_ && HasFeature(*pool_, format::feature::kRoCompatReflink)),
      rmap_(pool_.get()),
      data_(pool_.get()),
      poison_(device, &data_),
      budget_(pool_.get(), &poison_),
      repairs_(pool_.get(), device, &poison_, &budget_),
      extents_(device, &data_, &poison_),
      remap_(&extents_, &poison_),
      files_(device, &data_, &poison_, &budget_, &extents_, &remap_),
      reflink_(has_reflink_, &files_, &remap_, &budget_),
      names_(&files_, &budget_, &extents_, &orphans_),
      xattrs_(&budget_),
      owners_(pool_.get(), &poison_),
      runner_(pool_.get(), device, options, has_rmap_, has_reflink_, this),
      layouts_(&runner_, device, &extents_, &poison_, &files_, &budget_),
      media_({.runner = &runner_,
              .pool = pool_.get(),
              .device = device,
              .data = &data_,
              .poison = &poison_,
              .budget = &budget_,
              .owners = &owners_,
              .names = &names_,
              .layouts = &layouts_,
              .repairs = &repairs_}) {}

FsImpl::~FsImpl() {
  if (runner_.unmounted()) return;
  ReleaseAllForUnmount();
  Status s = runner_.Unmount();
  if (!s.ok()) base::Log(base::LogLevel::kError, "unmount at close failed: {}", s.ToString());
}

// ---- Around transactions (TxnHooks).

void FsImpl::TxnBegan(txn::WriteTxn&) { data_.TxnBegan(); }

Status FsImpl::BeforeCommit(WriteOp& op) {
  // Metadata repairs first (a relocation may type METADATA chunks), with their poison records.
  if (pool_->metadata_dup()) RETURN_IF_ERROR(repairs_.BeforeCommit(op));
  // New METADATA chunks get their rmap records.
  return has_rmap_ ? rmap_.ReconcileMetadataChunks(op) : Status::Ok();
}

void FsImpl::TxnCommitted() {
  data_.TxnCommitted();
  repairs_.Committed();
}

void FsImpl::TxnAborted() {
  data_.TxnAborted();
  repairs_.Aborted();
}

Status FsImpl::Fsync(Ino ino) {
  RETURN_IF_ERROR(
      runner_.Read([&](const ReadOp& op) -> Status { return Inodes::Get(op, ino).status(); }));
  return Sync();
}

Status FsImpl::Sync() { return runner_.Sync(); }

Status FsImpl::Unmount() {
  ReleaseAllForUnmount();
  return runner_.Unmount();
}

Status FsImpl::EnableMetadataDup() {
  RETURN_IF_ERROR(runner_.Exclusive([&] { return runner_.CheckWritable("metadata twins"); }));
  if (pool_->metadata_dup()) return Status::Exists("metadata twins are on already");
  // Alone in its transaction (its error aborts it); the rmap's records of the twin chunks go into
  // the same commit (BeforeCommit).
  RETURN_IF_ERROR(runner_.Sync());
  RETURN_IF_ERROR(runner_.Write([&](WriteOp& op) { return op.txn().EnableMetadataDup(); }));
  return runner_.Sync();
}

Result<FsStats> FsImpl::StatFs() {
  FsStats st;
  Status s = runner_.Read([&](const ReadOp& op) { return Inodes::CountByType(op, &st); });
  RETURN_IF_ERROR(s);
  return runner_.Exclusive([&] { return FillSpace(st); });
}

FsStats FsImpl::FillSpace(FsStats st) {
  txn::SpaceInfo space = pool_->Space();
  format::Superblock sb = pool_->superblock();
  uint64_t chunk_blocks = sb.chunk_blocks();
  st.total_blocks = sb.total_blocks();
  uint64_t free_chunk_blocks = space.free_chunks * chunk_blocks;
  st.free_blocks =
      data_.blocks().free_blocks() + data_.blocks().deferred_blocks() + free_chunk_blocks;
  st.metadata_blocks_used = space.nodes.used + space.nodes.fresh + 2;
  st.data_blocks_used = space.data_chunks * chunk_blocks - data_.blocks().free_blocks() -
                        data_.blocks().deferred_blocks();
  st.generation = sb.generation;
  return st;
}

// ---- Names.

namespace {

// Runs a read operation that yields an inode and reports it as attributes.
template <typename Body>
Result<Attr> ReadAttr(OpRunner& runner, Body&& body) {
  Attr out;
  RETURN_IF_ERROR(runner.Read([&](const ReadOp& op) -> Status {
    ASSIGN_OR_RETURN(format::Inode n, body(op));
    out = Inodes::ToAttr(n);
    return Status::Ok();
  }));
  return out;
}

template <typename Body>
Result<Attr> WriteAttr(OpRunner& runner, Body&& body) {
  Attr out;
  RETURN_IF_ERROR(runner.Write([&](WriteOp& op) -> Status {
    ASSIGN_OR_RETURN(format::Inode n, body(op));
    out = Inodes::ToAttr(n);
    return Status::Ok();
  }));
  return out;
}

}  // namespace

Result<Attr> FsImpl::Lookup(Ino dir, std::string_view name) {
  return ReadAttr(runner_, [&](const ReadOp& op) { return names_.Lookup(op, dir, name); });
}

Result<Attr> FsImpl::Resolve(std::string_view path, bool follow) {
  return ReadAttr(runner_, [&](const ReadOp& op) { return names_.Resolve(op, path, follow); });
}

Result<Attr> FsImpl::GetAttr(Ino ino) {
  return ReadAttr(runner_, [&](const ReadOp& op) { return Inodes::Get(op, ino); });
}

Result<Attr> FsImpl::SetAttr(Ino ino, const SetAttrRequest& request) {
  return WriteAttr(runner_, [&](WriteOp& op) { return names_.SetAttr(op, ino, request); });
}

namespace {
constexpr int64_t kRelatimeNs = int64_t{24} * 3600 * 1000000000;
bool AtimeIsStale(const Inode& n, int64_t now) {
  return n.atime_ns <= n.mtime_ns || n.atime_ns <= n.ctime_ns || now - n.atime_ns >= kRelatimeNs;
}
}  // namespace

Result<bool> FsImpl::TouchAtime(Ino ino) {
  bool wrote = false;
  bool stale = false;
  RETURN_IF_ERROR(runner_.Read([&](const ReadOp& op) -> Status {
    ASSIGN_OR_RETURN(Inode n, Inodes::Get(op, ino));
    stale = !runner_.read_only() && AtimeIsStale(n, NowNs());
    return Status::Ok();
  }));
  if (!stale) return false;  // the common case: a shared read, no transaction
  RETURN_IF_ERROR(runner_.PlanThenWrite(
      [&](const ReadOp& op) -> Result<bool> {
        ASSIGN_OR_RETURN(Inode n, Inodes::Get(op, ino));
        return !runner_.read_only() && AtimeIsStale(n, NowNs());
      },
      [&](WriteOp& op) -> Status {
        ASSIGN_OR_RETURN(Inode n, Inodes::Get(op, ino));
        RETURN_IF_ERROR(budget_.ReserveNodes(op, 1));
        n.atime_ns = std::max(NowNs(), n.atime_ns);
        RETURN_IF_ERROR(Inodes::Put(op, n));
        wrote = true;
        return Status::Ok();
      }));
  return wrote;
}

Result<Attr> FsImpl::Create(Ino dir, std::string_view name, uint32_t mode) {
  return Create(dir, name, mode, Credentials{});
}

Result<Attr> FsImpl::Mkdir(Ino dir, std::string_view name, uint32_t mode) {
  return Mkdir(dir, name, mode, Credentials{});
}

Result<Attr> FsImpl::Symlink(Ino dir, std::string_view name, std::string_view target) {
  return Symlink(dir, name, target, Credentials{});
}

Result<Attr> FsImpl::Create(Ino dir, std::string_view name, uint32_t mode,
                            const Credentials& cred) {
  return WriteAttr(runner_, [&](WriteOp& op) {
    return names_.Create(op, dir, name, format::FileType::kRegular, mode, {}, cred);
  });
}

Result<Attr> FsImpl::Mkdir(Ino dir, std::string_view name, uint32_t mode, const Credentials& cred) {
  return WriteAttr(runner_, [&](WriteOp& op) {
    return names_.Create(op, dir, name, format::FileType::kDirectory, mode, {}, cred);
  });
}

Result<Attr> FsImpl::Symlink(Ino dir, std::string_view name, std::string_view target,
                             const Credentials& cred) {
  return WriteAttr(runner_, [&](WriteOp& op) {
    return names_.Create(op, dir, name, format::FileType::kSymlink, 0777, target, cred);
  });
}

Result<Attr> FsImpl::Mknod(Ino dir, std::string_view name, FileType type, uint32_t mode,
                           uint64_t rdev, const Credentials& cred) {
  const auto t = static_cast<format::FileType>(type);
  if (!format::IsSpecial(t) || static_cast<uint8_t>(type) > 7) {
    return Status::Invalid(fmt::format("mknod '{}': not a FIFO, socket or device node type ({})",
                                       name, static_cast<int>(type)));
  }
  if (mode & ~07777u) {
    return Status::Invalid(fmt::format("mknod '{}': mode 0{:o} has bits outside 07777", name, mode));
  }
  if (rdev != 0 && !format::IsDevice(t)) {
    return Status::Invalid(
        fmt::format("mknod '{}': a {} has no device number", name, format::FileTypeName(t)));
  }
  return WriteAttr(runner_, [&](WriteOp& op) {
    return names_.Create(op, dir, name, t, mode, {}, cred, rdev);
  });
}

Result<std::string> FsImpl::ReadLink(Ino ino) {
  std::string out;
  RETURN_IF_ERROR(runner_.Read([&](const ReadOp& op) -> Status {
    ASSIGN_OR_RETURN(out, names_.ReadLink(op, ino));
    return Status::Ok();
  }));
  return out;
}

Result<Attr> FsImpl::Link(Ino ino, Ino new_dir, std::string_view new_name) {
  return WriteAttr(runner_, [&](WriteOp& op) { return names_.Link(op, ino, new_dir, new_name); });
}

Status FsImpl::Unlink(Ino dir, std::string_view name) {
  return runner_.Write([&](WriteOp& op) { return names_.Unlink(op, dir, name); });
}

Status FsImpl::Rmdir(Ino dir, std::string_view name) {
  return runner_.Write([&](WriteOp& op) { return names_.Rmdir(op, dir, name); });
}

Status FsImpl::Rename(Ino old_dir, std::string_view old_name, Ino new_dir,
                      std::string_view new_name) {
  return Rename(old_dir, old_name, new_dir, new_name, 0);
}

Status FsImpl::Rename(Ino old_dir, std::string_view old_name, Ino new_dir,
                      std::string_view new_name, uint32_t flags) {
  return runner_.Write(
      [&](WriteOp& op) { return names_.Rename(op, old_dir, old_name, new_dir, new_name, flags); });
}

// Entries are gathered in batches under the lock and handed to `fn` without it, so `fn` may call
// back into the filesystem.
Status FsImpl::ReadDir(Ino dir, uint64_t cookie, const std::function<bool(const DirEntry&)>& fn) {
  for (bool first = true;; first = false) {
    std::vector<DirEntry> batch;
    Status s = runner_.Read([&](const ReadOp& op) {
      return names_.ReadDirBatch(op, dir, cookie, Namespace::kReadDirBatch, &batch);
    });
    if (!s.ok()) return (first || !s.IsNotFound()) ? s : Status::Ok();  // removed meanwhile: done
    for (const DirEntry& e : batch) {
      if (!fn(e)) return Status::Ok();
      cookie = e.cookie;
    }
    if (batch.size() < Namespace::kReadDirBatch) return Status::Ok();
  }
}

// ---- Extended attributes.

Status FsImpl::SetXattr(Ino ino, std::string_view name, std::span<const uint8_t> value,
                        int flags) {
  return runner_.Write([&](WriteOp& op) { return xattrs_.Set(op, ino, name, value, flags); });
}

Result<size_t> FsImpl::GetXattr(Ino ino, std::string_view name, std::span<uint8_t> out) {
  size_t size = 0;
  RETURN_IF_ERROR(runner_.Read([&](const ReadOp& op) -> Status {
    ASSIGN_OR_RETURN(size, xattrs_.Get(op, ino, name, out));
    return Status::Ok();
  }));
  return size;
}

Result<std::vector<std::string>> FsImpl::ListXattr(Ino ino) {
  std::vector<std::string> names;
  RETURN_IF_ERROR(runner_.Read([&](const ReadOp& op) -> Status {
    ASSIGN_OR_RETURN(names, xattrs_.List(op, ino));
    return Status::Ok();
  }));
  return names;
}

Status FsImpl::RemoveXattr(Ino ino, std::string_view name) {
  return runner_.Write([&](WriteOp& op) { return xattrs_.Remove(op, ino, name); });
}

Result<std::string> FsImpl::PathOf(Ino ino) {
  std::string path;
  RETURN_IF_ERROR(runner_.Read([&](const ReadOp& op) -> Status {
    ASSIGN_OR_RETURN(path, names_.PathOf(op, ino));
    return Status::Ok();
  }));
  return path;
}

// ---- Owners.

Result<std::vector<FsmapRecord>> FsImpl::Fsmap(uint64_t start, uint64_t end,
                                               const std::optional<FsmapKey>& after, size_t max) {
  ASSIGN_OR_RETURN(FsmapQuery q, owners_.MakeQuery(start, end, after, max));
  std::vector<FsmapRecord> out;
  RETURN_IF_ERROR(runner_.Read([&](const ReadOp& op) -> Status {
    ASSIGN_OR_RETURN(out, has_rmap_ ? owners_.FromRmap(op, q) : owners_.ByFullScan(op, q));
    return Status::Ok();
  }));
  return out;
}

Result<std::vector<FsmapRecord>> FsImpl::FsmapByFullScan(uint64_t start, uint64_t end,
                                                         const std::optional<FsmapKey>& after,
                                                         size_t max) {
  ASSIGN_OR_RETURN(FsmapQuery q, owners_.MakeQuery(start, end, after, max));
  std::vector<FsmapRecord> out;
  RETURN_IF_ERROR(runner_.Read([&](const ReadOp& op) -> Status {
    ASSIGN_OR_RETURN(out, owners_.ByFullScan(op, q));
    return Status::Ok();
  }));
  return out;
}

// ---- Check and repair (the scrub layer's).

ScrubAccess FsImpl::scrub_access() {
  return {.runner = &runner_,
          .pool = pool_.get(),
          .data = &data_,
          .poison = &poison_,
          .owners = &owners_,
          .repairs = &repairs_,
          .has_rmap = has_rmap_,
          .has_reflink = has_reflink_};
}

Result<FsCheckResult> FsImpl::Check() {
  if (scrubber_ == nullptr) return NoScrubber();
  return scrubber_->Check(scrub_access());
}

Result<ScrubReport> FsImpl::Scrub(const ScrubOptions& options, const ScrubRoute& route) {
  if (scrubber_ == nullptr) return NoScrubber();
  return scrubber_->Scrub(scrub_access(), options, route);
}

Result<RepairReport> FsImpl::RebuildReverseMaps() {
  if (scrubber_ == nullptr) return NoScrubber();
  return scrubber_->RebuildReverseMaps(scrub_access());
}

// ---- Media failures and what the DAX layer needs.

Result<MediaFailureRecord> FsImpl::RecordMediaFailure(uint64_t offset, uint64_t length,
                                                      uint32_t flags) {
  ASSIGN_OR_RETURN(DeviceRange range, CheckFailedRange(*device_, offset, length));
  return media_.Record(range, flags, nullptr);
}

Result<MediaFailureRecord> FsImpl::RecordCheckedFailure(const DeviceRange& range, uint32_t flags,
                                                        FailurePlanObserver* observer) {
  return media_.Record(range, flags, observer);
}

Result<MediaErrorList> FsImpl::MediaErrors() { return media_.List(); }

Result<std::vector<RangePiece>> FsImpl::ClassifyRange(uint64_t offset, uint64_t length) {
  return media_.Classify(offset, length);
}

void FsImpl::SetMappingObserver(MappingObserver* observer) {
  runner_.Exclusive([&] { runner_.SetObserver(observer); });
}

void FsImpl::SetRepairObserver(RepairObserver* observer) {
  runner_.Exclusive([&] { repairs_.SetObserver(observer); });
}

Status FsImpl::PrepareMapping(Ino ino, uint64_t offset, uint64_t length, bool writable,
                              const std::function<Status(const MapLayout&)>& install) {
  return layouts_.PrepareMapping(ino, offset, length, writable, install);
}

void FsImpl::Publish(const ReadOp& op, LayoutNotes& notes) { layouts_.Publish(op, notes); }

// ---- File data.

Result<size_t> FsImpl::Read(Ino ino, uint64_t offset, std::span<uint8_t> out) {
  size_t read = 0;
  RETURN_IF_ERROR(runner_.Read([&](const ReadOp& op) -> Status {
    ASSIGN_OR_RETURN(read, files_.Read(op, ino, offset, out));
    return Status::Ok();
  }));
  return read;
}

Result<size_t> FsImpl::ReadPieces(Ino ino, uint64_t offset, uint64_t length,
                                  const std::function<Status(std::span<const iovec>)>& consume) {
  size_t read = 0;
  RETURN_IF_ERROR(runner_.Read([&](const ReadOp& op) -> Status {
    std::vector<iovec> pieces;
    ASSIGN_OR_RETURN(read, files_.ReadPieces(op, ino, offset, length, &pieces));
    return consume(pieces);
  }));
  return read;
}

Result<size_t> FsImpl::Write(Ino ino, uint64_t offset, std::span<const uint8_t> data) {
  if (data.empty()) {  // no change, no commit: only the checks
    RETURN_IF_ERROR(
        runner_.Read([&](const ReadOp& op) -> Status { return FileData::CheckWritable(op, ino); }));
    return size_t{0};
  }
  RETURN_IF_ERROR(
      runner_.Write([&](WriteOp& op) -> Status { return files_.Write(op, ino, offset, data); }));
  return data.size();
}

Status FsImpl::Truncate(Ino ino, uint64_t size) {
  return runner_.Write([&](WriteOp& op) -> Status { return files_.Truncate(op, ino, size); });
}

Status FsImpl::Fallocate(Ino ino, uint32_t mode, uint64_t offset, uint64_t length) {
  RETURN_IF_ERROR(FileData::CheckFallocate(mode, offset, length));
  return runner_.Write(
      [&](WriteOp& op) -> Status { return files_.Fallocate(op, ino, mode, offset, length); });
}

Result<uint64_t> FsImpl::SeekData(Ino ino, uint64_t offset) {
  uint64_t found = 0;
  RETURN_IF_ERROR(runner_.Read([&](const ReadOp& op) -> Status {
    ASSIGN_OR_RETURN(found, files_.SeekData(op, ino, offset));
    return Status::Ok();
  }));
  return found;
}

Result<uint64_t> FsImpl::SeekHole(Ino ino, uint64_t offset) {
  uint64_t found = 0;
  RETURN_IF_ERROR(runner_.Read([&](const ReadOp& op) -> Status {
    ASSIGN_OR_RETURN(found, files_.SeekHole(op, ino, offset));
    return Status::Ok();
  }));
  return found;
}

Result<std::vector<FileExtent>> FsImpl::Bmap(Ino ino) {
  std::vector<FileExtent> out;
  RETURN_IF_ERROR(runner_.Read([&](const ReadOp& op) -> Status {
    ASSIGN_OR_RETURN(out, files_.Bmap(op, ino));
    return Status::Ok();
  }));
  return out;
}

// ---- Reflink.

Status FsImpl::Clone(Ino src, Ino dst) {
  RETURN_IF_ERROR(reflink_.Available());
  return runner_.Write([&](WriteOp& op) -> Status { return reflink_.Clone(op, src, dst); });
}

Status FsImpl::CloneRange(Ino src, uint64_t src_offset, Ino dst, uint64_t dst_offset,
                          uint64_t length) {
  RETURN_IF_ERROR(reflink_.Available());
  return runner_.Write([&](WriteOp& op) -> Status {
    return reflink_.CloneRange(op, src, src_offset, dst, dst_offset, length);
  });
}

Result<DedupeResult> FsImpl::Dedupe(Ino src, uint64_t src_offset, Ino dst, uint64_t dst_offset,
                                    uint64_t length) {
  RETURN_IF_ERROR(reflink_.Available());
  DedupeResult result;
  RETURN_IF_ERROR(runner_.Write([&](WriteOp& op) -> Status {
    return reflink_.Dedupe(op, src, src_offset, dst, dst_offset, length, &result);
  }));
  return result;
}

Status FsImpl::Unshare(Ino ino, uint64_t offset, uint64_t length) {
  RETURN_IF_ERROR(reflink_.Available());
  RETURN_IF_ERROR(Reflink::CheckUnshare(offset, length));
  return runner_.Write(
      [&](WriteOp& op) -> Status { return reflink_.Unshare(op, ino, offset, length); });
}

Result<uint64_t> FsImpl::CopyFileRange(Ino src, uint64_t src_offset, Ino dst, uint64_t dst_offset,
                                       uint64_t length) {
  uint64_t copied = 0;
  RETURN_IF_ERROR(runner_.Write([&](WriteOp& op) -> Status {
    return reflink_.CopyFileRange(op, src, src_offset, dst, dst_offset, length, &copied);
  }));
  return copied;
}

}  // namespace fs
}  // namespace daxfs
