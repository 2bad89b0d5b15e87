// libFuzzer target: the B+tree node decoder. Input: one 4 KiB node (zero-padded), the first two
// bytes choose the tree shape. Header checks and entry access must be safe on any bytes.
#include <cstdint>
#include <cstring>
#include <vector>

#include "format/btree_node.h"
#include "format/node.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace daxfs::format;
  if (size < 2) return 0;
  int key_words = 1 + data[0] % 4;
  static const int kValueSizes[] = {0, 8, 24, 200, 1024};
  int value_size = kValueSizes[data[1] % 5];
  bool interval = data[1] & 0x80;
  daxfs::Result<NodeLayout> layout = ComputeNodeLayout(key_words, value_size, interval);
  if (!layout.ok()) return 0;
  std::vector<uint8_t> block(kBlockSize, 0);
  std::memcpy(block.data(), data + 2, std::min(size - 2, block.size()));
  // Make the checksum valid half of the time so that decoding goes past it.
  if (data[0] & 0x80) SealBlock(block.data());
  uint64_t blockno = DecodeNodeHeader(block.data()).blockno;
  if (!VerifyBlock(block.data(), BlockType::kBTreeNode, blockno).ok()) return 0;
  uint16_t tree_id = DecodeBTreeNodeHeader(block.data()).tree_id;
  daxfs::Result<BTreeNodeHeader> h = DecodeBTreeNode(block.data(), blockno, *layout, tree_id);
  if (!h.ok()) return 0;
  uint64_t sink = 0;
  for (int i = 0; i < h->count; ++i) {
    sink += layout->KeyWord(block.data(), i, 0);
    if (h->level == 0) {
      if (value_size) sink += layout->value(block.data(), i)[0];
    } else {
      sink += layout->Child(block.data(), i);
      if (layout->interval) sink += layout->MaxEnd(block.data(), i);
    }
  }
  volatile uint64_t keep = sink;
  (void)keep;
  return 0;
}
