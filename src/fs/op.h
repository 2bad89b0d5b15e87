// The operation contexts: everything one filesystem operation works on, handed explicitly to the
// code that needs it. A ReadOp is the open trees, read-only (the open write transaction's trees,
// or a snapshot of the last commit); a WriteOp adds the write transaction, write access to the
// trees (TreeWriter: the one place fs trees are changed), the device ranges written and the
// layout changes to publish. Per-operation state lives here, never in the filesystem's members,
// so several read operations can hold their own contexts at once. Built only by OpRunner
// (op_runner.h); knows nothing of what the trees mean beyond fs/trees.h.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "btree/btree.h"
#include "fs/mapping_hooks.h"
#include "fs/trees.h"

namespace daxfs::txn {
class ReadTxn;
class WriteTxn;
}

namespace daxfs::fs {

// Read access to the trees of one operation. A tree the filesystem does not keep (the rmap
// without the rmap feature, the refcount tree without reflink) is null.
class ReadOp {
 public:
  ReadOp(const ReadOp&) = delete;
  ReadOp& operator=(const ReadOp&) = delete;

  const btree::BTree* tree(FsTree t) const {
    const size_t i = static_cast<size_t>(t);
    if (trees_[i] == nullptr && (lazy_ & (1u << i)) != 0) OpenLazy(i);
    return trees_[i];
  }
  const btree::BTree* inodes() const { return tree(FsTree::kInodes); }
  const btree::BTree* dirents() const { return tree(FsTree::kDirents); }
  const btree::BTree* extents() const { return tree(FsTree::kExtents); }
  const btree::BTree* rmap() const { return tree(FsTree::kRmap); }
  const btree::BTree* refcount() const { return tree(FsTree::kRefcount); }
  const btree::BTree* poison() const { return tree(FsTree::kPoison); }
  const btree::BTree* orphans() const { return tree(FsTree::kOrphans); }
  const btree::BTree* xattrs() const { return tree(FsTree::kXattrs); }

 protected:
  ReadOp() = default;
  ~ReadOp() = default;
  friend class OpRunner;
  // A read operation on a snapshot opens each tree the first time it is asked for (a pread
  // needs two or three of the eight): the runner checked every kept tree's shape already.
  void OpenLazy(size_t i) const;
  mutable const btree::BTree* trees_[kFsTreeCount] = {};
  mutable uint32_t lazy_ = 0;                       // kept trees not opened yet, by slot
  txn::ReadTxn* view_ = nullptr;                    // the snapshot they open on
  std::optional<btree::BTree>* storage_ = nullptr;  // [kFsTreeCount], on the runner's stack
  const btree::TreeSpec* specs_[kFsTreeCount] = {};
};

// A read operation that owns its context (the runner's, on the stack of Read()).
class ReadContext final : public ReadOp {
 private:
  friend class OpRunner;
  ReadContext() = default;
};

// Write access to one tree of a write operation. Every change to a filesystem tree goes through
// one of these (an operation log will record them here).
class TreeWriter {
 public:
  explicit operator bool() const { return tree_ != nullptr; }
  const btree::BTree* tree() const { return tree_; }

  Status Insert(const btree::Key& key, std::span<const uint8_t> value) {
    return tree_->Insert(key, value);
  }
  Result<bool> Put(const btree::Key& key, std::span<const uint8_t> value) {
    return tree_->Put(key, value);
  }
  Status Update(const btree::Key& key, std::span<const uint8_t> value) {
    return tree_->Update(key, value);
  }
  Status Delete(const btree::Key& key) { return tree_->Delete(key); }

 private:
  friend class OpRunner;
  btree::BTree* tree_ = nullptr;
};

// Device byte ranges written by a transaction, flushed before it commits. Neighbours that touch
// or overlap the last range are merged into it.
class DirtyRanges {
 public:
  void Note(uint64_t device_offset, uint64_t length);
  const std::vector<std::pair<uint64_t, uint64_t>>& ranges() const { return ranges_; }
  void Clear() { ranges_.clear(); }

 private:
  std::vector<std::pair<uint64_t, uint64_t>> ranges_;
};

// A file range whose layout an operation may have changed.
struct NotedChange {
  Ino ino;
  uint64_t first_block, count;
};

// The layout changes an operation noted for files the mapping observer watches (cheap when it
// watches nothing), to be published when the operation succeeds.
class LayoutNotes {
 public:
  explicit LayoutNotes(MappingObserver* observer) : observer_(observer) {}
  MappingObserver* observer() const { return observer_; }
  void Note(Ino ino, uint64_t first_block, uint64_t count) {
    if (observer_ == nullptr || count == 0 || !observer_->Watches(ino)) return;
    changes_.push_back({ino, first_block, count});
  }
  bool empty() const { return changes_.empty(); }
  std::vector<NotedChange> Take() { return std::move(changes_); }
  void Clear() { changes_.clear(); }

 private:
  MappingObserver* observer_;
  std::vector<NotedChange> changes_;
};

// A write operation: its trees (read and write), the transaction, the dirty data ranges of the
// transaction and the layout changes of this operation.
class WriteOp final : public ReadOp {
 public:
  TreeWriter& writer(FsTree t) { return writers_[static_cast<size_t>(t)]; }
  txn::WriteTxn& txn() const { return *txn_; }
  // Whether this is the first operation of its transaction (a failure then aborts it).
  bool first_in_txn() const { return first_in_txn_; }

  // Device bytes this operation wrote, to flush before the transaction commits.
  void NoteDirty(uint64_t device_offset, uint64_t length) { dirty_->Note(device_offset, length); }
  // The layout of [first_block, +count) of `ino` may have changed. Every extent-record change
  // notes it, and so must anything else that changes a layout (size, losses).
  void NoteLayoutChange(Ino ino, uint64_t first_block, uint64_t count) {
    notes_.Note(ino, first_block, count);
  }
  LayoutNotes& notes() { return notes_; }
  MappingObserver* observer() const { return notes_.observer(); }

 private:
  friend class OpRunner;
  WriteOp(txn::WriteTxn* txn, DirtyRanges* dirty, MappingObserver* observer, bool first)
      : txn_(txn), dirty_(dirty), notes_(observer), first_in_txn_(first) {}
  TreeWriter writers_[kFsTreeCount];
  txn::WriteTxn* txn_;
  DirtyRanges* dirty_;
  LayoutNotes notes_;
  bool first_in_txn_;
};

}  // namespace daxfs::fs
