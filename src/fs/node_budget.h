// Node reservations: before an operation changes anything it makes sure the pool can hand out
// every metadata node its tree updates may need in the worst case (docs/fs.md, "Operations and
// atomicity"), so ENOSPC always means "nothing changed". Bounds come from tree heights and
// record counts. Knows trees and node counts; nothing of what the records mean.
#pragma once

#include <cstdint>

#include "fs/op.h"

namespace daxfs::txn {
class Pool;
}

namespace daxfs::fs {

class PoisonIndex;

// What an operation will change in the trees, for NodeBudget::Reserve.
struct TreeWork {
  // Extent-record changes (inserts, deletes, updates) that all fall among `local_records`
  // consecutive records of one inode: the data path's reservation (its leaf estimate, docs/fs.md,
  // includes one inode update).
  uint64_t local_records = 0;
  uint64_t local_updates = 0;
  // Extent-record changes that may fall anywhere (remaps), `extent_inserts` of them inserts.
  uint64_t extent_updates = 0;
  uint64_t extent_inserts = 0;
  uint64_t refcount_calls = 0;  // Raise / Lower calls (one per unmapped or shared piece)
  bool increments = false;      // some of those calls raise
  uint64_t other_updates = 0;   // inode-tree updates beyond the data path's one
  TreeWork& operator+=(const TreeWork& o) {
    local_records += o.local_records;
    local_updates += o.local_updates;
    extent_updates += o.extent_updates;
    extent_inserts += o.extent_inserts;
    refcount_calls += o.refcount_calls;
    increments = increments || o.increments;
    other_updates += o.other_updates;
    return *this;
  }
};

class NodeBudget {
 public:
  NodeBudget(const txn::Pool* pool, const PoisonIndex* poison) : pool_(pool), poison_(poison) {}

  // Nodes for `tree_updates` B+tree updates anywhere in the inode, dirent, extent and xattr trees
  // (path copy plus splits up to a new root, at the current heights). ENOSPC.
  Status ReserveNodes(WriteOp& op, uint64_t tree_updates);
  // Nodes for `updates` extent-tree updates that all fall among `records` consecutive records of
  // one inode (plus one inode update), with their rmap and refcount changes.
  Status ReserveExtentUpdates(WriteOp& op, uint64_t records, uint64_t updates);
  // Every node `work` may need, over the extent, rmap, refcount, poison and inode trees (each
  // bounded by its own height and size). ENOSPC.
  Status Reserve(WriteOp& op, const TreeWork& work);
  // Nodes `updates` updates of `tree` (`inserts` of them inserts) may allocate, at most
  // (0 for an absent tree).
  Result<uint64_t> WorstCaseNodes(WriteOp& op, const btree::BTree* tree, uint64_t updates,
                                  uint64_t inserts);

 private:
  Result<uint64_t> TreeHeight(WriteOp& op, const btree::BTree* tree);  // 0: empty or absent
  // Nodes the poison and rmap trees may need on top of the work (when something is poisoned).
  Result<uint64_t> PoisonWorkNodes(WriteOp& op, uint64_t extent_changes, uint64_t frees);

  const txn::Pool* pool_;
  const PoisonIndex* poison_;
};

}  // namespace daxfs::fs
