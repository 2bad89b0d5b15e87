// Mount, format, the operation scaffolding (read and write operations, commits, durability,
// shutdown) and inode helpers of the filesystem engine.
#include "fs/fs_impl.h"

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
}  // namespace

// The trees an operation uses, in the order of FsImpl::Trees.
std::vector<btree::TreeSpec> FsImpl::TreeSpecs() const {
  std::vector<btree::TreeSpec> specs;
  for (const FsTreeDef& def : FsTrees()) {
    if (IsKept(def, has_rmap_, has_reflink_)) specs.push_back(def.spec);
  }
  return specs;
}

void FsImpl::SetTrees(btree::BTree** trees, size_t n) {
  trees_ = {};
  for (size_t i = 0; i < n; ++i) {
    switch (trees[i]->spec().id) {
      case TreeId::kInodes: trees_.inodes = trees[i]; break;
      case TreeId::kDirents: trees_.dirents = trees[i]; break;
      case TreeId::kExtents: trees_.extents = trees[i]; break;
      case TreeId::kRmap: trees_.rmap = trees[i]; break;
      case TreeId::kRefcount: trees_.refcount = trees[i]; break;
      case TreeId::kPoison: trees_.poison = trees[i]; break;
      default: break;
    }
  }
}

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
  {
    ASSIGN_OR_RETURN(auto txn, pool->BeginWrite());
    ASSIGN_OR_RETURN(btree::BTree * inodes, txn->Tree(SpecOf(FsTree::kInodes)));
    int64_t now = NowNs();
    Inode root{.ino = format::kRootIno, .type = format::FileType::kDirectory, .mode = 0755,
               .nlink = 2, .atime_ns = now, .mtime_ns = now, .ctime_ns = now, .btime_ns = now,
               .parent = format::kRootIno};
    uint8_t value[format::kInodeValueSize];
    format::EncodeInode(root, value);
    RETURN_IF_ERROR(inodes->Insert(btree::Key{{format::kRootIno}}, value));
    if (options.rmap) {
      ASSIGN_OR_RETURN(btree::BTree * rmap, txn->Tree(SpecOf(FsTree::kRmap)));
      RETURN_IF_ERROR(AddFormatRmapRecords(txn.get(), rmap, pool->superblock()));
    }
    RETURN_IF_ERROR(txn->Commit());
  }
  return pool->Close();
}

Result<std::unique_ptr<FsImpl>> FsImpl::Mount(device::Device* device,
                                              std::unique_ptr<device::Device> owned,
                                              const MountOptions& options) {
  ASSIGN_OR_RETURN(auto pool, txn::Pool::Open(device, {.read_only = options.read_only,
                                                       .verify_every_read = options.verify_every_read}));
  RegisterTrees(pool.get());
  std::vector<device::BadRange> damage = pool->MetadataDamage();
  std::unique_ptr<FsImpl> fs(new FsImpl(device, std::move(owned), std::move(pool), options));
  Status root = fs->ReadOp([&]() -> Status {
    Result<Inode> r = fs->GetInode(format::kRootIno);
    if (!r.ok()) {
      return r.status().IsNotFound() ? Status::Corruption("the root directory (inode 1) is missing")
                                     : r.status();
    }
    if (r->type != format::FileType::kDirectory) {
      return Status::Corruption("inode 1 (the root) is not a directory");
    }
    RETURN_IF_ERROR(fs->RebuildDataSpace());
    return fs->ExcludeBadFromDataSpaceLocked();
  });
  if (!damage.empty()) {
    // Bad bytes under metadata: mount read-only (shut down) so that check and errors still work.
    if (!root.ok()) base::Log(base::LogLevel::kError, "mount with metadata damage: {}", root.ToString());
    uint64_t chunk = damage[0].offset / fs->pool_->superblock().chunk_size;
    std::lock_guard<std::mutex> lock(fs->mu_);
    fs->ShutDown(Status::IoError(fmt::format(
        "media error in metadata at device offset {} (chunk {}): filesystem shut down read-only",
        damage[0].offset, chunk)));
    return fs;
  }
  RETURN_IF_ERROR(root);
  return fs;
}

FsImpl::FsImpl(device::Device* device, std::unique_ptr<device::Device> owned,
               std::unique_ptr<txn::Pool> pool, const MountOptions& options)
    : device_(device),
      owned_device_(std::move(owned)),
      pool_(std::move(pool)),
      options_(options),
      read_only_(options.read_only) {
  uint64_t ro_compat = pool_->superblock().ro_compat;
  has_rmap_ = ro_compat & format::feature::kRoCompatRmap;
  has_reflink_ = has_rmap_ && (ro_compat & format::feature::kRoCompatReflink);
}

FsImpl::~FsImpl() {
  if (!unmounted_) {
    Status s = Unmount();
    if (!s.ok()) base::Log(base::LogLevel::kError, "unmount at close failed: {}", s.ToString());
  }
}

// ---- Operation scaffolding.

Status FsImpl::ReadOp(const std::function<Status()>& body) {
  std::lock_guard<std::mutex> lock(mu_);
  if (unmounted_) return Status::IoError("the filesystem is unmounted");
  std::vector<btree::TreeSpec> specs = TreeSpecs();
  btree::BTree* trees[6] = {};
  if (txn_) {
    for (size_t i = 0; i < specs.size(); ++i) {
      ASSIGN_OR_RETURN(trees[i], txn_->Tree(specs[i]));
    }
    SetTrees(trees, specs.size());
    Status s = body();
    trees_ = {};
    return s;
  }
  read_view_ = pool_->BeginRead();
  for (size_t i = 0; i < specs.size(); ++i) {
    Result<btree::BTree> t = read_view_->Tree(specs[i]);
    if (!t.ok()) {
      read_view_.reset();
      return t.status();
    }
    read_trees_[i].emplace(std::move(*t));
    trees[i] = &*read_trees_[i];
  }
  SetTrees(trees, specs.size());
  Status s = body();
  trees_ = {};
  for (auto& t : read_trees_) t.reset();
  read_view_.reset();  // unpin the snapshot so its deferred nodes can be reclaimed
  return s;
}

Status FsImpl::WriteOp(const std::function<Status()>& body) {
  std::lock_guard<std::mutex> lock(mu_);
  if (unmounted_) return Status::IoError("the filesystem is unmounted");
  if (read_only_) {
    if (!shutdown_.ok()) return Status::ReadOnly("the filesystem was shut down: " + shutdown_.message());
    return Status::ReadOnly("the filesystem is mounted read-only");
  }
  if (!txn_) {
    ASSIGN_OR_RETURN(txn_, pool_->BeginWrite());
    data_.ReleaseDeferred(pool_->superblock().generation);
  }
  Status opened = [&]() -> Status {
    std::vector<btree::TreeSpec> specs = TreeSpecs();
    btree::BTree* trees[6] = {};
    for (size_t i = 0; i < specs.size(); ++i) {
      ASSIGN_OR_RETURN(trees[i], txn_->Tree(specs[i]));
    }
    SetTrees(trees, specs.size());
    return Status::Ok();
  }();
  if (!opened.ok()) {
    ShutDown(opened);
    return opened;
  }
  in_write_op_ = true;
  Status s = body();
  in_write_op_ = false;
  if (s.ok() && txn_->status().ok()) {
    PublishLayoutChangesLocked();  // mappings follow before anything freed can be reused
  } else {
    noted_changes_.clear();
  }
  trees_ = {};
  if (!txn_->status().ok()) {
    Status why = txn_->status();
    ShutDown(why);
    return s.ok() ? why : s;
  }
  if (!s.ok()) {
    if (ops_in_txn_ == 0) {  // nothing else in the transaction: drop it
      txn_->Abort();
      txn_.reset();
      data_.Abort();
      dirty_.clear();
    }
    return s;
  }
  ++ops_in_txn_;
  if (options_.durability == Durability::kOnReturn || ops_in_txn_ >= options_.group_commit_ops) {
    return CommitLocked();
  }
  return Status::Ok();
}

Status FsImpl::CommitLocked() {
  if (!txn_) return Status::Ok();
  Status s;
  if (has_rmap_) s = ReconcileAllMetadataChunks();  // new METADATA chunks get rmap records
  for (auto& [offset, length] : dirty_) {
    if (!s.ok()) break;
    s = device_->Flush(offset, length);
    if (!s.ok()) break;
  }
  if (s.ok()) s = txn_->Commit();
  if (!s.ok()) {
    ShutDown(s);
    return s;
  }
  txn_.reset();
  data_.Commit();
  dirty_.clear();
  ops_in_txn_ = 0;
  return Status::Ok();
}

void FsImpl::ShutDown(const Status& why) {
  base::Log(base::LogLevel::kError, "shutting down (read-only until remounted): {}", why.ToString());
  if (txn_) {
    txn_->Abort();
    txn_.reset();
  }
  data_.Abort();
  dirty_.clear();
  ops_in_txn_ = 0;
  read_only_ = true;
  if (shutdown_.ok()) shutdown_ = why;
}

Status FsImpl::Fsync(Ino ino) {
  RETURN_IF_ERROR(ReadOp([&]() -> Status { return GetInode(ino).status(); }));
  return Sync();
}

Status FsImpl::Sync() {
  std::lock_guard<std::mutex> lock(mu_);
  if (unmounted_) return Status::IoError("the filesystem is unmounted");
  return CommitLocked();
}

Status FsImpl::Unmount() {
  std::lock_guard<std::mutex> lock(mu_);
  if (unmounted_) return Status::IoError("the filesystem is already unmounted");
  Status s = CommitLocked();
  Status closed = pool_->Close();
  unmounted_ = true;
  return s.ok() ? closed : s;
}

Result<FsStats> FsImpl::StatFs() {
  FsStats st;
  Status s = ReadOp([&]() -> Status {
    btree::Cursor c(trees_.inodes);
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
  std::lock_guard<std::mutex> lock(mu_);
  txn::SpaceInfo space = pool_->Space();
  format::Superblock sb = pool_->superblock();
  uint64_t chunk_blocks = sb.chunk_blocks();
  st.total_blocks = sb.total_blocks();
  uint64_t free_chunk_blocks = space.free_chunks * chunk_blocks;
  st.free_blocks = data_.free_blocks() + data_.deferred_blocks() + free_chunk_blocks;
  st.metadata_blocks_used = space.nodes.used + space.nodes.fresh + 2;
  st.data_blocks_used = space.data_chunks * chunk_blocks - data_.free_blocks() - data_.deferred_blocks();
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

Result<Inode> FsImpl::GetInode(Ino ino) {
  uint8_t value[format::kInodeValueSize];
  ASSIGN_OR_RETURN(bool found, trees_.inodes->Get(btree::Key{{ino}}, value));
  if (!found) return Status::NotFound(fmt::format("inode {} does not exist", ino));
  return format::DecodeInode(ino, value);
}

Status FsImpl::PutInode(const Inode& inode) {
  if (observer_ != nullptr && observer_->Watches(inode.ino)) {  // a size change moves EOF
    Result<Inode> old = GetInode(inode.ino);
    uint64_t was = old.ok() ? (old->size + format::kBlockSize - 1) / format::kBlockSize : 0;
    uint64_t is = (inode.size + format::kBlockSize - 1) / format::kBlockSize;
    if (old.ok() && was != is) {
      NoteLayoutChange(inode.ino, std::min(was, is), std::max(was, is) - std::min(was, is));
    }
  }
  uint8_t value[format::kInodeValueSize];
  format::EncodeInode(inode, value);
  ASSIGN_OR_RETURN(bool added, trees_.inodes->Put(btree::Key{{inode.ino}}, value));
  (void)added;
  return Status::Ok();
}

Status FsImpl::DeleteInode(Ino ino) {
  NoteLayoutChange(ino, 0, kWholeFile / format::kBlockSize);  // the file is gone
  return trees_.inodes->Delete(btree::Key{{ino}});
}

Result<Ino> FsImpl::NextIno() {
  btree::Cursor c(trees_.inodes);
  RETURN_IF_ERROR(c.SeekLast());
  if (!c.Valid()) return Status::Corruption("the inode tree is empty");
  return c.key().w[0] + 1;
}

Status FsImpl::ReserveNodes(uint64_t tree_updates) {
  if (!txn_) return Status::Invalid("ReserveNodes outside a write operation");
  uint64_t height = 1;
  for (btree::BTree* t : {trees_.inodes, trees_.dirents, trees_.extents}) {
    if (t == nullptr || t->root() == 0) continue;
    ASSIGN_OR_RETURN(const uint8_t* root, txn_->Read(t->root()));
    height = std::max<uint64_t>(height, format::BTreeNodeLevel(root) + 1);
  }
  // Per update: the copied path (height nodes) plus a split at every level and a new root.
  return txn_->EnsureNodes(tree_updates * (2 * height + 2));
}

}  // namespace fs
}  // namespace daxfs
