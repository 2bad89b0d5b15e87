// The operation scaffolding (op_runner.h): opening each operation's trees, the write
// transaction's life (begin, commit by durability mode, abort of a failed first operation), the
// dirty data ranges flushed at commit, and the read-only shutdown.
#include "fs/op_runner.h"

#include <algorithm>

#include "base/log.h"

namespace daxfs::fs {

void DirtyRanges::Note(uint64_t device_offset, uint64_t length) {
  if (length == 0) return;
  if (!ranges_.empty()) {
    auto& [last_offset, last_length] = ranges_.back();
    if (device_offset >= last_offset && device_offset <= last_offset + last_length) {
      last_length = std::max(last_length, device_offset + length - last_offset);
      return;
    }
  }
  ranges_.emplace_back(device_offset, length);
}

OpRunner::OpRunner(txn::Pool* pool, device::Device* device, const MountOptions& options,
                   bool has_rmap, bool has_reflink, TxnHooks* hooks)
    : pool_(pool),
      device_(device),
      options_(options),
      has_rmap_(has_rmap),
      has_reflink_(has_reflink),
      hooks_(hooks),
      read_only_(options.read_only) {}

Status OpRunner::CheckMounted() const {
  if (unmounted_) return Status::IoError("the filesystem is unmounted");
  return Status::Ok();
}

Status OpRunner::CheckWritable(std::string_view what) const {
  if (!read_only_) return Status::Ok();
  std::string prefix = what.empty() ? "" : std::string(what) + ": ";
  if (!shutdown_.ok()) {
    return Status::ReadOnly(prefix + "the filesystem was shut down: " + shutdown_.message());
  }
  return Status::ReadOnly(prefix + "the filesystem is mounted read-only");
}

Status OpRunner::OpenRead(std::unique_ptr<txn::ReadTxn>* view, std::optional<btree::BTree>* trees,
                          ReadOp* op) {
  // The filesystem lock (held by the caller) excludes every commit: the view needs no pin.
  if (!txn_) *view = pool_->BeginReadUnderLock();
  for (const FsTreeDef& def : FsTrees()) {
    if (!IsKept(def, has_rmap_, has_reflink_)) continue;
    size_t slot = static_cast<size_t>(def.slot);
    if (txn_) {
      ASSIGN_OR_RETURN(op->trees_[slot], txn_->Tree(def.spec));
      continue;
    }
    RETURN_IF_ERROR((*view)->CheckShape(def.spec));
    op->lazy_ |= 1u << slot;
    op->specs_[slot] = &def.spec;
  }
  if (!txn_) {
    op->view_ = view->get();
    op->storage_ = trees;
  }
  return Status::Ok();
}

void ReadOp::OpenLazy(size_t i) const {
  storage_[i].emplace(view_->TreeOf(*specs_[i]));
  trees_[i] = &*storage_[i];
  lazy_ &= ~(1u << i);
}

Status OpRunner::BeginWrite() {
  RETURN_IF_ERROR(CheckMounted());
  RETURN_IF_ERROR(CheckWritable(""));
  if (!txn_) {
    ASSIGN_OR_RETURN(txn_, pool_->BeginWrite());
    hooks_->TxnBegan(*txn_);
  }
  return Status::Ok();
}

Status OpRunner::OpenTrees(WriteOp* op) {
  for (const FsTreeDef& def : FsTrees()) {
    if (!IsKept(def, has_rmap_, has_reflink_)) continue;
    size_t slot = static_cast<size_t>(def.slot);
    Result<btree::BTree*> tree = txn_->Tree(def.spec);
    if (!tree.ok()) {
      ShutDown(tree.status());
      return tree.status();
    }
    op->trees_[slot] = *tree;
    op->writers_[slot].tree_ = *tree;
  }
  return Status::Ok();
}

Status OpRunner::EndWrite(WriteOp* op, Status s) {
  if (s.ok() && txn_->status().ok()) {
    hooks_->Publish(*op, op->notes());  // mappings follow before anything freed can be reused
  }
  if (!txn_->status().ok()) {
    Status why = txn_->status();
    ShutDown(why);
    return s.ok() ? why : s;
  }
  if (!s.ok()) {
    if (ops_in_txn_ == 0) {  // nothing else in the transaction: drop it
      txn_->Abort();
      txn_.reset();
      hooks_->TxnAborted();
      dirty_.Clear();
    }
    return s;
  }
  ++ops_in_txn_;
  if (options_.durability == Durability::kOnReturn || ops_in_txn_ >= options_.group_commit_ops) {
    return Commit();
  }
  return Status::Ok();
}

Status OpRunner::Commit() {
  if (!txn_) return Status::Ok();
  WriteOp op(txn_.get(), &dirty_, nullptr, false);
  RETURN_IF_ERROR(OpenTrees(&op));  // shut down on failure
  Status s = hooks_->BeforeCommit(op);
  for (auto& [offset, length] : dirty_.ranges()) {
    if (!s.ok()) break;
    s = device_->Flush(offset, length);
  }
  if (s.ok()) s = txn_->Commit();
  if (!s.ok()) {
    ShutDown(s);
    return s;
  }
  txn_.reset();
  hooks_->TxnCommitted();
  dirty_.Clear();
  ops_in_txn_ = 0;
  return Status::Ok();
}

void OpRunner::ShutDown(const Status& why) {
  base::Log(base::LogLevel::kError, "shutting down (read-only until remounted): {}",
            why.ToString());
  if (txn_) {
    txn_->Abort();
    txn_.reset();
  }
  hooks_->TxnAborted();
  dirty_.Clear();
  ops_in_txn_ = 0;
  read_only_ = true;
  if (shutdown_.ok()) shutdown_ = why;
}

Status OpRunner::Sync() {
  std::unique_lock<std::shared_mutex> lock(mu_);
  RETURN_IF_ERROR(CheckMounted());
  return Commit();
}

Status OpRunner::CommitIfWanted() {
  std::unique_lock<std::shared_mutex> lock(mu_);
  if (unmounted_ || read_only_ || !hooks_->WantsCommit()) return Status::Ok();
  RETURN_IF_ERROR(BeginWrite());
  Status s = Commit();
  if (!s.ok()) base::Log(base::LogLevel::kError, "repair commit failed: {}", s.ToString());
  return s;
}

Status OpRunner::Unmount() {
  std::unique_lock<std::shared_mutex> lock(mu_);
  if (unmounted_) return Status::IoError("the filesystem is already unmounted");
  // The filesystem's own pending work (metadata repairs) goes into the last commit too.
  if (!txn_ && !read_only_ && hooks_->WantsCommit()) BeginWrite().IgnoreError();
  Status s = Commit();
  Status closed = pool_->Close();
  unmounted_ = true;
  return s.ok() ? closed : s;
}

}  // namespace daxfs::fs
