// B+tree node header coding, layout computation and the header sanity check. No I/O; knows
// nothing about searching or changing a tree.
#include "format/btree_node.h"

#include <fmt/core.h>

namespace daxfs::format {

using base::DecodeU16;
using base::DecodeU64;
using base::EncodeU16;
using base::EncodeU64;

void EncodeBTreeNodeHeader(const BTreeNodeHeader& h, uint8_t* block) {
  EncodeU16(block + 32, h.tree_id);
  EncodeU16(block + 34, h.level);
  EncodeU16(block + 36, h.count);
  EncodeU16(block + 38, h.flags);
  EncodeU64(block + 40, 0);
}

BTreeNodeHeader DecodeBTreeNodeHeader(const uint8_t* block) {
  BTreeNodeHeader h;
  h.tree_id = DecodeU16(block + 32);
  h.level = DecodeU16(block + 34);
  h.count = DecodeU16(block + 36);
  h.flags = DecodeU16(block + 38);
  return h;
}

Result<NodeLayout> ComputeNodeLayout(int key_words, int value_size, bool interval) {
  if (key_words < 1 || key_words > kBTreeMaxKeyWords) {
    return Status::Invalid(
        fmt::format("B+tree key of {} words (1..{} allowed)", key_words, kBTreeMaxKeyWords));
  }
  if (value_size < 0 || value_size > kBTreeMaxValueSize) {
    return Status::Invalid(
        fmt::format("B+tree value of {} bytes (0..{} allowed)", value_size, kBTreeMaxValueSize));
  }
  NodeLayout l;
  l.key_words = key_words;
  l.key_size = 8 * key_words;
  l.value_size = value_size;
  l.interval = interval;
  l.leaf_capacity = kBTreeEntryBytes / (l.key_size + l.value_size);
  l.internal_capacity = kBTreeEntryBytes / (l.key_size + 8 + (interval ? 8 : 0));
  l.leaf_values_offset = kBTreeEntriesOffset + l.leaf_capacity * l.key_size;
  l.internal_children_offset = kBTreeEntriesOffset + l.internal_capacity * l.key_size;
  l.internal_max_end_offset = interval ? l.internal_children_offset + 8 * l.internal_capacity : 0;
  return l;
}

// The smallest key and value give the largest capacities; both must fit the u16 count.
static_assert(kBTreeEntryBytes / 8 <= UINT16_MAX);
// The largest key and value still give the minimum capacity.
static_assert(kBTreeEntryBytes / (8 * kBTreeMaxKeyWords + kBTreeMaxValueSize) >= kBTreeMinCapacity);

namespace {

Status Bad(uint64_t blockno, const std::string& why) {
  return Status::Corruption(fmt::format("block {}: B+tree node: {}", blockno, why));
}

}  // namespace

Result<BTreeNodeHeader> DecodeBTreeNode(const uint8_t* block, uint64_t blockno,
                                        const NodeLayout& layout, uint16_t tree_id) {
  NodeHeader common = DecodeNodeHeader(block);
  if (common.magic != kNodeMagic) {
    return Bad(blockno, fmt::format("bad magic 0x{:08x}", common.magic));
  }
  if (common.type != BlockType::kBTreeNode) {
    return Bad(blockno, fmt::format("block type {}", static_cast<unsigned>(common.type)));
  }
  if (common.blockno != blockno) {
    return Bad(blockno, fmt::format("header says it is block {}", common.blockno));
  }
  BTreeNodeHeader h = DecodeBTreeNodeHeader(block);
  if (h.tree_id != tree_id) {
    return Bad(blockno, fmt::format("tree id {} where {} was expected", h.tree_id, tree_id));
  }
  if (h.level >= kBTreeMaxLevels) {
    return Bad(blockno, fmt::format("level {} (at most {})", h.level, kBTreeMaxLevels - 1));
  }
  if (h.flags != layout.flags()) {
    return Bad(blockno,
               fmt::format("flags 0x{:x} where 0x{:x} was expected", h.flags, layout.flags()));
  }
  if (DecodeU64(block + 40) != 0) {
    return Bad(blockno, "reserved bytes 40..47 are not zero");
  }
  uint32_t capacity = layout.capacity(h.level);
  if (h.count == 0 || h.count > capacity) {
    return Bad(blockno,
               fmt::format("{} entries at level {} (1..{} allowed)", h.count, h.level, capacity));
  }
  return h;
}

}  // namespace daxfs::format
