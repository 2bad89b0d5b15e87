// Tests for the B+tree node layout (btree_node.cc): capacities and offsets, entry accessors,
// header coding, and the header sanity check on good and bad nodes.
#include "format/btree_node.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <cstring>

#include "base/random.h"

namespace daxfs::format {
namespace {

using ::testing::HasSubstr;

constexpr uint16_t kTree = static_cast<uint16_t>(TreeId::kScratch);

NodeLayout Layout(int key_words, int value_size, bool interval) {
  Result<NodeLayout> l = ComputeNodeLayout(key_words, value_size, interval);
  EXPECT_TRUE(l.ok()) << l.status().ToString();
  return l.ok() ? *l : NodeLayout();
}

TEST(NodeLayoutTest, CapacitiesFollowTheFormula) {
  NodeLayout l = Layout(2, 24, false);
  EXPECT_EQ(l.key_size, 16u);
  EXPECT_EQ(l.leaf_capacity, 4048u / 40);      // 101
  EXPECT_EQ(l.internal_capacity, 4048u / 24);  // 168
  EXPECT_EQ(l.leaf_values_offset, 48u + 101 * 16);
  EXPECT_EQ(l.internal_children_offset, 48u + 168 * 16);
  EXPECT_EQ(l.internal_max_end_offset, 0u);
  EXPECT_EQ(l.flags(), 0);

  NodeLayout iv = Layout(3, 16, true);
  EXPECT_EQ(iv.leaf_capacity, 4048u / 40);
  EXPECT_EQ(iv.internal_capacity, 4048u / 40);  // 24 + 8 + 8
  EXPECT_EQ(iv.internal_max_end_offset, iv.internal_children_offset + 8 * iv.internal_capacity);
  EXPECT_EQ(iv.flags(), kBTreeFlagInterval);
}

TEST(NodeLayoutTest, ExtremesFitTheBlock) {
  for (int kw = 1; kw <= kBTreeMaxKeyWords; ++kw) {
    for (int vs : {0, 1, 8, 24, 200, 1023, kBTreeMaxValueSize}) {
      for (bool interval : {false, true}) {
        NodeLayout l = Layout(kw, vs, interval);
        EXPECT_GE(l.leaf_capacity, kBTreeMinCapacity);
        EXPECT_GE(l.internal_capacity, kBTreeMinCapacity);
        EXPECT_LE(l.leaf_values_offset + l.leaf_capacity * l.value_size, kBlockSize);
        uint32_t internal_end = l.internal_children_offset + 8 * l.internal_capacity;
        if (interval) internal_end = l.internal_max_end_offset + 8 * l.internal_capacity;
        EXPECT_LE(internal_end, kBlockSize);
      }
    }
  }
  EXPECT_EQ(Layout(4, 1024, false).leaf_capacity, 3u);
  EXPECT_EQ(Layout(1, 0, false).leaf_capacity, 506u);
}

TEST(NodeLayoutTest, RejectsBadSizes) {
  EXPECT_EQ(ComputeNodeLayout(0, 8, false).status().code(), EINVAL);
  EXPECT_EQ(ComputeNodeLayout(5, 8, false).status().code(), EINVAL);
  EXPECT_EQ(ComputeNodeLayout(2, -1, false).status().code(), EINVAL);
  EXPECT_EQ(ComputeNodeLayout(2, 1025, false).status().code(), EINVAL);
}

class BTreeNodeTest : public ::testing::Test {
 protected:
  void Init(const NodeLayout& l, uint16_t level, uint16_t count, uint64_t blockno = 99) {
    block_.fill(0);
    NodeHeader h;
    h.blockno = blockno;
    EncodeNodeHeader(h, block_.data());
    BTreeNodeHeader b;
    b.tree_id = kTree;
    b.level = level;
    b.count = count;
    b.flags = l.flags();
    EncodeBTreeNodeHeader(b, block_.data());
  }
  Status Check(const NodeLayout& l, uint64_t blockno = 99) {
    return DecodeBTreeNode(block_.data(), blockno, l, kTree).status();
  }
  uint8_t* b() { return block_.data(); }

  alignas(64) std::array<uint8_t, kBlockSize> block_;
};

TEST_F(BTreeNodeTest, HeaderRoundTripAtDocumentedOffsets) {
  NodeLayout l = Layout(2, 8, true);
  Init(l, 3, 17);
  BTreeNodeHeader h = DecodeBTreeNodeHeader(b());
  EXPECT_EQ(h.tree_id, kTree);
  EXPECT_EQ(h.level, 3);
  EXPECT_EQ(h.count, 17);
  EXPECT_EQ(h.flags, kBTreeFlagInterval);
  EXPECT_EQ(base::DecodeU16(b() + 32), kTree);
  EXPECT_EQ(base::DecodeU16(b() + 34), 3);
  EXPECT_EQ(base::DecodeU16(b() + 36), 17);
  EXPECT_EQ(base::DecodeU16(b() + 38), 1);
  EXPECT_EQ(BTreeNodeLevel(b()), 3);
  EXPECT_EQ(BTreeNodeCount(b()), 17);
  SetBTreeNodeCount(b(), 5);
  EXPECT_EQ(BTreeNodeCount(b()), 5);
}

TEST_F(BTreeNodeTest, LeafAccessorsReadWhatTheyWrite) {
  NodeLayout l = Layout(3, 24, false);
  Init(l, 0, static_cast<uint16_t>(l.leaf_capacity));
  for (uint32_t i = 0; i < l.leaf_capacity; ++i) {
    uint64_t words[3] = {i, i * 1000, ~uint64_t{i}};
    l.WriteKey(b(), i, words);
    std::memset(l.value(b(), i), int(i), l.value_size);
  }
  for (uint32_t i = 0; i < l.leaf_capacity; ++i) {
    uint64_t words[3];
    l.ReadKey(b(), i, words);
    EXPECT_EQ(words[0], i);
    EXPECT_EQ(l.KeyWord(b(), i, 1), i * 1000);
    EXPECT_EQ(words[2], ~uint64_t{i});
    EXPECT_EQ(l.value(b(), i)[23], uint8_t(i));
  }
  // Keys are little-endian words at 48 + i * key_size.
  EXPECT_EQ(base::DecodeU64(b() + 48 + 5 * 24 + 8), 5000u);
  EXPECT_EQ(l.value(b(), 0), b() + l.leaf_values_offset);
}

TEST_F(BTreeNodeTest, InternalAccessorsReadWhatTheyWrite) {
  NodeLayout l = Layout(2, 8, true);
  Init(l, 1, static_cast<uint16_t>(l.internal_capacity));
  for (uint32_t i = 0; i < l.internal_capacity; ++i) {
    uint64_t words[2] = {i * 2, i};
    l.WriteKey(b(), i, words);
    l.SetChild(b(), i, 1000 + i);
    l.SetMaxEnd(b(), i, 5000 + i);
  }
  for (uint32_t i = 0; i < l.internal_capacity; ++i) {
    EXPECT_EQ(l.KeyWord(b(), i, 0), i * 2);
    EXPECT_EQ(l.Child(b(), i), 1000 + i);
    EXPECT_EQ(l.MaxEnd(b(), i), 5000 + i);
  }
  EXPECT_EQ(base::DecodeU64(b() + l.internal_children_offset + 8 * 3), 1003u);
  EXPECT_EQ(base::DecodeU64(b() + l.internal_max_end_offset + 8 * 3), 5003u);
  EXPECT_TRUE(Check(l).ok()) << Check(l).ToString();
}

TEST_F(BTreeNodeTest, DecodeAcceptsGoodNodes) {
  NodeLayout l = Layout(2, 24, false);
  Init(l, 0, 1);
  EXPECT_TRUE(Check(l).ok());
  Init(l, 0, static_cast<uint16_t>(l.leaf_capacity));
  EXPECT_TRUE(Check(l).ok());
  Init(l, kBTreeMaxLevels - 1, static_cast<uint16_t>(l.internal_capacity));
  Result<BTreeNodeHeader> h = DecodeBTreeNode(b(), 99, l, kTree);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->level, kBTreeMaxLevels - 1);
}

struct BadCase {
  const char* name;
  void (*corrupt)(uint8_t* block, const NodeLayout& l);
  const char* reason;
};

TEST_F(BTreeNodeTest, DecodeRejectsBadHeaders) {
  NodeLayout l = Layout(2, 24, false);
  const BadCase cases[] = {
      {"magic", [](uint8_t* p, const NodeLayout&) { p[0] ^= 1; }, "magic"},
      {"type", [](uint8_t* p, const NodeLayout&) { base::EncodeU16(p + 4, 1); }, "block type 1"},
      {"blockno", [](uint8_t* p, const NodeLayout&) { base::EncodeU64(p + 16, 98); }, "block 98"},
      {"tree id", [](uint8_t* p, const NodeLayout&) { base::EncodeU16(p + 32, 3); }, "tree id 3"},
      {"level", [](uint8_t* p, const NodeLayout&) { base::EncodeU16(p + 34, 16); }, "level 16"},
      {"flags", [](uint8_t* p, const NodeLayout&) { base::EncodeU16(p + 38, 1); }, "flags 0x1"},
      {"unknown flag", [](uint8_t* p, const NodeLayout&) { base::EncodeU16(p + 38, 4); },
       "flags 0x4"},
      {"reserved", [](uint8_t* p, const NodeLayout&) { p[45] = 1; }, "reserved"},
      {"empty", [](uint8_t* p, const NodeLayout&) { SetBTreeNodeCount(p, 0); }, "0 entries"},
      {"leaf overfull",
       [](uint8_t* p, const NodeLayout& l) { SetBTreeNodeCount(p, l.leaf_capacity + 1); },
       "102 entries"},
      {"internal overfull",
       [](uint8_t* p, const NodeLayout& l) {
         base::EncodeU16(p + 34, 1);
         SetBTreeNodeCount(p, l.internal_capacity + 1);
       },
       "169 entries"},
  };
  for (const BadCase& c : cases) {
    Init(l, 0, 10);
    c.corrupt(b(), l);
    Status s = Check(l);
    EXPECT_EQ(s.code(), EUCLEAN) << c.name;
    EXPECT_THAT(s.message(), HasSubstr("block 99")) << c.name;
    EXPECT_THAT(s.message(), HasSubstr(c.reason)) << c.name << ": " << s.message();
  }
}

TEST_F(BTreeNodeTest, IntervalFlagMustMatchTheTree) {
  NodeLayout plain = Layout(2, 8, false);
  NodeLayout interval = Layout(2, 8, true);
  Init(interval, 0, 3);
  EXPECT_EQ(Check(plain).code(), EUCLEAN);
  EXPECT_TRUE(Check(interval).ok());
}

// The decoder must be safe on arbitrary bytes (what the fuzz target feeds it).
TEST_F(BTreeNodeTest, DecodeSurvivesRandomBytes) {
  NodeLayout l = Layout(2, 24, true);
  base::Random rnd(base::SeedFromEnv(42));
  int accepted = 0;
  for (int n = 0; n < 2000; ++n) {
    for (auto& byte : block_) byte = static_cast<uint8_t>(rnd.Next());
    if (n % 2) {  // a plausible header with random fields
      Init(l, static_cast<uint16_t>(rnd.Uniform(20)), static_cast<uint16_t>(rnd.Uniform(300)));
    }
    Result<BTreeNodeHeader> h = DecodeBTreeNode(b(), 99, l, kTree);
    if (h.ok()) {
      ++accepted;
      EXPECT_LT(h->level, kBTreeMaxLevels);
      EXPECT_GE(h->count, 1);
      EXPECT_LE(h->count, l.capacity(h->level));
    } else {
      EXPECT_EQ(h.status().code(), EUCLEAN);
    }
  }
  EXPECT_GT(accepted, 0);
}

}  // namespace
}  // namespace daxfs::format
