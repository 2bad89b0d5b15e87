// The copy-on-write B+tree: lookups, cursors, overlap queries, path-copying changes with splits
// and merges, and the invariant checker (docs/btree.md). Touches nodes only through the NodeStore
// and format::NodeLayout; knows nothing about transactions or what records mean.
#include "btree/btree.h"

#include <fmt/core.h>

#include <algorithm>
#include <cassert>
#include <cstring>

#include "btree/node_edit.h"

namespace daxfs::btree {

using format::BTreeNodeCount;
using format::BTreeNodeLevel;
using format::kBlockSize;
using internal::EntryRef;
using internal::NodeEditor;

static_assert(kMaxKeyWords == format::kBTreeMaxKeyWords);
static_assert(kMaxValueSize == format::kBTreeMaxValueSize);

namespace {

constexpr int kMaxLevels = format::kBTreeMaxLevels;
// The most nodes one change can need: per level a copy plus a new right half (insert) or a
// copied sibling (delete), and a new root.
constexpr int kMaxReserve = 2 * kMaxLevels + 1;

// Key words are stored little-endian, which is the native order (base/coding.h checks it), so a
// Key's words are its on-media bytes.
const uint8_t* KeyBytes(const Key& key) { return reinterpret_cast<const uint8_t*>(key.w); }

}  // namespace

int CompareKeys(const Key& a, const Key& b, int words) {
  words = std::min(words, kMaxKeyWords);
  for (int w = 0; w < words; ++w) {
    if (a.w[w] != b.w[w]) return a.w[w] < b.w[w] ? -1 : 1;
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Reading nodes and searching within them.

BTree::BTree(const TreeSpec& spec, NodeStore* store, uint64_t root)
    : spec_(spec), store_(store), root_(root) {
  if (spec_.name == nullptr) spec_.name = "?";
  Result<format::NodeLayout> layout =
      format::ComputeNodeLayout(spec.key_words, spec.value_size, spec.is_interval());
  if (layout.ok()) {
    layout_ = *layout;
  } else {
    spec_status_ = layout.status().WithContext(fmt::format("tree {}", spec_.name));
  }
}

int BTree::MinFill(int level) const { return std::max<int>(1, layout_.capacity(level) / 3); }

std::string BTree::Where(uint64_t blockno) const {
  return fmt::format("tree {} node {}", spec_.name, blockno);
}

std::string BTree::KeyString(const Key& key) const {
  std::string s = "(";
  for (int w = 0; w < spec_.key_words && w < kMaxKeyWords; ++w) {
    s += fmt::format("{}{:#x}", w ? ", " : "", key.w[w]);
  }
  return s + ")";
}

Result<const uint8_t*> BTree::ReadNode(uint64_t blockno, int level) const {
  Result<const uint8_t*> node = store_->Read(blockno);
  if (!node.ok()) return node.status().WithContext(fmt::format("tree {}", spec_.name));
  Result<format::BTreeNodeHeader> header =
      format::DecodeBTreeNode(*node, blockno, layout_, static_cast<uint16_t>(spec_.id));
  if (!header.ok()) return header.status().WithContext(fmt::format("tree {}", spec_.name));
  if (level >= 0 && header->level != level) {
    return Status::Corruption(
        fmt::format("{}: level {} where {} was expected", Where(blockno), header->level, level));
  }
  return node;
}

// A child pointer that the store cannot read at all (0, or outside metadata space) is
// corruption of the parent, whatever error the store gives for it.
Result<const uint8_t*> BTree::ReadChild(const uint8_t* parent, uint64_t parent_blockno, int i,
                                        int level) const {
  uint64_t child = layout_.Child(parent, i);
  if (child == 0) {
    return Status::Corruption(
        fmt::format("{} entry {}: null child pointer", Where(parent_blockno), i));
  }
  Result<const uint8_t*> node = ReadNode(child, level);
  if (!node.ok() && node.status().code() == EINVAL) {
    return Status::Corruption(fmt::format("{} entry {}: bad child pointer: {}",
                                          Where(parent_blockno), i, node.status().message()));
  }
  return node;
}

int BTree::Compare(const uint8_t* node, int i, const Key& key) const {
  const uint8_t* k = layout_.key(node, i);
  for (uint32_t w = 0; w < layout_.key_words; ++w) {
    uint64_t word = base::DecodeU64(k + 8 * w);
    if (word != key.w[w]) return word < key.w[w] ? -1 : 1;
  }
  return 0;
}

int BTree::LowerBound(const uint8_t* node, int count, const Key& key) const {
  int lo = 0, hi = count;
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    if (Compare(node, mid, key) < 0) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

int BTree::UpperBound(const uint8_t* node, int count, const Key& key) const {
  int lo = 0, hi = count;
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    if (Compare(node, mid, key) <= 0) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

Key BTree::KeyAt(const uint8_t* node, int i) const {
  Key key;
  layout_.ReadKey(node, i, key.w);
  return key;
}

uint64_t BTree::RecordEnd(const uint8_t* leaf, int i) const {
  return spec_.interval_end(KeyAt(leaf, i), layout_.value(leaf, i));
}

uint64_t BTree::NodeMaxEnd(const uint8_t* node, int level) const {
  if (!spec_.is_interval()) return 0;
  int count = BTreeNodeCount(node);
  uint64_t max_end = 0;
  for (int i = 0; i < count; ++i) {
    max_end = std::max(max_end, level == 0 ? RecordEnd(node, i) : layout_.MaxEnd(node, i));
  }
  return max_end;
}

// Internal nodes: the child whose key is the greatest <= key (the first child when key is below
// every key: that is where it would be inserted). Leaves: the first entry >= key.
Status BTree::Descend(const Key& key, Path* path, bool* found) const {
  path->depth = 0;
  uint64_t blockno = root_;
  ASSIGN_OR_RETURN(const uint8_t* node, ReadNode(blockno, -1));
  for (;;) {
    int count = BTreeNodeCount(node);
    int level = BTreeNodeLevel(node);
    PathStep& step = path->step[path->depth++];
    step = PathStep{blockno, node, 0, count};
    if (level == 0) {
      step.index = LowerBound(node, count, key);
      *found = step.index < count && Compare(node, step.index, key) == 0;
      return Status::Ok();
    }
    step.index = std::max(0, UpperBound(node, count, key) - 1);
    blockno = layout_.Child(node, step.index);
    ASSIGN_OR_RETURN(node, ReadChild(node, step.blockno, step.index, level - 1));
  }
}

Result<bool> BTree::Get(const Key& key, uint8_t* value_out) const {
  RETURN_IF_ERROR(spec_status_);
  if (root_ == 0) return false;
  uint64_t blockno = root_;
  ASSIGN_OR_RETURN(const uint8_t* node, ReadNode(blockno, -1));
  for (;;) {
    int count = BTreeNodeCount(node);
    int level = BTreeNodeLevel(node);
    if (level == 0) {
      int i = LowerBound(node, count, key);
      if (i == count || Compare(node, i, key) != 0) return false;
      if (value_out && layout_.value_size) {
        std::memcpy(value_out, layout_.value(node, i), layout_.value_size);
      }
      return true;
    }
    int i = UpperBound(node, count, key) - 1;
    if (i < 0) return false;  // below the smallest key of the tree
    uint64_t parent = blockno;
    blockno = layout_.Child(node, i);
    ASSIGN_OR_RETURN(node, ReadChild(node, parent, i, level - 1));
  }
}

// ---------------------------------------------------------------------------------------------
// Changing the tree. Each change first plans how many nodes it needs (copies of committed nodes
// on the path, new halves of splits, a new root, copied siblings), reserves them all, and only
// then edits: an ENOSPC leaves the tree exactly as it was.

struct BTree::NodePool {
  uint64_t nodes[kMaxReserve];
  int count = 0;
  int used = 0;
  uint64_t Take() {
    assert(used < count);
    return nodes[used++];
  }
};

struct BTree::Sibling {
  enum Kind { kNone, kMerge, kBalance };
  Kind kind = kNone;
  int index = 0;  // its entry in the parent
  uint64_t blockno = 0;
  const uint8_t* node = nullptr;
};

Status BTree::CheckValue(std::span<const uint8_t> value) const {
  if (value.size() == spec_.value_size) return Status::Ok();
  return Status::Invalid(fmt::format("tree {}: value of {} bytes where {} were expected",
                                     spec_.name, value.size(), spec_.value_size));
}

Status BTree::Reserve(int count, NodePool* pool) {
  assert(count <= kMaxReserve);
  for (int i = 0; i < count; ++i) {
    Result<uint64_t> blockno = store_->Allocate();
    if (!blockno.ok()) {
      ReturnUnused(pool);
      return blockno.status().WithContext(fmt::format("tree {}", spec_.name));
    }
    pool->nodes[pool->count++] = *blockno;
  }
  return Status::Ok();
}

void BTree::ReturnUnused(NodePool* pool) {
  while (pool->count > pool->used) store_->Release(pool->nodes[--pool->count]);
}

// Returns the node at *blockno ready to be changed: itself if fresh, else a copy in a reserved
// node, which replaces *blockno and *node (the old node is released).
uint8_t* BTree::MakeWritable(uint64_t* blockno, const uint8_t** node, NodePool* pool) {
  if (store_->IsFresh(*blockno)) return store_->Writable(*blockno);
  uint64_t fresh = pool->Take();
  uint8_t* copy = store_->Writable(fresh);
  std::memcpy(copy, *node, kBlockSize);
  format::NodeHeader header;
  header.blockno = fresh;
  header.generation = store_->generation();
  format::EncodeNodeHeader(header, copy);
  store_->Release(*blockno);
  *blockno = fresh;
  *node = copy;
  return copy;
}

uint8_t* BTree::NewNode(int level, NodePool* pool, uint64_t* blockno) {
  *blockno = pool->Take();
  uint8_t* node = store_->Writable(*blockno);
  std::memset(node, 0, kBlockSize);
  format::NodeHeader header;
  header.blockno = *blockno;
  header.generation = store_->generation();
  format::EncodeNodeHeader(header, node);
  format::BTreeNodeHeader tree_header;
  tree_header.tree_id = static_cast<uint16_t>(spec_.id);
  tree_header.level = static_cast<uint16_t>(level);
  tree_header.flags = layout_.flags();
  format::EncodeBTreeNodeHeader(tree_header, node);
  return node;
}

// Points entry i of `parent` at `child` with the child's first key and highest end.
void BTree::SetChildEntry(uint8_t* parent, int i, uint64_t child, const uint8_t* child_node,
                          int child_level) const {
  EntryRef entry;
  entry.key = layout_.key(child_node, 0);
  entry.child = child;
  entry.max_end = NodeMaxEnd(child_node, child_level);
  NodeEditor(layout_).Write(parent, child_level + 1, i, entry);
}

// How many of the capacity + 1 entries the left half of a split keeps. Even, except that an
// insert at either end (sequential keys) leaves the other half as full as the fill rule allows.
int BTree::SplitPoint(int capacity, int insert_pos, int level) const {
  if (insert_pos == capacity) return capacity + 1 - MinFill(level);
  if (insert_pos == 0) return MinFill(level);
  return (capacity + 1) / 2;
}

Status BTree::InsertIntoEmpty(const Key& key, const uint8_t* value) {
  NodePool pool;
  RETURN_IF_ERROR(Reserve(1, &pool));
  uint64_t blockno;
  uint8_t* leaf = NewNode(0, &pool, &blockno);
  EntryRef entry;
  entry.key = KeyBytes(key);
  entry.value = value;
  NodeEditor(layout_).Insert(leaf, 0, 0, entry);
  root_ = blockno;
  ++count_delta_;
  return Status::Ok();
}

Status BTree::InsertAtPath(Path* path, const Key& key, const uint8_t* value) {
  const int depth = path->depth;
  bool split[kMaxLevels] = {};
  int need = 0;
  bool grows = true;  // the node at this step receives one more entry
  for (int d = depth - 1; d >= 0; --d) {
    const PathStep& step = path->step[d];
    if (!store_->IsFresh(step.blockno)) ++need;
    if (grows && step.count == static_cast<int>(layout_.capacity(depth - 1 - d))) {
      split[d] = true;
      ++need;
    } else {
      grows = false;
    }
  }
  if (grows) {
    if (depth >= kMaxLevels) {
      return Status::TooBig(fmt::format("tree {}: already {} levels high", spec_.name, depth));
    }
    ++need;  // a new root
  }
  NodePool pool;
  RETURN_IF_ERROR(Reserve(need, &pool));

  PathStep& leaf_step = path->step[depth - 1];
  uint8_t* leaf = MakeWritable(&leaf_step.blockno, &leaf_step.node, &pool);
  EntryRef entry;
  entry.key = KeyBytes(key);
  entry.value = value;
  NodeEditor editor(layout_);
  uint64_t right = 0;
  if (split[depth - 1]) {
    uint8_t* right_node = NewNode(0, &pool, &right);
    editor.InsertSplit(leaf, right_node, 0, leaf_step.index, entry,
                       SplitPoint(leaf_step.count, leaf_step.index, 0));
  } else {
    editor.Insert(leaf, 0, leaf_step.index, entry);
  }
  AscendAfterInsert(path, right, split, &pool);
  assert(pool.used == pool.count);
  ++count_delta_;
  return Status::Ok();
}

// The leaf at the end of `path` has changed and, if `right` != 0, split off `right`. Rewrites
// every ancestor's entry for the changed child (copying the ancestor if committed), inserts the
// new right halves, splitting where `split` says, and installs a new root if the root split.
void BTree::AscendAfterInsert(Path* path, uint64_t right, const bool* split, NodePool* pool) {
  NodeEditor editor(layout_);
  const int depth = path->depth;
  for (int d = depth - 2; d >= 0; --d) {
    PathStep& step = path->step[d];
    const PathStep& child = path->step[d + 1];
    const int level = depth - 1 - d;
    uint8_t* node = MakeWritable(&step.blockno, &step.node, pool);
    SetChildEntry(node, step.index, child.blockno, child.node, level - 1);
    if (right == 0) continue;
    const uint8_t* right_node = store_->Writable(right);
    EntryRef entry;
    entry.key = layout_.key(right_node, 0);
    entry.child = right;
    entry.max_end = NodeMaxEnd(right_node, level - 1);
    if (split[d]) {
      uint8_t* new_right = NewNode(level, pool, &right);
      editor.InsertSplit(node, new_right, level, step.index + 1, entry,
                         SplitPoint(step.count, step.index + 1, level));
    } else {
      editor.Insert(node, level, step.index + 1, entry);
      right = 0;
    }
  }
  root_ = path->step[0].blockno;
  if (right == 0) return;
  uint64_t new_root;
  uint8_t* root = NewNode(depth, pool, &new_root);
  for (uint64_t child : {root_, right}) {
    const uint8_t* child_node = store_->Writable(child);
    EntryRef entry;
    entry.key = layout_.key(child_node, 0);
    entry.child = child;
    entry.max_end = NodeMaxEnd(child_node, depth - 1);
    editor.Insert(root, depth, BTreeNodeCount(root), entry);
  }
  root_ = new_root;
}

Status BTree::UpdateAtPath(Path* path, const uint8_t* value) {
  int need = 0;
  for (int d = 0; d < path->depth; ++d) need += store_->IsFresh(path->step[d].blockno) ? 0 : 1;
  NodePool pool;
  RETURN_IF_ERROR(Reserve(need, &pool));
  PathStep& leaf_step = path->step[path->depth - 1];
  uint8_t* leaf = MakeWritable(&leaf_step.blockno, &leaf_step.node, &pool);
  if (layout_.value_size)
    std::memcpy(layout_.value(leaf, leaf_step.index), value, layout_.value_size);
  bool split[kMaxLevels] = {};
  AscendAfterInsert(path, 0, split, &pool);
  return Status::Ok();
}

// Decides, bottom-up, which nodes on the path will underflow and whether each merges with or
// borrows from its sibling (the left one when there is one), and counts the nodes to reserve.
// A node underflows when it loses an entry and falls below MinFill; a merge makes its parent
// lose one in turn.
Status BTree::PlanDelete(const Path& path, Sibling* siblings, int* need) const {
  const int depth = path.depth;
  bool shrinks = true;  // the node at this step loses an entry
  *need = 0;
  for (int d = depth - 1; d >= 0; --d) {
    const PathStep& step = path.step[d];
    if (!store_->IsFresh(step.blockno)) ++*need;
    if (d == 0 || !shrinks) continue;
    const int level = depth - 1 - d;
    const int count = step.count - 1;
    shrinks = false;
    const PathStep& parent = path.step[d - 1];
    if (count >= MinFill(level) || parent.count < 2) continue;
    Sibling& sibling = siblings[d];
    sibling.index = parent.index > 0 ? parent.index - 1 : parent.index + 1;
    sibling.blockno = layout_.Child(parent.node, sibling.index);
    ASSIGN_OR_RETURN(sibling.node, ReadChild(parent.node, parent.blockno, sibling.index, level));
    if (count + BTreeNodeCount(sibling.node) <= static_cast<int>(layout_.capacity(level))) {
      sibling.kind = Sibling::kMerge;
      shrinks = true;
    } else {
      sibling.kind = Sibling::kBalance;
      if (!store_->IsFresh(sibling.blockno)) ++*need;
    }
  }
  return Status::Ok();
}

Status BTree::DeleteAtPath(Path* path) {
  Sibling siblings[kMaxLevels];
  int need;
  RETURN_IF_ERROR(PlanDelete(*path, siblings, &need));
  NodePool pool;
  RETURN_IF_ERROR(Reserve(need, &pool));
  PathStep& leaf_step = path->step[path->depth - 1];
  uint8_t* leaf = MakeWritable(&leaf_step.blockno, &leaf_step.node, &pool);
  NodeEditor(layout_).Remove(leaf, 0, leaf_step.index);
  for (int d = path->depth - 2; d >= 0; --d) {
    PathStep& step = path->step[d];
    uint8_t* node = MakeWritable(&step.blockno, &step.node, &pool);
    RebalanceChild(path, d, node, siblings[d + 1], &pool);
  }
  CollapseRoot(*path);
  assert(pool.used == pool.count);
  --count_delta_;
  return Status::Ok();
}

// The child at path step d + 1 has changed; `node` is the (writable) node at step d. Merges the
// child with or balances it against `sibling` as planned, then rewrites the parent entries.
void BTree::RebalanceChild(Path* path, int d, uint8_t* node, const Sibling& sibling,
                           NodePool* pool) {
  NodeEditor editor(layout_);
  PathStep& step = path->step[d];
  const PathStep& child = path->step[d + 1];
  const int child_level = path->depth - 2 - d;
  uint8_t* child_node = store_->Writable(child.blockno);
  if (sibling.kind == Sibling::kMerge) {
    if (sibling.index < step.index) {
      editor.Prepend(child_node, sibling.node, child_level);
      --step.index;
    } else {
      editor.Append(child_node, sibling.node, child_level);
    }
    editor.Remove(node, child_level + 1, sibling.index);
    store_->Release(sibling.blockno);
  } else if (sibling.kind == Sibling::kBalance) {
    uint64_t blockno = sibling.blockno;
    const uint8_t* sibling_node = sibling.node;
    uint8_t* writable = MakeWritable(&blockno, &sibling_node, pool);
    if (sibling.index < step.index) {
      editor.Balance(writable, child_node, child_level);
    } else {
      editor.Balance(child_node, writable, child_level);
    }
    SetChildEntry(node, sibling.index, blockno, writable, child_level);
  }
  SetChildEntry(node, step.index, child.blockno, child_node, child_level);
}

// An empty root leaf leaves an empty tree; an internal root with one child hands over to it.
void BTree::CollapseRoot(const Path& path) {
  const PathStep& root = path.step[0];
  const int count = BTreeNodeCount(root.node);
  root_ = root.blockno;
  if (path.depth == 1 && count == 0) {
    store_->Release(root.blockno);
    root_ = 0;
  } else if (path.depth > 1 && count == 1) {
    root_ = layout_.Child(root.node, 0);
    store_->Release(root.blockno);
  }
}

Status BTree::Insert(const Key& key, std::span<const uint8_t> value) {
  RETURN_IF_ERROR(spec_status_);
  RETURN_IF_ERROR(CheckValue(value));
  if (root_ == 0) return InsertIntoEmpty(key, value.data());
  Path path;
  bool found;
  RETURN_IF_ERROR(Descend(key, &path, &found));
  if (found) {
    return Status::Exists(
        fmt::format("tree {}: key {} already exists", spec_.name, KeyString(key)));
  }
  return InsertAtPath(&path, key, value.data());
}

Result<bool> BTree::Put(const Key& key, std::span<const uint8_t> value) {
  RETURN_IF_ERROR(spec_status_);
  RETURN_IF_ERROR(CheckValue(value));
  if (root_ == 0) {
    RETURN_IF_ERROR(InsertIntoEmpty(key, value.data()));
    return true;
  }
  Path path;
  bool found;
  RETURN_IF_ERROR(Descend(key, &path, &found));
  if (found) {
    RETURN_IF_ERROR(UpdateAtPath(&path, value.data()));
    return false;
  }
  RETURN_IF_ERROR(InsertAtPath(&path, key, value.data()));
  return true;
}

Status BTree::Update(const Key& key, std::span<const uint8_t> value) {
  RETURN_IF_ERROR(spec_status_);
  RETURN_IF_ERROR(CheckValue(value));
  Path path;
  bool found = false;
  if (root_ != 0) RETURN_IF_ERROR(Descend(key, &path, &found));
  if (!found) {
    return Status::NotFound(fmt::format("tree {}: no key {}", spec_.name, KeyString(key)));
  }
  return UpdateAtPath(&path, value.data());
}

Status BTree::Delete(const Key& key) {
  RETURN_IF_ERROR(spec_status_);
  Path path;
  bool found = false;
  if (root_ != 0) RETURN_IF_ERROR(Descend(key, &path, &found));
  if (!found) {
    return Status::NotFound(fmt::format("tree {}: no key {}", spec_.name, KeyString(key)));
  }
  return DeleteAtPath(&path);
}

// Descends with `first_key` to `level` (every node it visits is read, so verified), then copies
// the path bottom-up. Only child pointers change in the ancestors: the moved node's contents,
// first key and max_end are the same, so its entry keeps its key and max_end.
Result<uint64_t> BTree::Relocate(uint64_t blockno, int level, const Key& first_key) {
  RETURN_IF_ERROR(spec_status_);
  if (root_ == 0 || level < 0 || level >= kMaxLevels) return uint64_t{0};
  Path path;
  uint64_t at = root_;
  ASSIGN_OR_RETURN(const uint8_t* node, ReadNode(at, -1));
  if (BTreeNodeLevel(node) < level) return uint64_t{0};
  for (;;) {
    const int node_level = BTreeNodeLevel(node);
    PathStep& step = path.step[path.depth++];
    step = PathStep{at, node, 0, BTreeNodeCount(node)};
    if (node_level == level) break;
    step.index = std::max(0, UpperBound(node, step.count, first_key) - 1);
    at = layout_.Child(node, step.index);
    ASSIGN_OR_RETURN(node, ReadChild(node, step.blockno, step.index, node_level - 1));
  }
  PathStep& target = path.step[path.depth - 1];
  if (target.blockno != blockno || store_->IsFresh(blockno) ||
      Compare(target.node, 0, first_key) != 0) {
    return uint64_t{0};
  }
  int need = 0;
  for (int d = 0; d < path.depth; ++d) need += store_->IsFresh(path.step[d].blockno) ? 0 : 1;
  NodePool pool;
  RETURN_IF_ERROR(Reserve(need, &pool));
  MakeWritable(&target.blockno, &target.node, &pool);
  for (int d = path.depth - 2; d >= 0; --d) {
    PathStep& step = path.step[d];
    uint8_t* writable = MakeWritable(&step.blockno, &step.node, &pool);
    layout_.SetChild(writable, step.index, path.step[d + 1].blockno);
  }
  assert(pool.used == pool.count);
  root_ = path.step[0].blockno;
  return target.blockno;
}

// ---------------------------------------------------------------------------------------------
// Cursor.

void Cursor::Reset() {
  path_.clear();
  leaf_ = nullptr;
  leaf_count_ = 0;
  valid_ = false;
  key_ = Key();
  value_ = nullptr;
  value_size_ = 0;
}

void Cursor::Load() {
  const int i = path_.back().index;
  key_ = tree_->KeyAt(leaf_, i);
  value_ = tree_->layout_.value(leaf_, i);
  value_size_ = tree_->layout_.value_size;
  valid_ = true;
}

Status Cursor::DescendEdge(const uint8_t* node, uint64_t blockno, bool leftmost) {
  for (;;) {
    const int count = BTreeNodeCount(node);
    const int level = BTreeNodeLevel(node);
    const int index = leftmost ? 0 : count - 1;
    path_.push_back(Level{blockno, index});
    if (level == 0) {
      leaf_ = node;
      leaf_count_ = count;
      Load();
      return Status::Ok();
    }
    uint64_t parent = blockno;
    blockno = tree_->layout_.Child(node, index);
    ASSIGN_OR_RETURN(node, tree_->ReadChild(node, parent, index, level - 1));
  }
}

Status Cursor::StepLeaf(bool forward) {
  const int height = static_cast<int>(path_.size());
  for (int d = height - 2; d >= 0; --d) {
    Level& up = path_[d];
    const int level = height - 1 - d;
    ASSIGN_OR_RETURN(const uint8_t* node, tree_->ReadNode(up.blockno, level));
    const int next = forward ? up.index + 1 : up.index - 1;
    if (next < 0 || next >= BTreeNodeCount(node)) continue;
    up.index = next;
    path_.resize(d + 1);
    ASSIGN_OR_RETURN(const uint8_t* child, tree_->ReadChild(node, up.blockno, next, level - 1));
    return DescendEdge(child, tree_->layout_.Child(node, next), forward);
  }
  Reset();
  return Status::Ok();
}

Status Cursor::SeekFirst() {
  Reset();
  RETURN_IF_ERROR(tree_->spec_status_);
  if (tree_->root_ == 0) return Status::Ok();
  ASSIGN_OR_RETURN(const uint8_t* root, tree_->ReadNode(tree_->root_, -1));
  return DescendEdge(root, tree_->root_, true);
}

Status Cursor::SeekLast() {
  Reset();
  RETURN_IF_ERROR(tree_->spec_status_);
  if (tree_->root_ == 0) return Status::Ok();
  ASSIGN_OR_RETURN(const uint8_t* root, tree_->ReadNode(tree_->root_, -1));
  return DescendEdge(root, tree_->root_, false);
}

Status Cursor::SeekGE(const Key& key) {
  Reset();
  RETURN_IF_ERROR(tree_->spec_status_);
  if (tree_->root_ == 0) return Status::Ok();
  BTree::Path path;
  bool found;
  RETURN_IF_ERROR(tree_->Descend(key, &path, &found));
  for (int d = 0; d < path.depth; ++d)
    path_.push_back(Level{path.step[d].blockno, path.step[d].index});
  const BTree::PathStep& leaf = path.step[path.depth - 1];
  leaf_ = leaf.node;
  leaf_count_ = leaf.count;
  if (leaf.index < leaf.count) {
    Load();
    return Status::Ok();
  }
  return StepLeaf(true);
}

Status Cursor::SeekLE(const Key& key) {
  Reset();
  RETURN_IF_ERROR(tree_->spec_status_);
  if (tree_->root_ == 0) return Status::Ok();
  BTree::Path path;
  bool found;
  RETURN_IF_ERROR(tree_->Descend(key, &path, &found));
  for (int d = 0; d < path.depth; ++d)
    path_.push_back(Level{path.step[d].blockno, path.step[d].index});
  const BTree::PathStep& leaf = path.step[path.depth - 1];
  leaf_ = leaf.node;
  leaf_count_ = leaf.count;
  if (!found) --path_.back().index;  // the last entry < key, if any
  if (path_.back().index >= 0) {
    Load();
    return Status::Ok();
  }
  return StepLeaf(false);
}

Status Cursor::Next() {
  if (!valid_) return Status::Invalid("cursor: Next() without a current record");
  Level& leaf = path_.back();
  if (leaf.index + 1 < leaf_count_) {
    ++leaf.index;
    Load();
    return Status::Ok();
  }
  return StepLeaf(true);
}

Status Cursor::Prev() {
  if (!valid_) return Status::Invalid("cursor: Prev() without a current record");
  Level& leaf = path_.back();
  if (leaf.index > 0) {
    --leaf.index;
    Load();
    return Status::Ok();
  }
  return StepLeaf(false);
}

// ---------------------------------------------------------------------------------------------
// Overlap queries and walks.

// Depth-first over the children that can hold an overlapping record: those whose max_end is
// above `start`. Entries are ordered by their first key word, so the first entry (at any level)
// starting at or after `end` ends the whole query.
Status BTree::Overlaps(uint64_t start, uint64_t end, const RecordFn& fn) const {
  RETURN_IF_ERROR(spec_status_);
  if (!spec_.is_interval()) {
    return Status::Invalid(
        fmt::format("tree {}: overlap query on a tree without intervals", spec_.name));
  }
  if (start >= end) {
    return Status::Invalid(
        fmt::format("tree {}: empty query range [{}, {})", spec_.name, start, end));
  }
  if (root_ == 0) return Status::Ok();
  struct Frame {
    uint64_t blockno;
    const uint8_t* node;
    int next;
  };
  Frame stack[kMaxLevels];
  int top = 0;
  ASSIGN_OR_RETURN(const uint8_t* root, ReadNode(root_, -1));
  stack[top++] = Frame{root_, root, 0};
  while (top > 0) {
    Frame& frame = stack[top - 1];
    const int count = BTreeNodeCount(frame.node);
    const int level = BTreeNodeLevel(frame.node);
    if (level == 0) {
      for (int i = 0; i < count; ++i) {
        if (layout_.KeyWord(frame.node, i, 0) >= end) return Status::Ok();
        if (RecordEnd(frame.node, i) <= start) continue;
        const uint8_t* value = layout_.value(frame.node, i);
        if (!fn(KeyAt(frame.node, i), {value, layout_.value_size})) return Status::Ok();
      }
      --top;
      continue;
    }
    if (frame.next >= count) {
      --top;
      continue;
    }
    const int i = frame.next++;
    if (layout_.KeyWord(frame.node, i, 0) >= end) return Status::Ok();
    if (layout_.MaxEnd(frame.node, i) <= start) continue;
    ASSIGN_OR_RETURN(const uint8_t* child, ReadChild(frame.node, frame.blockno, i, level - 1));
    stack[top++] = Frame{layout_.Child(frame.node, i), child, 0};
  }
  return Status::Ok();
}

Status BTree::VisitNodes(const std::function<Status(uint64_t blockno, int level)>& fn) const {
  RETURN_IF_ERROR(spec_status_);
  if (root_ == 0) return Status::Ok();
  ASSIGN_OR_RETURN(const uint8_t* root, ReadNode(root_, -1));
  return VisitSubtree(root_, root, fn);
}

Status BTree::VisitSubtree(uint64_t blockno, const uint8_t* node,
                           const std::function<Status(uint64_t, int)>& fn) const {
  const int level = BTreeNodeLevel(node);
  RETURN_IF_ERROR(fn(blockno, level));
  if (level == 0) return Status::Ok();
  const int count = BTreeNodeCount(node);
  for (int i = 0; i < count; ++i) {
    ASSIGN_OR_RETURN(const uint8_t* child, ReadChild(node, blockno, i, level - 1));
    RETURN_IF_ERROR(VisitSubtree(layout_.Child(node, i), child, fn));
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Validate: the invariants of docs/btree.md, numbered as there.

struct BTree::ValidateState {
  TreeStats stats;
  Key last;  // the last leaf key seen, in key order
  bool have_last = false;
};

Status BTree::Broken(uint64_t blockno, int level, int rule, const std::string& what) const {
  static constexpr const char* kRules[] = {"",          "node header",    "levels",       "fill",
                                           "key order", "separator keys", "interval ends"};
  return Status::Corruption(fmt::format("{} (level {}): rule {} ({}): {}", Where(blockno), level,
                                        rule, kRules[rule], what));
}

Status BTree::Validate(TreeStats* stats) const {
  RETURN_IF_ERROR(spec_status_);
  ValidateState state;
  if (root_ != 0) {
    ASSIGN_OR_RETURN(const uint8_t* root, ReadNode(root_, -1));
    state.stats.height = BTreeNodeLevel(root) + 1;
    uint64_t max_end;
    RETURN_IF_ERROR(ValidateSubtree(root_, root, /*is_root=*/true, &state, &max_end));
  }
  if (stats) *stats = state.stats;
  return Status::Ok();
}

Status BTree::ValidateSubtree(uint64_t blockno, const uint8_t* node, bool is_root,
                              ValidateState* state, uint64_t* max_end) const {
  const int level = BTreeNodeLevel(node);
  const int count = BTreeNodeCount(node);
  ++state->stats.nodes;
  if (is_root && level > 0 && count < 2) {
    return Broken(blockno, level, 3, fmt::format("internal root with {} entry", count));
  }
  if (!is_root && count < MinFill(level)) {
    return Broken(blockno, level, 3,
                  fmt::format("{} entries, fewer than the minimum {}", count, MinFill(level)));
  }
  if (level == 0) return ValidateLeaf(blockno, node, state, max_end);
  return ValidateInternal(blockno, node, state, max_end);
}

Status BTree::ValidateLeaf(uint64_t blockno, const uint8_t* node, ValidateState* state,
                           uint64_t* max_end) const {
  const int count = BTreeNodeCount(node);
  ++state->stats.leaves;
  state->stats.records += count;
  *max_end = 0;
  for (int i = 0; i < count; ++i) {
    Key key = KeyAt(node, i);
    if (state->have_last && CompareKeys(state->last, key, spec_.key_words) >= 0) {
      return Broken(blockno, 0, 4,
                    fmt::format("key {} at entry {} does not follow key {}", KeyString(key), i,
                                KeyString(state->last)));
    }
    state->last = key;
    state->have_last = true;
    if (!spec_.is_interval()) continue;
    uint64_t end = RecordEnd(node, i);
    if (end <= key.w[0]) {
      return Broken(blockno, 0, 6,
                    fmt::format("record {} at entry {} ends at {}, not after its start",
                                KeyString(key), i, end));
    }
    *max_end = std::max(*max_end, end);
  }
  return Status::Ok();
}

Status BTree::ValidateInternal(uint64_t blockno, const uint8_t* node, ValidateState* state,
                               uint64_t* max_end) const {
  const int count = BTreeNodeCount(node);
  const int level = BTreeNodeLevel(node);
  *max_end = 0;
  for (int i = 0; i < count; ++i) {
    if (i > 0 && Compare(node, i, KeyAt(node, i - 1)) <= 0) {
      return Broken(blockno, level, 4,
                    fmt::format("key {} at entry {} does not follow key {}",
                                KeyString(KeyAt(node, i)), i, KeyString(KeyAt(node, i - 1))));
    }
    Result<const uint8_t*> child = ReadChild(node, blockno, i, level - 1);
    if (!child.ok()) {
      return child.status().WithContext(fmt::format(
          "{} (level {}) entry {}: rule 1 or 2 (node header, levels)", Where(blockno), level, i));
    }
    if (std::memcmp(layout_.key(node, i), layout_.key(*child, 0), layout_.key_size) != 0) {
      return Broken(blockno, level, 5,
                    fmt::format("key {} at entry {} differs from the first key {} of "
                                "child {}",
                                KeyString(KeyAt(node, i)), i, KeyString(KeyAt(*child, 0)),
                                layout_.Child(node, i)));
    }
    uint64_t child_max_end;
    RETURN_IF_ERROR(ValidateSubtree(layout_.Child(node, i), *child, false, state, &child_max_end));
    if (spec_.is_interval() && layout_.MaxEnd(node, i) != child_max_end) {
      return Broken(blockno, level, 6,
                    fmt::format("max_end {} at entry {}, but child {} ends at {}",
                                layout_.MaxEnd(node, i), i, layout_.Child(node, i), child_max_end));
    }
    *max_end = std::max(*max_end, child_max_end);
  }
  return Status::Ok();
}

}  // namespace daxfs::btree
