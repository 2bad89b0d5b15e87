// Entry-array editing of one or two B+tree nodes: write, insert, remove, split, merge, balance.
// Works on raw node bytes through format::NodeLayout; knows nothing about paths, copy-on-write,
// the node store, or what keys and values mean. Used only by btree.cc.
#pragma once

#include <cstdint>
#include <cstring>

#include "format/btree_node.h"

namespace daxfs::btree::internal {

// One entry to write: a leaf entry uses `key` and `value`, an internal one `key`, `child` and
// (interval trees) `max_end`.
struct EntryRef {
  const uint8_t* key = nullptr;  // layout.key_size bytes
  const uint8_t* value = nullptr;
  uint64_t child = 0;
  uint64_t max_end = 0;
};

class NodeEditor {
 public:
  explicit NodeEditor(const format::NodeLayout& layout) : l_(layout) {}

  void Write(uint8_t* node, int level, int i, const EntryRef& e) const {
    std::memcpy(l_.key(node, i), e.key, l_.key_size);
    if (level == 0) {
      if (l_.value_size) std::memcpy(l_.value(node, i), e.value, l_.value_size);
      return;
    }
    l_.SetChild(node, i, e.child);
    if (l_.interval) l_.SetMaxEnd(node, i, e.max_end);
  }

  // REQUIRES: the node is not full.
  void Insert(uint8_t* node, int level, int i, const EntryRef& e) const {
    int count = format::BTreeNodeCount(node);
    Copy(node, i, node, i + 1, count - i, level);
    Write(node, level, i, e);
    format::SetBTreeNodeCount(node, count + 1);
  }

  void Remove(uint8_t* node, int level, int i) const {
    int count = format::BTreeNodeCount(node);
    Copy(node, i + 1, node, i, count - i - 1, level);
    format::SetBTreeNodeCount(node, count - 1);
  }

  // `left` is full. Of its entries plus `e` inserted at position i, `left` keeps the first
  // `left_count` (1..capacity) and the empty node `right` receives the rest.
  void InsertSplit(uint8_t* left, uint8_t* right, int level, int i, const EntryRef& e,
                   int left_count) const {
    int count = format::BTreeNodeCount(left);
    if (i < left_count) {
      Copy(left, left_count - 1, right, 0, count - left_count + 1, level);
      Copy(left, i, left, i + 1, left_count - 1 - i, level);
      Write(left, level, i, e);
    } else {
      Copy(left, left_count, right, 0, i - left_count, level);
      Write(right, level, i - left_count, e);
      Copy(left, i, right, i - left_count + 1, count - i, level);
    }
    format::SetBTreeNodeCount(left, left_count);
    format::SetBTreeNodeCount(right, count + 1 - left_count);
  }

  // Appends all entries of `src` (whose keys all follow dst's) to `dst`.
  void Append(uint8_t* dst, const uint8_t* src, int level) const {
    int dst_count = format::BTreeNodeCount(dst);
    int src_count = format::BTreeNodeCount(src);
    Copy(src, 0, dst, dst_count, src_count, level);
    format::SetBTreeNodeCount(dst, dst_count + src_count);
  }

  // Puts all entries of `src` (whose keys all precede dst's) in front of dst's.
  void Prepend(uint8_t* dst, const uint8_t* src, int level) const {
    int dst_count = format::BTreeNodeCount(dst);
    int src_count = format::BTreeNodeCount(src);
    Copy(dst, 0, dst, src_count, dst_count, level);
    Copy(src, 0, dst, 0, src_count, level);
    format::SetBTreeNodeCount(dst, dst_count + src_count);
  }

  // Moves entries between adjacent siblings so that `left` holds half (rounded down) of both.
  void Balance(uint8_t* left, uint8_t* right, int level) const {
    int left_count = format::BTreeNodeCount(left);
    int right_count = format::BTreeNodeCount(right);
    int want = (left_count + right_count) / 2;
    if (left_count < want) {
      int n = want - left_count;
      Copy(right, 0, left, left_count, n, level);
      Copy(right, n, right, 0, right_count - n, level);
    } else if (left_count > want) {
      int n = left_count - want;
      Copy(right, 0, right, n, right_count, level);
      Copy(left, want, right, 0, n, level);
    }
    format::SetBTreeNodeCount(left, want);
    format::SetBTreeNodeCount(right, left_count + right_count - want);
  }

 private:
  // Moves n entries (every array of the node kind) from src[from..] to dst[to..]; src and dst
  // may be the same node with overlapping ranges.
  void Copy(const uint8_t* src, int from, uint8_t* dst, int to, int n, int level) const {
    if (n <= 0) return;
    Move(src, dst, format::kBTreeEntriesOffset, l_.key_size, from, to, n);
    if (level == 0) {
      if (l_.value_size) Move(src, dst, l_.leaf_values_offset, l_.value_size, from, to, n);
      return;
    }
    Move(src, dst, l_.internal_children_offset, 8, from, to, n);
    if (l_.interval) Move(src, dst, l_.internal_max_end_offset, 8, from, to, n);
  }

  static void Move(const uint8_t* src, uint8_t* dst, uint32_t offset, uint32_t size, int from,
                   int to, int n) {
    std::memmove(dst + offset + size_t(to) * size, src + offset + size_t(from) * size,
                 size_t(n) * size);
  }

  const format::NodeLayout& l_;
};

}  // namespace daxfs::btree::internal
