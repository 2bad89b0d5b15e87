// Mount, format, the operation scaffolding (read and write operations, commits, durability,
// shutdown) and inode helpers of the filesystem engine.
#include "fs/fs_impl.h"
#include "fs/rmap.h"

#include <fmt/core.h>

#include <algorithm>
#include <chrono>

#include "base/log.h"
#include "format/btree_node.h"

namespace daxfs {

// ---- The public factories.

Status Filesystem::Format(const std::string& path, const FormatOptions& options) {
  ASSIGN_OR_RETURN(auto dev, device::OpenDevice(path));
  return fs::FsImpl::FormatDevice(dev.get(), options).WithContext(path);
}

Result<std::unique_ptr<Filesystem>> Filesystem::Open(const std::string& path,
                                                     const MountOptions& options) {
  ASSIGN_OR_RETURN(auto dev, device::OpenDevice(path, {.read_only = options.read_only}));
  device::Device* raw = dev.get();
  Result<std::unique_ptr<fs::FsImpl>> fs = fs::FsImpl::Mount(raw, std::move(dev), options);
  if (!fs.ok()) return fs.status().WithContext(path);
  return std::unique_ptr<Filesystem>(std::move(*fs));
}

Status Filesystem::Format(device::Device* device, const FormatOptions& options) {
  return fs::FsImpl::FormatDevice(device, options);
}

Result<std::unique_ptr<Filesystem>> Filesystem::Open(device::Device* device,
                                                     const MountOptions& options) {
  ASSIGN_OR_RETURN(auto fs, fs::FsImpl::Mount(device, nullptr, options));
  return std::unique_ptr<Filesystem>(std::move(fs));
}

namespace fs {

using format::Inode;
using format::TreeId;

namespace {

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
};

}  // namespace

// ---- Format and mount.

Status FsImpl::FormatDevice(device::Device* device, const FormatOptions& options) {
  if (options.reflink && !options.rmap) {
    return Status::Invalid("reflink needs the reverse map (rmap); enable rmap or disable reflink");
  }
  uint64_t ro_compat = (options.rmap ? format::feature::kRoCompatRmap : 0) |
                       (options.reflink ? format::feature::kRoCompatReflink : 0);
  ASSIGN_OR_RETURN(auto pool, txn::Pool::Format(device, {.chunk_size = options.chunk_size,
                                                         .label = options.label,
                                                         .ro_compat = ro_compat}));
  RegisterTrees(pool.get());
  FormatHooks hooks;
  OpRunner runner(pool.get(), device, MountOptions{}, options.rmap, options.rmap && options.reflink,
                  &hooks);
  RETURN_IF_ERROR(runner.Write([&](WriteOp& op) -> Status {
    int64_t now = NowNs();
    Inode root{.ino = format::kRootIno, .type = format::FileType::kDirectory, .mode = 0755,
               .nlink = 2, .atime_ns = now, .mtime_ns = now, .ctime_ns = now, .btime_ns = now,
               .parent = format::kRootIno};
    RETURN_IF_ERROR(op.writer(FsTree::kInodes).Insert(InodeKey(root.ino), InodeValue(root).bytes));
    if (!options.rmap) return Status::Ok();
    return Rmap::AddFormatRecords(op, pool->superblock());
  }));
  return runner.Unmount();  // closes the pool
}

Result<std::unique_ptr<FsImpl>> FsImpl::Mount(device::Device* device,
                                              std::unique_ptr<device::Device> owned,
                                              const MountOptions& options) {
  ASSIGN_OR_RETURN(auto pool, txn::Pool::Open(device, {.read_only = options.read_only,
                                                       .verify_every_read = options.verify_every_read}));
  RegisterTrees(pool.get());
  std::vector<device::BadRange> damage = pool->MetadataDamage();
  std::unique_ptr<FsImpl> fs(new FsImpl(device, std::move(owned), std::move(pool), options));
  Status root = fs->runner_.ReadForUpdate([&](const ReadOp& op) -> Status {
    Result<Inode> r = fs->GetInode(op, format::kRootIno);
    if (!r.ok()) {
      return r.status().IsNotFound() ? Status::Corruption("the root directory (inode 1) is missing")
                                     : r.status();
    }
    if (r->type != format::FileType::kDirectory) {
      return Status::Corruption("inode 1 (the root) is not a directory");
    }
    RETURN_IF_ERROR(fs->data_.Rebuild(op));
    return fs->poison_.ExcludeBadFromDataSpace(op);
  });
  if (!damage.empty()) {
    // Bad bytes under metadata: mount read-only (shut down) so that check and errors still work.
    if (!root.ok()) base::Log(base::LogLevel::kError, "mount with metadata damage: {}", root.ToString());
    uint64_t chunk = damage[0].offset / fs->pool_->superblock().chunk_size;
    fs->runner_.Exclusive([&] {
      fs->runner_.ShutDown(Status::IoError(fmt::format(
          "media error in metadata at device offset {} (chunk {}): filesystem shut down read-only",
          damage[0].offset, chunk)));
    });
    return fs;
  }
  RETURN_IF_ERROR(root);
  return fs;
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
      extents_(device, &data_, &poison_),
      runner_(pool_.get(), device, options, has_rmap_, has_reflink_, this) {}

FsImpl::~FsImpl() {
  if (runner_.unmounted()) return;
  Status s = runner_.Unmount();
  if (!s.ok()) base::Log(base::LogLevel::kError, "unmount at close failed: {}", s.ToString());
}

// ---- Around transactions (TxnHooks).

void FsImpl::TxnBegan(txn::WriteTxn&) { data_.TxnBegan(); }

Status FsImpl::BeforeCommit(WriteOp& op) {
  // New METADATA chunks get their rmap records.
  return has_rmap_ ? rmap_.ReconcileMetadataChunks(op) : Status::Ok();
}

void FsImpl::TxnCommitted() { data_.TxnCommitted(); }

void FsImpl::TxnAborted() { data_.TxnAborted(); }

Status FsImpl::Fsync(Ino ino) {
  RETURN_IF_ERROR(
      runner_.Read([&](const ReadOp& op) -> Status { return GetInode(op, ino).status(); }));
  return Sync();
}

Status FsImpl::Sync() { return runner_.Sync(); }

Status FsImpl::Unmount() { return runner_.Unmount(); }

Result<FsStats> FsImpl::StatFs() {
  FsStats st;
  Status s = runner_.Read([&](const ReadOp& op) -> Status {
    btree::Cursor c(op.inodes());
    for (Status r = c.SeekFirst(); c.Valid(); r = c.Next()) {
      RETURN_IF_ERROR(r);
      ASSIGN_OR_RETURN(Inode n, format::DecodeInode(c.key().w[0], c.value().data()));
      ++st.inodes;
      if (n.type == format::FileType::kRegular) ++st.files;
      else if (n.type == format::FileType::kDirectory) ++st.directories;
      else ++st.symlinks;
    }
    return Status::Ok();
  });
  RETURN_IF_ERROR(s);
  return runner_.Exclusive([&] { return FillSpace(st); });
}

FsStats FsImpl::FillSpace(FsStats st) {
  txn::SpaceInfo space = pool_->Space();
  format::Superblock sb = pool_->superblock();
  uint64_t chunk_blocks = sb.chunk_blocks();
  st.total_blocks = sb.total_blocks();
  uint64_t free_chunk_blocks = space.free_chunks * chunk_blocks;
  st.free_blocks = data_.blocks().free_blocks() + data_.blocks().deferred_blocks() + free_chunk_blocks;
  st.metadata_blocks_used = space.nodes.used + space.nodes.fresh + 2;
  st.data_blocks_used = space.data_chunks * chunk_blocks - data_.blocks().free_blocks() - data_.blocks().deferred_blocks();
  st.generation = sb.generation;
  return st;
}

// ---- Inode helpers.

int64_t FsImpl::NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Attr FsImpl::ToAttr(const Inode& n) {
  return {.ino = n.ino, .type = static_cast<FileType>(n.type), .mode = n.mode, .uid = n.uid,
          .gid = n.gid, .nlink = n.nlink, .size = n.size, .blocks = n.blocks,
          .atime_ns = n.atime_ns, .mtime_ns = n.mtime_ns, .ctime_ns = n.ctime_ns,
          .btime_ns = n.btime_ns};
}

Result<Inode> FsImpl::GetInode(const ReadOp& op, Ino ino) {
  uint8_t value[format::kInodeValueSize];
  ASSIGN_OR_RETURN(bool found, op.inodes()->Get(InodeKey(ino), value));
  if (!found) return Status::NotFound(fmt::format("inode {} does not exist", ino));
  return format::DecodeInode(ino, value);
}

Status FsImpl::PutInode(WriteOp& op, const Inode& inode) {
  if (op.observer() != nullptr && op.observer()->Watches(inode.ino)) {  // a size change moves EOF
    Result<Inode> old = GetInode(op, inode.ino);
    uint64_t was = old.ok() ? (old->size + format::kBlockSize - 1) / format::kBlockSize : 0;
    uint64_t is = (inode.size + format::kBlockSize - 1) / format::kBlockSize;
    if (old.ok() && was != is) {
      op.NoteLayoutChange(inode.ino, std::min(was, is), std::max(was, is) - std::min(was, is));
    }
  }
  ASSIGN_OR_RETURN(bool added,
                   op.writer(FsTree::kInodes).Put(InodeKey(inode.ino), InodeValue(inode).bytes));
  (void)added;
  return Status::Ok();
}

Status FsImpl::DeleteInode(WriteOp& op, Ino ino) {
  op.NoteLayoutChange(ino, 0, kWholeFile / format::kBlockSize);  // the file is gone
  return op.writer(FsTree::kInodes).Delete(InodeKey(ino));
}

Result<Ino> FsImpl::NextIno(const ReadOp& op) {
  btree::Cursor c(op.inodes());
  RETURN_IF_ERROR(c.SeekLast());
  if (!c.Valid()) return Status::Corruption("the inode tree is empty");
  return c.key().w[0] + 1;
}


}  // namespace fs
}  // namespace daxfs
