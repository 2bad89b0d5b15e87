// On-media layout of a B+tree node (docs/format.md): the B+tree header after the common header
// and the parallel entry arrays. Pure encode/decode on block bytes, no I/O; knows nothing about
// how trees are searched or changed.
//
//   offset size field
//   0      32   common node header (format/node.h), type kBTreeNode
//   32     2    tree_id     TreeId of the tree the node belongs to
//   34     2    level       0 for a leaf; a node's children are one level below it
//   36     2    count       entries in use
//   38     2    flags       bit 0: the tree is an interval tree (set on every node of such a tree)
//   40     8    reserved    0
//   48     ...  entries:
//     leaf:     key[capacity]           at 48, key_size bytes each
//               value[capacity]         at 48 + capacity * key_size, value_size bytes each
//     internal: key[capacity]           at 48
//               child[capacity]         u64 block numbers, after the keys
//               max_end[capacity]       u64, after the children (interval trees only)
// A key is key_words little-endian u64 words. Internal entry i describes child i: its key and
// (interval trees) the highest record end in its subtree. Entries >= count are unspecified.
#pragma once

#include <cstdint>
#include <cstring>

#include "base/coding.h"
#include "daxfs/status.h"
#include "format/layout.h"
#include "format/node.h"

namespace daxfs::format {

inline constexpr uint32_t kBTreeHeaderOffset = kNodeHeaderSize;  // 32
inline constexpr uint32_t kBTreeEntriesOffset = 48;
inline constexpr uint32_t kBTreeEntryBytes = kBlockSize - kBTreeEntriesOffset;  // 4048
static_assert(kBTreeHeaderOffset + 16 == kBTreeEntriesOffset, "B+tree header is 16 bytes");

inline constexpr uint16_t kBTreeFlagInterval = 1;
inline constexpr uint16_t kBTreeKnownFlags = kBTreeFlagInterval;

inline constexpr int kBTreeMaxKeyWords = 4;
inline constexpr int kBTreeMaxValueSize = 1024;
inline constexpr int kBTreeMaxLevels = 16;  // levels 0..15
// The smallest capacity a node may have: a split of a full node must leave two non-empty halves
// that can each lose an entry. (4 key words and 1024-byte values give exactly 3.)
inline constexpr uint32_t kBTreeMinCapacity = 3;

// The B+tree fields of a node (offsets 32..47).
struct BTreeNodeHeader {
  uint16_t tree_id = 0;
  uint16_t level = 0;
  uint16_t count = 0;
  uint16_t flags = 0;
};

// Writes the B+tree header fields and zeroes the reserved bytes.
void EncodeBTreeNodeHeader(const BTreeNodeHeader& header, uint8_t* block);
BTreeNodeHeader DecodeBTreeNodeHeader(const uint8_t* block);

inline uint16_t BTreeNodeLevel(const uint8_t* block) { return base::DecodeU16(block + 34); }
inline uint16_t BTreeNodeCount(const uint8_t* block) { return base::DecodeU16(block + 36); }
inline void SetBTreeNodeCount(uint8_t* block, uint16_t count) {
  base::EncodeU16(block + 36, count);
}

// Capacities and array offsets of the nodes of one tree configuration, with accessors that read
// and write entry i in place. Accessors do not check i against the capacity.
struct NodeLayout {
  uint32_t key_words = 0;
  uint32_t key_size = 0;    // key_words * 8
  uint32_t value_size = 0;  // leaf value bytes
  bool interval = false;
  uint32_t leaf_capacity = 0;
  uint32_t internal_capacity = 0;
  uint32_t leaf_values_offset = 0;        // 48 + leaf_capacity * key_size
  uint32_t internal_children_offset = 0;  // 48 + internal_capacity * key_size
  uint32_t internal_max_end_offset = 0;   // after the children; 0 unless interval

  uint32_t capacity(int level) const { return level == 0 ? leaf_capacity : internal_capacity; }
  uint16_t flags() const { return interval ? kBTreeFlagInterval : 0; }

  const uint8_t* key(const uint8_t* block, int i) const {
    return block + kBTreeEntriesOffset + size_t(i) * key_size;
  }
  uint8_t* key(uint8_t* block, int i) const {
    return block + kBTreeEntriesOffset + size_t(i) * key_size;
  }
  uint64_t KeyWord(const uint8_t* block, int i, int word) const {
    return base::DecodeU64(key(block, i) + 8 * word);
  }
  // Reads key_words words into `words` (which must hold key_words).
  void ReadKey(const uint8_t* block, int i, uint64_t* words) const {
    std::memcpy(words, key(block, i), key_size);
  }
  void WriteKey(uint8_t* block, int i, const uint64_t* words) const {
    std::memcpy(key(block, i), words, key_size);
  }

  const uint8_t* value(const uint8_t* block, int i) const {
    return block + leaf_values_offset + size_t(i) * value_size;
  }
  uint8_t* value(uint8_t* block, int i) const {
    return block + leaf_values_offset + size_t(i) * value_size;
  }

  uint64_t Child(const uint8_t* block, int i) const {
    return base::DecodeU64(block + internal_children_offset + 8 * size_t(i));
  }
  void SetChild(uint8_t* block, int i, uint64_t blockno) const {
    base::EncodeU64(block + internal_children_offset + 8 * size_t(i), blockno);
  }

  uint64_t MaxEnd(const uint8_t* block, int i) const {
    return base::DecodeU64(block + internal_max_end_offset + 8 * size_t(i));
  }
  void SetMaxEnd(uint8_t* block, int i, uint64_t end) const {
    base::EncodeU64(block + internal_max_end_offset + 8 * size_t(i), end);
  }
};

// The layout for keys of `key_words` (1..4) words and values of `value_size` (0..1024) bytes;
// EINVAL for sizes out of range.
Result<NodeLayout> ComputeNodeLayout(int key_words, int value_size, bool interval);

// Checks the header of a B+tree node read from block `blockno` against what a node of the tree
// `tree_id` with `layout` must look like: magic, type and own number of the common header (not the
// checksum: see VerifyBlock), tree id, level < kBTreeMaxLevels, flags, reserved bytes zero, and
// 1 <= count <= capacity(level). Returns the header, or EUCLEAN naming the block and the reason.
// Safe on arbitrary bytes (the fuzz target's entry point).
Result<BTreeNodeHeader> DecodeBTreeNode(const uint8_t* block, uint64_t blockno,
                                        const NodeLayout& layout, uint16_t tree_id);

}  // namespace daxfs::format
