// One generic copy-on-write B+tree over 4 KiB nodes, configured per tree (TreeSpec) with
// fixed-size keys (1..4 little-endian u64 words, compared lexicographically) and fixed-size values.
// Uses the format layer for node layout and a NodeStore for node I/O; knows nothing about
// transactions or what the records mean. The invariants and the copy-on-write rules are in
// docs/btree.md.
//
// Copy-on-write: an update never changes a node that is not fresh (see NodeStore::IsFresh); it
// copies the path from the root to the leaf it touches into fresh nodes and releases the old ones,
// so the tree reachable from the last committed root is never overwritten.
//
// Interval variant: when TreeSpec::interval_end is set, each record covers the half-open range
// [key.w[0], interval_end(key, value)), and every internal entry also stores the highest end in
// its subtree, so Overlaps() visits only subtrees that can hold an overlapping record:
// O(log n + k).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "btree/node_store.h"
#include "daxfs/status.h"
#include "format/btree_node.h"
#include "format/layout.h"

namespace daxfs::btree {

inline constexpr int kMaxKeyWords = 4;
inline constexpr int kMaxValueSize = 1024;

struct Key {
  uint64_t w[kMaxKeyWords] = {};
  friend bool operator==(const Key&, const Key&) = default;
};

// Lexicographic comparison of the first `words` words: <0, 0, >0.
int CompareKeys(const Key& a, const Key& b, int words);

struct TreeSpec {
  format::TreeId id = format::TreeId::kScratch;
  const char* name = "scratch";
  uint16_t key_words = 2;   // 1..kMaxKeyWords
  uint16_t value_size = 8;  // 0..kMaxValueSize bytes
  // Interval trees only: the exclusive end of the range a record covers; its start is key.w[0].
  // Must return a value > key.w[0].
  uint64_t (*interval_end)(const Key& key, const uint8_t* value) = nullptr;

  bool is_interval() const { return interval_end != nullptr; }
};

// Statistics from a full walk (Validate / VisitNodes).
struct TreeStats {
  uint64_t records = 0;
  uint64_t nodes = 0;
  uint64_t leaves = 0;
  uint32_t height = 0;  // 0 for an empty tree
};

class BTree;

// A position in a tree for ordered scans, forward and backward. Any modification of the tree
// invalidates every cursor on it.
class Cursor {
 public:
  explicit Cursor(const BTree* tree) : tree_(tree) {}

  Status SeekFirst();
  Status SeekLast();
  // First record with key >= `key`.
  Status SeekGE(const Key& key);
  // Last record with key <= `key`.
  Status SeekLE(const Key& key);
  Status Next();
  Status Prev();

  bool Valid() const { return valid_; }
  const Key& key() const { return key_; }
  std::span<const uint8_t> value() const { return {value_, value_size_}; }

 private:
  friend class BTree;
  struct Level {
    uint64_t blockno;
    int index;
  };
  void Reset();
  // Descends from `node` (block `blockno`, already read) to the leftmost or rightmost leaf below
  // it, appending to path_, and positions on that leaf's first or last record.
  Status DescendEdge(const uint8_t* node, uint64_t blockno, bool leftmost);
  // Positions on the first record after the current leaf (forward) or the last one before it;
  // invalid when there is none.
  Status StepLeaf(bool forward);
  void Load();  // fills key_/value_ from leaf_ at path_.back().index

  const BTree* tree_;
  std::vector<Level> path_;        // root first; its capacity is kept across seeks
  const uint8_t* leaf_ = nullptr;  // the node at path_.back()
  int leaf_count_ = 0;
  bool valid_ = false;
  Key key_;
  const uint8_t* value_ = nullptr;
  size_t value_size_ = 0;
};

class BTree {
 public:
  // `root` 0 means an empty tree.
  BTree(const TreeSpec& spec, NodeStore* store, uint64_t root);

  const TreeSpec& spec() const { return spec_; }
  // Node capacities and offsets of this tree's nodes (docs/format.md).
  const format::NodeLayout& layout() const { return layout_; }
  // The fewest entries a non-root node at `level` may hold: a third of its capacity (at least 1).
  int MinFill(int level) const;
  uint64_t root() const { return root_; }
  // Records added minus records removed through this object.
  int64_t count_delta() const { return count_delta_; }

  // Copies the value of `key` into `value_out` (spec().value_size bytes; may be null to test
  // presence only) and returns true, or returns false when the key is absent.
  Result<bool> Get(const Key& key, uint8_t* value_out) const;
  // Adds a record; EEXIST if the key is present.
  Status Insert(const Key& key, std::span<const uint8_t> value);
  // Adds or replaces; returns true if it added.
  Result<bool> Put(const Key& key, std::span<const uint8_t> value);
  // Replaces the value of an existing key; ENOENT if absent.
  Status Update(const Key& key, std::span<const uint8_t> value);
  // Removes a record; ENOENT if absent.
  Status Delete(const Key& key);

  // Moves one node: copies the node at `level` on the path of `first_key` — which must be block
  // `blockno` and begin with `first_key` — and every node above it into fresh nodes
  // (copy-on-write, the old ones released), so that the node gets a new block while every record,
  // key and max_end stays as it was. Returns the node's new block number, or 0 when that node is
  // not `blockno` (already copied by this transaction, or not in this tree) or is fresh.
  // Reserves first: ENOSPC or a corrupt node on the path changes nothing. Used to move a node off
  // a bad block; works on any tree shape, whatever interval_end says (no entry is recomputed).
  Result<uint64_t> Relocate(uint64_t blockno, int level, const Key& first_key);

  // Calls `fn` for every record overlapping [start, end) in key order; `fn` returns false to stop.
  // Interval trees only, and start < end (EINVAL otherwise). `fn` must not change the tree.
  using RecordFn = std::function<bool(const Key& key, std::span<const uint8_t> value)>;
  Status Overlaps(uint64_t start, uint64_t end, const RecordFn& fn) const;

  // Visits every node (pre-order) with its level (0 = leaf); used by space accounting and checks.
  Status VisitNodes(const std::function<Status(uint64_t blockno, int level)>& fn) const;

  // Walks the whole tree and checks every invariant in docs/btree.md: node headers, tree id,
  // levels, key order within and across nodes, separator keys, fill (except the root), interval
  // max_end values. Returns EUCLEAN naming the node and the broken rule.
  Status Validate(TreeStats* stats = nullptr) const;

 private:
  friend class Cursor;
  // One node on the path from the root to a leaf; `index` is the entry taken (leaf: the
  // position of the key, or where it would go).
  struct PathStep {
    uint64_t blockno;
    const uint8_t* node;
    int index;
    int count;
  };
  struct Path {
    PathStep step[format::kBTreeMaxLevels];
    int depth = 0;  // step[0] is the root, step[depth - 1] the leaf
  };
  struct NodePool;
  struct Sibling;
  struct ValidateState;

  // Reads node `blockno` and checks its header; `level` < 0 accepts any level (the root).
  Result<const uint8_t*> ReadNode(uint64_t blockno, int level) const;
  Result<const uint8_t*> ReadChild(const uint8_t* parent, uint64_t parent_blockno, int i,
                                   int level) const;
  int Compare(const uint8_t* node, int i, const Key& key) const;
  int LowerBound(const uint8_t* node, int count, const Key& key) const;  // first >= key
  int UpperBound(const uint8_t* node, int count, const Key& key) const;  // first > key
  Key KeyAt(const uint8_t* node, int i) const;
  uint64_t RecordEnd(const uint8_t* leaf, int i) const;
  uint64_t NodeMaxEnd(const uint8_t* node, int level) const;
  Status Descend(const Key& key, Path* path, bool* found) const;
  Status CheckValue(std::span<const uint8_t> value) const;
  std::string Where(uint64_t blockno) const;
  std::string KeyString(const Key& key) const;

  // Copy-on-write editing (btree.cc, "Changing the tree").
  Status Reserve(int count, NodePool* pool);
  void ReturnUnused(NodePool* pool);
  uint8_t* MakeWritable(uint64_t* blockno, const uint8_t** node, NodePool* pool);
  uint8_t* NewNode(int level, NodePool* pool, uint64_t* blockno);
  void SetChildEntry(uint8_t* parent, int i, uint64_t child, const uint8_t* child_node,
                     int child_level) const;
  int SplitPoint(int capacity, int insert_pos, int level) const;
  Status InsertIntoEmpty(const Key& key, const uint8_t* value);
  Status InsertAtPath(Path* path, const Key& key, const uint8_t* value);
  Status UpdateAtPath(Path* path, const uint8_t* value);
  Status DeleteAtPath(Path* path);
  Status PlanDelete(const Path& path, Sibling* siblings, int* need) const;
  void RebalanceChild(Path* path, int d, uint8_t* node, const Sibling& sibling, NodePool* pool);
  void AscendAfterInsert(Path* path, uint64_t right, const bool* split, NodePool* pool);
  void CollapseRoot(const Path& path);

  Status VisitSubtree(uint64_t blockno, const uint8_t* node,
                      const std::function<Status(uint64_t, int)>& fn) const;
  Status ValidateSubtree(uint64_t blockno, const uint8_t* node, bool is_root, ValidateState* state,
                         uint64_t* max_end) const;
  Status ValidateLeaf(uint64_t blockno, const uint8_t* node, ValidateState* state,
                      uint64_t* max_end) const;
  Status ValidateInternal(uint64_t blockno, const uint8_t* node, ValidateState* state,
                          uint64_t* max_end) const;
  Status Broken(uint64_t blockno, int level, int rule, const std::string& what) const;

  TreeSpec spec_;
  format::NodeLayout layout_;
  Status spec_status_;  // EINVAL when spec_ cannot describe a tree
  NodeStore* store_;
  uint64_t root_;
  int64_t count_delta_ = 0;
};

}  // namespace daxfs::btree
