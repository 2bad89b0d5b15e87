// Runs filesystem operations: the filesystem lock, the trees each operation sees, the write
// transaction (kept open across operations in group commit), commit by the durability mode,
// and the read-only shutdown. Operations get their context (op.h) as an argument; nothing of an
// operation is kept here. What the filesystem does around a transaction (data space, the rmap's
// metadata records, publishing layouts) comes through TxnHooks, so this knows no fs module.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>

#include "daxfs/filesystem.h"
#include "fs/op.h"
#include "txn/pool.h"

namespace daxfs::fs {

// What the filesystem does around transactions and operations (FsImpl implements it).
class TxnHooks {
 public:
  virtual ~TxnHooks() = default;
  // A write transaction opened.
  virtual void TxnBegan(txn::WriteTxn& txn) = 0;
  // A write operation's body succeeded: tell the mapping observer about its layout changes
  // before anything it freed can be reused.
  virtual void Publish(const ReadOp& op, LayoutNotes& notes) = 0;
  // Just before a transaction commits (its data is flushed after this), with its trees.
  virtual Status BeforeCommit(WriteOp& op) = 0;
  virtual void TxnCommitted() = 0;
  // The transaction was aborted (or the filesystem shut down): forget what it allocated.
  virtual void TxnAborted() = 0;
  // Whether a commit would do work of the filesystem's own now (metadata repairs found by a
  // read): the runner then commits right after a read operation and before unmount. Cheap.
  virtual bool WantsCommit() const = 0;
};

class OpRunner {
 public:
  OpRunner(txn::Pool* pool, device::Device* device, const MountOptions& options, bool has_rmap,
           bool has_reflink, TxnHooks* hooks);

  // Runs body(const ReadOp&) on the open write transaction's trees if there is one
  // (read-your-writes in group commit), else on a snapshot of the last commit. Read operations
  // change nothing of the runner or the trees and run in parallel with each other (the lock is
  // shared); every write operation excludes them. A body may change in-memory state of its own
  // only behind its own lock (the orphan pins, the pool's repair queue, the node marks).
  template <typename Body>
  Status Read(Body&& body);
  // A read operation that also changes in-memory state of the mount that read operations look at
  // (losses kept in memory, the shutdown, installing a mapping): it excludes every other
  // operation.
  template <typename Body>
  Status ReadForUpdate(Body&& body);
  // Runs body(WriteOp&): opens the write transaction if none is open, then commits according to
  // the durability mode. The body must follow docs/fs.md ("Operations and atomicity"): it
  // validates and reserves before it changes anything, so an error it returns means "nothing
  // changed" -- unless the transaction was poisoned (a corrupt node, a failed flush): then it is
  // aborted and the filesystem shuts down read-only.
  template <typename Body>
  Status Write(Body&& body);
  // Runs plan(const ReadOp&) -> Result<bool> and, when it returns true, apply(WriteOp&) as one
  // write operation (like Write), both under one hold of the filesystem lock: what the plan read
  // is still so when apply runs (nothing is planned twice). The plan may change in-memory state
  // like ReadForUpdate; an error from it, or false, ends the operation without a write.
  template <typename Plan, typename Apply>
  Status PlanThenWrite(Plan&& plan, Apply&& apply);
  // Runs fn() under the filesystem lock, without trees.
  template <typename Fn>
  auto Exclusive(Fn&& fn) {
    std::unique_lock<std::shared_mutex> lock(mu_);
    return fn();
  }
  // Runs fn() under the filesystem lock held shared (beside read operations, excluding every
  // write), without trees: fn may look at the allocators and the device, and change only state
  // of its own.
  template <typename Fn>
  auto Shared(Fn&& fn) {
    std::shared_lock<std::shared_mutex> lock(mu_);
    return fn();
  }

  // Commits the open transaction, if any.
  Status Sync();
  // Commits now, opening a transaction if none is open, when the hooks want a commit and the
  // filesystem is writable (a read found a bad metadata copy: the repair becomes durable).
  Status CommitIfWanted();
  Status Unmount();
  bool unmounted() const { return unmounted_; }  // not under the lock: the owner's destructor
  // Read-only until remounted, with the reason. Inside a ReadForUpdate or write operation.
  void ShutDown(const Status& why);
  // The mapping observer every write operation notes layout changes for (under the lock).
  void SetObserver(MappingObserver* observer) { observer_ = observer; }
  MappingObserver* observer() const { return observer_; }

  // Inside an operation:
  bool read_only() const { return read_only_; }
  const Status& shutdown_reason() const { return shutdown_; }
  bool txn_open() const { return txn_ != nullptr; }
  // EROFS for a change on this filesystem (`what` prefixes the message), OK when writable.
  Status CheckWritable(std::string_view what) const;

 private:
  Status CheckMounted() const;
  template <typename Body>
  Status ReadLocked(Body&& body);
  Status OpenRead(std::unique_ptr<txn::ReadTxn>* view, std::optional<btree::BTree>* trees,
                  ReadOp* op);
  Status BeginWrite();  // the transaction, opened if none is
  Status OpenTrees(WriteOp* op);
  Status EndWrite(WriteOp* op, Status body);
  Status Commit();

  txn::Pool* pool_;
  device::Device* device_;
  MountOptions options_;
  bool has_rmap_, has_reflink_;
  TxnHooks* hooks_;
  MappingObserver* observer_ = nullptr;

  // The filesystem lock: shared by read operations, exclusive for everything else.
  std::shared_mutex mu_;
  bool read_only_;
  bool unmounted_ = false;
  Status shutdown_;                     // why the filesystem went read-only, if it did
  std::unique_ptr<txn::WriteTxn> txn_;  // open write transaction (group commit keeps it open)
  uint32_t ops_in_txn_ = 0;
  DirtyRanges dirty_;  // of the open transaction
};

// Under the lock, shared or exclusive.
template <typename Body>
Status OpRunner::ReadLocked(Body&& body) {
  RETURN_IF_ERROR(CheckMounted());
  // Declared in this order so that the trees go before the snapshot they read.
  std::unique_ptr<txn::ReadTxn> view;
  std::optional<btree::BTree> trees[kFsTreeCount];
  ReadContext op;
  RETURN_IF_ERROR(OpenRead(&view, trees, &op));
  return body(static_cast<const ReadOp&>(op));
}

template <typename Body>
Status OpRunner::Read(Body&& body) {
  Status s;
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    s = ReadLocked(std::forward<Body>(body));
  }
  // A read that met a bad metadata copy (and was served by its twin) heals it at once.
  if (hooks_->WantsCommit()) CommitIfWanted().IgnoreError();
  return s;
}

template <typename Body>
Status OpRunner::ReadForUpdate(Body&& body) {
  Status s;
  {
    std::unique_lock<std::shared_mutex> lock(mu_);
    s = ReadLocked(std::forward<Body>(body));
  }
  if (hooks_->WantsCommit()) CommitIfWanted().IgnoreError();
  return s;
}

template <typename Body>
Status OpRunner::Write(Body&& body) {
  std::unique_lock<std::shared_mutex> lock(mu_);
  RETURN_IF_ERROR(BeginWrite());
  WriteOp op(txn_.get(), &dirty_, observer_, ops_in_txn_ == 0);
  RETURN_IF_ERROR(OpenTrees(&op));
  Status s = body(op);
  return EndWrite(&op, std::move(s));
}

template <typename Plan, typename Apply>
Status OpRunner::PlanThenWrite(Plan&& plan, Apply&& apply) {
  std::unique_lock<std::shared_mutex> lock(mu_);
  RETURN_IF_ERROR(CheckMounted());
  bool write = false;
  {
    std::unique_ptr<txn::ReadTxn> view;
    std::optional<btree::BTree> trees[kFsTreeCount];
    ReadContext op;
    RETURN_IF_ERROR(OpenRead(&view, trees, &op));
    ASSIGN_OR_RETURN(write, plan(static_cast<const ReadOp&>(op)));
  }
  if (!write) return Status::Ok();
  RETURN_IF_ERROR(BeginWrite());
  WriteOp op(txn_.get(), &dirty_, observer_, ops_in_txn_ == 0);
  RETURN_IF_ERROR(OpenTrees(&op));
  Status s = apply(op);
  return EndWrite(&op, std::move(s));
}

}  // namespace daxfs::fs
