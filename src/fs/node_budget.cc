// Node reservations (node_budget.h): the worst-case node counts of tree updates.
#include "fs/node_budget.h"

#include <algorithm>
#include <limits>

#include "format/btree_node.h"
#include "fs/blocks.h"
#include "fs/poison.h"
#include "txn/pool.h"

namespace daxfs::fs {
namespace {

uint64_t SaturatingMul(uint64_t a, uint64_t b) {
  return b != 0 && a > std::numeric_limits<uint64_t>::max() / b ? kNoEnd : a * b;
}

}  // namespace

Status NodeBudget::ReserveNodes(WriteOp& op, uint64_t tree_updates) {
  uint64_t height = 1;
  for (const btree::BTree* t : {op.inodes(), op.dirents(), op.extents(), op.xattrs()}) {
    if (t == nullptr || t->root() == 0) continue;
    ASSIGN_OR_RETURN(const uint8_t* root, op.txn().Read(t->root()));
    height = std::max<uint64_t>(height, format::BTreeNodeLevel(root) + 1);
  }
  // Per update: the copied path (height nodes) plus a split at every level and a new root.
  return op.txn().EnsureNodes(tree_updates * (2 * height + 2));
}

Status NodeBudget::ReserveExtentUpdates(WriteOp& op, uint64_t records, uint64_t updates) {
  // Every extent update may unmap a piece (one refcount call); the rmap follows the extent map.
  return Reserve(op,
                 {.local_records = records, .local_updates = updates, .refcount_calls = updates});
}

// Two bounds, the smaller wins. Per update: a copied root-to-leaf path, a split at every level,
// a new root, a copied sibling (2 * height + 4, the height allowed to grow by one). For the
// whole batch: a committed node is copied at most once per transaction (the copy is fresh and
// then changed in place), so copies are at most the nodes there are; splits make at most one
// node per full leaf plus one per MinFill - 1 records added, and internal splits at most as many
// again. Node counts come from the record count, every non-root node being at least MinFill full.
Result<uint64_t> NodeBudget::TreeHeight(WriteOp& op, const btree::BTree* tree) {
  if (tree == nullptr || tree->root() == 0) return uint64_t{0};
  ASSIGN_OR_RETURN(const uint8_t* root, op.txn().Read(tree->root()));
  return uint64_t{format::BTreeNodeLevel(root)} + 1;
}

Result<uint64_t> NodeBudget::WorstCaseNodes(WriteOp& op, const btree::BTree* tree, uint64_t updates,
                                            uint64_t inserts) {
  if (tree == nullptr || updates == 0) return uint64_t{0};
  ASSIGN_OR_RETURN(uint64_t height, TreeHeight(op, tree));
  const uint64_t per_update = 2 * height + 4;
  int64_t records =
      static_cast<int64_t>(pool_->superblock().tree(tree->spec().id).records) + tree->count_delta();
  uint64_t m0 = std::max(2, tree->MinFill(0)), m1 = std::max(2, tree->MinFill(1));
  uint64_t leaves = static_cast<uint64_t>(std::max<int64_t>(records, 0)) / m0 + 1;
  uint64_t nodes_now = leaves + leaves / (m1 - 1) + height + 1;
  uint64_t splits = 2 * (leaves + inserts / (m0 - 1) + 1);
  return std::min(SaturatingMul(updates, per_update), nodes_now + splits + per_update);
}

Status NodeBudget::Reserve(WriteOp& op, const TreeWork& w) {
  uint64_t nodes = 0;
  if (w.local_updates > 0) {
    // The data path's estimate: each update may copy a root-to-leaf path and split every level
    // (ReserveNodes' worst case, at the tallest of the inode, dirent and extent trees), but
    // updates among consecutive records share their paths: once a leaf is copied it is fresh
    // and later updates in it copy nothing. Leaves touched: at most one per MinFill records
    // (existing ones plus those the updates add), plus the neighbours a rebalance borrows from.
    uint64_t height = 1;
    for (const btree::BTree* t : {op.inodes(), op.dirents(), op.extents()}) {
      ASSIGN_OR_RETURN(uint64_t h, TreeHeight(op, t));
      height = std::max(height, h);
    }
    uint64_t per_leaf = std::max(1, op.extents()->MinFill(0));
    uint64_t by_leaves = (w.local_records + w.local_updates) / per_leaf + 4;
    nodes += (std::min(w.local_updates, by_leaves) + 1) * (2 * height + 2);  // + the inode's
  }
  ASSIGN_OR_RETURN(uint64_t extents,
                   WorstCaseNodes(op, op.extents(), w.extent_updates, w.extent_inserts));
  ASSIGN_OR_RETURN(uint64_t inodes,
                   WorstCaseNodes(op, op.inodes(), w.other_updates, w.other_updates));
  nodes += extents + inodes;
  // One rmap change per extent-record change (no caller moves a record's device block, which
  // would cost two). The local updates are anywhere in the rmap: it is ordered by device block.
  uint64_t map_updates = w.local_updates + w.extent_updates;
  ASSIGN_OR_RETURN(uint64_t rmap,
                   WorstCaseNodes(op, op.rmap(), map_updates, w.local_updates + w.extent_inserts));
  nodes += rmap;
  if (poison_->Active(op)) {  // lost records trimmed, bad blocks retired (docs/media.md)
    ASSIGN_OR_RETURN(uint64_t poison, PoisonWorkNodes(op, map_updates, w.refcount_calls));
    nodes += poison;
  }
  if (op.refcount() != nullptr && w.refcount_calls > 0) {
    int64_t signed_records =
        static_cast<int64_t>(pool_->superblock().tree(format::TreeId::kRefcount).records) +
        op.refcount()->count_delta();
    uint64_t records = static_cast<uint64_t>(std::max<int64_t>(signed_records, 0));
    // Lowering counts where there are no records changes nothing. Otherwise each call splits at
    // most two records at its edges and changes every record (and, raising, every hole) inside;
    // records never outnumber the distinct boundaries: those there are plus two per call.
    if (records > 0 || w.increments) {
      uint64_t most_records = records + 2 * w.refcount_calls;
      uint64_t updates = SaturatingMul(w.refcount_calls, 2 * most_records + 5);
      ASSIGN_OR_RETURN(uint64_t refcount, WorstCaseNodes(op, op.refcount(), updates, most_records));
      nodes += refcount;
    }
  }
  return op.txn().EnsureNodes(nodes);
}

Result<uint64_t> NodeBudget::PoisonWorkNodes(WriteOp& op, uint64_t extent_changes, uint64_t frees) {
  // Each extent change may trim one lost record (a delete and two inserts); each freed run may
  // retire bad pieces (a merge: two deletes and an insert per piece).
  ASSIGN_OR_RETURN(uint64_t poison,
                   WorstCaseNodes(op, op.poison(), 3 * extent_changes + 3, 2 * extent_changes + 2));
  ASSIGN_OR_RETURN(uint64_t rmap, WorstCaseNodes(op, op.rmap(), 3 * frees + 6, frees + 2));
  return poison + rmap;
}

}  // namespace daxfs::fs
