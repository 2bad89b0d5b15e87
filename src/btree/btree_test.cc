// Unit tests of the B+tree over the in-memory node store: every operation and error case,
// splits and merges, cursors across leaves, overlap queries, Validate on corrupted nodes, and
// the copy-on-write rules (committed nodes never change; no node leaks; ENOSPC changes nothing).
#include "btree/btree.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <set>
#include <vector>

#include "base/coding.h"
#include "base/random.h"
#include "btree/testing/mem_node_store.h"

namespace daxfs::btree {
namespace {

using ::testing::HasSubstr;
using testing::MemNodeStore;

Key K(uint64_t a, uint64_t b = 0, uint64_t c = 0, uint64_t d = 0) {
  Key k;
  k.w[0] = a;
  k.w[1] = b;
  k.w[2] = c;
  k.w[3] = d;
  return k;
}

// A value of `size` bytes that encodes x in its first 8 bytes (or fewer) and repeats it after.
std::vector<uint8_t> V(uint64_t x, size_t size) {
  std::vector<uint8_t> v(size);
  for (size_t i = 0; i < size; ++i) v[i] = static_cast<uint8_t>(x >> (8 * (i % 8)));
  return v;
}

// Interval records: [key.w[0], key.w[0] + length), the length in the value's first 8 bytes.
uint64_t LengthEnd(const Key& key, const uint8_t* value) {
  return key.w[0] + base::DecodeU64(value);
}

TreeSpec Spec(uint16_t key_words, uint16_t value_size, bool interval = false) {
  TreeSpec spec;
  spec.id = format::TreeId::kScratch;
  spec.name = "test";
  spec.key_words = key_words;
  spec.value_size = value_size;
  if (interval) spec.interval_end = LengthEnd;
  return spec;
}

class BTreeTest : public ::testing::Test {
 protected:
  void Open(const TreeSpec& spec, uint64_t root = 0) {
    spec_ = spec;
    tree_ = std::make_unique<BTree>(spec_, &store_, root);
  }
  void SetUp() override { Open(Spec(2, 8)); }

  std::vector<uint8_t> Val(uint64_t x) { return V(x, spec_.value_size); }

  void Insert(const Key& k, uint64_t x) {
    Status s = tree_->Insert(k, Val(x));
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  // The value stored under k decoded as V() wrote it, or -1 when absent.
  int64_t Lookup(const Key& k) {
    std::vector<uint8_t> v(spec_.value_size);
    Result<bool> found = tree_->Get(k, v.data());
    EXPECT_TRUE(found.ok()) << found.status().ToString();
    if (!found.ok() || !*found) return -1;
    uint64_t x = 0;
    std::memcpy(&x, v.data(), std::min<size_t>(8, v.size()));
    return static_cast<int64_t>(x);
  }

  TreeStats Validate() {
    TreeStats stats;
    Status s = tree_->Validate(&stats);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return stats;
  }

  // Commits, then checks that no committed node was ever changed, that the store was used by
  // its contract, and that the nodes in use are exactly those reachable from the root.
  void Commit() {
    Status s = store_.CheckCommittedUnchanged();
    ASSERT_TRUE(s.ok()) << s.ToString();
    store_.Commit();
    ASSERT_TRUE(store_.misuse().empty()) << store_.misuse();
    ASSERT_EQ(Reachable(), store_.CommittedNodes());
  }

  std::vector<uint64_t> Reachable() {
    std::vector<uint64_t> nodes;
    Status s = tree_->VisitNodes([&](uint64_t b, int) {
      nodes.push_back(b);
      return Status::Ok();
    });
    EXPECT_TRUE(s.ok()) << s.ToString();
    std::sort(nodes.begin(), nodes.end());
    return nodes;
  }

  // (block, level) of every node, pre-order.
  std::vector<std::pair<uint64_t, int>> Nodes() {
    std::vector<std::pair<uint64_t, int>> nodes;
    EXPECT_TRUE(tree_
                    ->VisitNodes([&](uint64_t b, int level) {
                      nodes.emplace_back(b, level);
                      return Status::Ok();
                    })
                    .ok());
    return nodes;
  }
  uint64_t NthNodeAtLevel(int level, int n) {
    for (auto [b, l] : Nodes()) {
      if (l == level && n-- == 0) return b;
    }
    ADD_FAILURE() << "no node " << n << " at level " << level;
    return 0;
  }

  std::vector<uint64_t> ScanForward() {
    std::vector<uint64_t> keys;
    Cursor c(tree_.get());
    EXPECT_TRUE(c.SeekFirst().ok());
    while (c.Valid()) {
      keys.push_back(c.key().w[0]);
      EXPECT_TRUE(c.Next().ok());
    }
    return keys;
  }
  std::vector<uint64_t> ScanBackward() {
    std::vector<uint64_t> keys;
    Cursor c(tree_.get());
    EXPECT_TRUE(c.SeekLast().ok());
    while (c.Valid()) {
      keys.push_back(c.key().w[0]);
      EXPECT_TRUE(c.Prev().ok());
    }
    return keys;
  }

  std::vector<uint64_t> Overlapping(uint64_t start, uint64_t end, size_t limit = SIZE_MAX) {
    std::vector<uint64_t> starts;
    Status s = tree_->Overlaps(start, end, [&](const Key& k, std::span<const uint8_t>) {
      starts.push_back(k.w[0]);
      return starts.size() < limit;
    });
    EXPECT_TRUE(s.ok()) << s.ToString();
    return starts;
  }

  TreeSpec spec_;
  MemNodeStore store_;
  std::unique_ptr<BTree> tree_;
};

// ---------------------------------------------------------------------------------------------
// Basic operations and errors.

TEST_F(BTreeTest, EmptyTree) {
  EXPECT_EQ(tree_->root(), 0u);
  EXPECT_EQ(Lookup(K(1)), -1);
  EXPECT_EQ(tree_->Delete(K(1)).code(), ENOENT);
  EXPECT_EQ(tree_->Update(K(1), Val(1)).code(), ENOENT);
  Cursor c(tree_.get());
  for (Status s : {c.SeekFirst(), c.SeekLast(), c.SeekGE(K(0)), c.SeekLE(K(~0ull))}) {
    EXPECT_TRUE(s.ok());
    EXPECT_FALSE(c.Valid());
  }
  EXPECT_EQ(c.Next().code(), EINVAL);
  EXPECT_EQ(c.Prev().code(), EINVAL);
  TreeStats stats = Validate();
  EXPECT_EQ(stats.records, 0u);
  EXPECT_EQ(stats.nodes, 0u);
  EXPECT_EQ(stats.height, 0u);
  EXPECT_TRUE(Reachable().empty());
  EXPECT_EQ(store_.total_count(), 0u);
}

TEST_F(BTreeTest, SingleLeafOperations) {
  Insert(K(5, 1), 50);
  Insert(K(3, 9), 30);
  Insert(K(5, 0), 49);
  EXPECT_EQ(Lookup(K(5, 1)), 50);
  EXPECT_EQ(Lookup(K(3, 9)), 30);
  EXPECT_EQ(Lookup(K(5, 0)), 49);
  EXPECT_EQ(Lookup(K(5, 2)), -1);
  EXPECT_EQ(Lookup(K(0)), -1);
  EXPECT_EQ(tree_->count_delta(), 3);

  Status dup = tree_->Insert(K(3, 9), Val(1));
  EXPECT_EQ(dup.code(), EEXIST);
  EXPECT_THAT(dup.message(), HasSubstr("(0x3, 0x9)"));
  EXPECT_EQ(Lookup(K(3, 9)), 30);

  EXPECT_TRUE(tree_->Update(K(3, 9), Val(31)).ok());
  EXPECT_EQ(Lookup(K(3, 9)), 31);
  EXPECT_EQ(tree_->Update(K(3, 8), Val(1)).code(), ENOENT);

  Result<bool> added = tree_->Put(K(3, 9), Val(32));
  ASSERT_TRUE(added.ok());
  EXPECT_FALSE(*added);
  added = tree_->Put(K(4), Val(40));
  ASSERT_TRUE(added.ok());
  EXPECT_TRUE(*added);
  EXPECT_EQ(Lookup(K(3, 9)), 32);
  EXPECT_EQ(Lookup(K(4)), 40);
  EXPECT_EQ(tree_->count_delta(), 4);

  EXPECT_TRUE(tree_->Delete(K(5, 0)).ok());
  EXPECT_EQ(tree_->Delete(K(5, 0)).code(), ENOENT);
  EXPECT_EQ(Lookup(K(5, 0)), -1);
  EXPECT_EQ(tree_->count_delta(), 3);
  TreeStats stats = Validate();
  EXPECT_EQ(stats.records, 3u);
  EXPECT_EQ(stats.height, 1u);
  EXPECT_EQ(ScanForward(), (std::vector<uint64_t>{3, 4, 5}));
  Commit();
}

TEST_F(BTreeTest, DeletingTheLastRecordEmptiesTheTree) {
  Insert(K(1), 1);
  Commit();
  ASSERT_TRUE(tree_->Delete(K(1)).ok());
  EXPECT_EQ(tree_->root(), 0u);
  Commit();
  EXPECT_EQ(store_.committed_count(), 0u);
  EXPECT_EQ(store_.free_count(), store_.total_count());
}

TEST_F(BTreeTest, GetWithoutValueBufferTestsPresence) {
  Insert(K(1), 1);
  Result<bool> found = tree_->Get(K(1), nullptr);
  ASSERT_TRUE(found.ok());
  EXPECT_TRUE(*found);
}

TEST_F(BTreeTest, WrongValueSizeIsInvalidAndChangesNothing) {
  Insert(K(1), 1);
  Commit();
  uint64_t root = tree_->root();
  std::vector<uint8_t> small(7), big(9);
  EXPECT_EQ(tree_->Insert(K(2), small).code(), EINVAL);
  EXPECT_EQ(tree_->Insert(K(2), big).code(), EINVAL);
  EXPECT_EQ(tree_->Put(K(1), big).status().code(), EINVAL);
  EXPECT_EQ(tree_->Update(K(1), small).code(), EINVAL);
  EXPECT_EQ(tree_->Insert(K(2), {}).code(), EINVAL);
  EXPECT_EQ(tree_->root(), root);
  EXPECT_EQ(store_.fresh_count(), 0u);
  EXPECT_EQ(Lookup(K(1)), 1);
  EXPECT_EQ(Lookup(K(2)), -1);
}

TEST_F(BTreeTest, BadSpecIsInvalid) {
  for (TreeSpec spec : {Spec(0, 8), Spec(5, 8), Spec(2, kMaxValueSize + 1)}) {
    BTree tree(spec, &store_, 0);
    EXPECT_EQ(tree.Insert(K(1), V(1, spec.value_size)).code(), EINVAL);
    EXPECT_EQ(tree.Get(K(1), nullptr).status().code(), EINVAL);
    EXPECT_EQ(tree.Delete(K(1)).code(), EINVAL);
    EXPECT_EQ(tree.Validate().code(), EINVAL);
    Cursor c(&tree);
    EXPECT_EQ(c.SeekFirst().code(), EINVAL);
  }
}

TEST_F(BTreeTest, ZeroSizeValues) {
  Open(Spec(1, 0));
  for (uint64_t i = 0; i < 2000; ++i) ASSERT_TRUE(tree_->Insert(K(i * 3), {}).ok());
  EXPECT_EQ(tree_->Insert(K(3), {}).code(), EEXIST);
  Result<bool> found = tree_->Get(K(300), nullptr);
  ASSERT_TRUE(found.ok());
  EXPECT_TRUE(*found);
  EXPECT_FALSE(*tree_->Get(K(301), nullptr));
  Cursor c(tree_.get());
  ASSERT_TRUE(c.SeekGE(K(301)).ok());
  EXPECT_EQ(c.key().w[0], 303u);
  EXPECT_TRUE(c.value().empty());
  EXPECT_EQ(Validate().records, 2000u);
  Commit();
}

TEST(CompareKeysTest, ComparesOnlyTheGivenWords) {
  EXPECT_EQ(CompareKeys(K(1, 2), K(1, 3), 1), 0);
  EXPECT_LT(CompareKeys(K(1, 2), K(1, 3), 2), 0);
  EXPECT_GT(CompareKeys(K(2, 0), K(1, 9), 2), 0);
  EXPECT_EQ(CompareKeys(K(1, 2, 3, 4), K(1, 2, 3, 5), 3), 0);
  EXPECT_LT(CompareKeys(K(1, 2, 3, 4), K(1, 2, 3, 5), 4), 0);
  EXPECT_LT(CompareKeys(K(0, 0, 0, ~0ull), K(1), 1), 0);
}

TEST_F(BTreeTest, KeyWordsBeyondTheSpecAreIgnored) {
  Open(Spec(1, 8));
  Insert(K(5, 99, 7, 1), 50);
  EXPECT_EQ(Lookup(K(5)), 50);
  EXPECT_EQ(Lookup(K(5, 1, 2, 3)), 50);
  EXPECT_EQ(tree_->Insert(K(5, 1), Val(1)).code(), EEXIST);
  EXPECT_TRUE(tree_->Update(K(5, 2), Val(51)).ok());
  Cursor c(tree_.get());
  ASSERT_TRUE(c.SeekGE(K(5, ~0ull)).ok());
  ASSERT_TRUE(c.Valid());
  EXPECT_EQ(c.key(), K(5));  // the extra words are not stored
  EXPECT_TRUE(tree_->Delete(K(5, 42)).ok());
  EXPECT_EQ(tree_->root(), 0u);
}

// ---------------------------------------------------------------------------------------------
// Splits, merges and fill.

struct SizeCase {
  uint16_t key_words;
  uint16_t value_size;
  bool interval;
};
void PrintTo(const SizeCase& c, std::ostream* os) {
  *os << c.key_words << " key words, " << c.value_size << "-byte values"
      << (c.interval ? ", interval" : "");
}

class BTreeSizeTest : public BTreeTest, public ::testing::WithParamInterface<SizeCase> {
 protected:
  void SetUp() override {
    Open(Spec(GetParam().key_words, GetParam().value_size, GetParam().interval));
  }
  // Inserts keys 0..n-1 (times 10) in the given order, checking along the way.
  void InsertAll(const std::vector<uint64_t>& order) {
    for (size_t i = 0; i < order.size(); ++i) {
      ASSERT_NO_FATAL_FAILURE(Insert(K(order[i] * 10, order[i] % 3), 1 + order[i]));
      if (i % 97 == 0) Validate();
      if (i % 500 == 499) Commit();
    }
  }
  void DeleteAll(const std::vector<uint64_t>& order) {
    for (size_t i = 0; i < order.size(); ++i) {
      Status s = tree_->Delete(K(order[i] * 10, order[i] % 3));
      ASSERT_TRUE(s.ok()) << s.ToString();
      if (i % 97 == 0) Validate();
      if (i % 500 == 499) Commit();
    }
  }
  void ExpectAll(uint64_t n) {
    for (uint64_t i = 0; i < n; ++i) ASSERT_EQ(Lookup(K(i * 10, i % 3)), int64_t(1 + i));
    EXPECT_EQ(Validate().records, n);
  }
};

std::vector<uint64_t> Ascending(uint64_t n) {
  std::vector<uint64_t> v(n);
  std::iota(v.begin(), v.end(), 0);
  return v;
}
std::vector<uint64_t> Descending(uint64_t n) {
  std::vector<uint64_t> v = Ascending(n);
  std::reverse(v.begin(), v.end());
  return v;
}
std::vector<uint64_t> Shuffled(uint64_t n, uint64_t seed) {
  std::vector<uint64_t> v = Ascending(n);
  base::Random rnd(seed);
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rnd.Uniform(i)]);
  return v;
}

TEST_P(BTreeSizeTest, InsertAndDeleteAtSeveralSizes) {
  const uint64_t leaf = tree_->layout().leaf_capacity;
  const uint64_t internal = tree_->layout().internal_capacity;
  for (uint64_t n : {uint64_t{1}, leaf, leaf + 1, 3 * leaf, leaf * internal / 2 + 7}) {
    for (int order = 0; order < 3; ++order) {
      SCOPED_TRACE(::testing::Message() << "n=" << n << " order=" << order);
      std::vector<uint64_t> in = order == 0   ? Ascending(n)
                                 : order == 1 ? Descending(n)
                                              : Shuffled(n, n);
      ASSERT_NO_FATAL_FAILURE(InsertAll(in));
      ExpectAll(n);
      EXPECT_EQ(ScanForward().size(), n);
      Commit();
      std::vector<uint64_t> out = order == 0   ? Shuffled(n, n + 1)
                                  : order == 1 ? Ascending(n)
                                               : Descending(n);
      ASSERT_NO_FATAL_FAILURE(DeleteAll(out));
      EXPECT_EQ(tree_->root(), 0u);
      Commit();
      EXPECT_EQ(store_.committed_count(), 0u);
    }
  }
}

TEST_P(BTreeSizeTest, HeightGrowsAsExpected) {
  const uint64_t leaf = tree_->layout().leaf_capacity;
  ASSERT_NO_FATAL_FAILURE(InsertAll(Ascending(leaf)));
  EXPECT_EQ(Validate().height, 1u);
  ASSERT_NO_FATAL_FAILURE(Insert(K(leaf * 10, leaf % 3), 1 + leaf));
  TreeStats stats = Validate();
  EXPECT_EQ(stats.height, 2u);
  EXPECT_EQ(stats.leaves, 2u);
  EXPECT_EQ(stats.nodes, 3u);
}

INSTANTIATE_TEST_SUITE_P(Sizes, BTreeSizeTest,
                         ::testing::Values(SizeCase{2, 8, false}, SizeCase{1, 200, false},
                                           SizeCase{4, 1024, false}, SizeCase{2, 24, true},
                                           SizeCase{4, 1024, true}));

TEST_F(BTreeTest, ThreeLevelsSplitAndMergeInternalNodes) {
  Open(Spec(4, 1024));  // 3 records per leaf, 101 entries per internal node
  const uint64_t n = 3 * 101 * 3;
  std::vector<uint64_t> order = Shuffled(n, 7);
  for (uint64_t i : order) Insert(K(i), i);
  TreeStats stats = Validate();
  EXPECT_EQ(stats.height, 3u);
  Commit();
  for (size_t i = 0; i < order.size(); ++i) {
    ASSERT_TRUE(tree_->Delete(K(order[i])).ok());
    if (i % 50 == 0) Validate();
    if (i % 200 == 0) Commit();
  }
  EXPECT_EQ(tree_->root(), 0u);
}

TEST_F(BTreeTest, NodesKeepTheMinimumFill) {
  Open(Spec(1, 200));  // 19 records per leaf: minimum 6
  EXPECT_EQ(tree_->layout().leaf_capacity, 19u);
  EXPECT_EQ(tree_->MinFill(0), 6);
  EXPECT_EQ(tree_->MinFill(1), int(tree_->layout().internal_capacity / 3));
  for (uint64_t i = 0; i < 1000; ++i) Insert(K(i), i);
  base::Random rnd(3);
  for (int round = 0; round < 900; ++round) {
    Status s = tree_->Delete(K(rnd.Uniform(1000)));
    ASSERT_TRUE(s.ok() || s.code() == ENOENT);
    ASSERT_TRUE(tree_->Validate().ok()) << tree_->Validate().ToString();  // rule 3 included
  }
}

TEST_F(BTreeTest, SequentialInsertsFillLeavesToTwoThirds) {
  Open(Spec(2, 24));
  const uint64_t n = 20000;
  for (uint64_t i = 0; i < n; ++i) Insert(K(i, 0), i);
  TreeStats stats = Validate();
  // An even split would leave 50.5 records per leaf (396 leaves).
  double per_leaf = double(n) / stats.leaves;
  EXPECT_GT(per_leaf, 0.6 * tree_->layout().leaf_capacity);
}

// ---------------------------------------------------------------------------------------------
// Cursors.

class BTreeCursorTest : public BTreeTest {
 protected:
  void SetUp() override {
    Open(Spec(1, 200));  // 19 records per leaf: many leaf boundaries
    for (uint64_t i = 1; i <= 1000; ++i) Insert(K(i * 10), i);
    Commit();
  }
};

TEST_F(BTreeCursorTest, ForwardAndBackwardOverEveryLeafBoundary) {
  std::vector<uint64_t> expected;
  for (uint64_t i = 1; i <= 1000; ++i) expected.push_back(i * 10);
  EXPECT_EQ(ScanForward(), expected);
  std::reverse(expected.begin(), expected.end());
  EXPECT_EQ(ScanBackward(), expected);
  EXPECT_GT(Validate().leaves, 50u);
}

TEST_F(BTreeCursorTest, ValuesFollowTheCursor) {
  Cursor c(tree_.get());
  ASSERT_TRUE(c.SeekGE(K(5000)).ok());
  for (uint64_t i = 500; i <= 1000; ++i) {
    ASSERT_TRUE(c.Valid());
    ASSERT_EQ(c.value().size(), 200u);
    EXPECT_EQ(base::DecodeU64(c.value().data()), i);
    ASSERT_TRUE(c.Next().ok());
  }
  EXPECT_FALSE(c.Valid());
  EXPECT_EQ(c.Next().code(), EINVAL);
}

TEST_F(BTreeCursorTest, ChangeOfDirection) {
  Cursor c(tree_.get());
  ASSERT_TRUE(c.SeekGE(K(190)).ok());  // the last record of the first leaf or near it
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(c.Next().ok());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(c.Prev().ok());
  EXPECT_EQ(c.key().w[0], 190u);
  ASSERT_TRUE(c.SeekFirst().ok());
  ASSERT_TRUE(c.Prev().ok());
  EXPECT_FALSE(c.Valid());
  ASSERT_TRUE(c.SeekLast().ok());
  EXPECT_EQ(c.key().w[0], 10000u);
  ASSERT_TRUE(c.Next().ok());
  EXPECT_FALSE(c.Valid());
}

TEST_F(BTreeCursorTest, SeekGEEdges) {
  Cursor c(tree_.get());
  struct {
    uint64_t key;
    int64_t expected;  // -1: invalid
  } cases[] = {{0, 10},       {10, 10},       {11, 20},    {19, 20},
               {9999, 10000}, {10000, 10000}, {10001, -1}, {~0ull, -1}};
  for (auto [key, expected] : cases) {
    ASSERT_TRUE(c.SeekGE(K(key)).ok());
    if (expected < 0) {
      EXPECT_FALSE(c.Valid()) << key;
    } else {
      ASSERT_TRUE(c.Valid()) << key;
      EXPECT_EQ(c.key().w[0], uint64_t(expected)) << key;
    }
  }
}

TEST_F(BTreeCursorTest, SeekLEEdges) {
  Cursor c(tree_.get());
  struct {
    uint64_t key;
    int64_t expected;
  } cases[] = {{0, -1},  {9, -1},        {10, 10},       {11, 10},      {19, 10},
               {20, 20}, {10000, 10000}, {10001, 10000}, {~0ull, 10000}};
  for (auto [key, expected] : cases) {
    ASSERT_TRUE(c.SeekLE(K(key)).ok());
    if (expected < 0) {
      EXPECT_FALSE(c.Valid()) << key;
    } else {
      ASSERT_TRUE(c.Valid()) << key;
      EXPECT_EQ(c.key().w[0], uint64_t(expected)) << key;
    }
  }
}

// Keys falling between the last key of one leaf and the first of the next, for every leaf.
TEST_F(BTreeCursorTest, SeeksBetweenLeaves) {
  std::vector<uint64_t> firsts;
  for (auto [b, level] : Nodes()) {
    if (level != 0) continue;
    Result<const uint8_t*> node = store_.Read(b);
    ASSERT_TRUE(node.ok());
    firsts.push_back(tree_->layout().KeyWord(*node, 0, 0));
  }
  ASSERT_GT(firsts.size(), 10u);
  Cursor c(tree_.get());
  for (size_t i = 1; i < firsts.size(); ++i) {
    uint64_t gap = firsts[i] - 5;
    ASSERT_TRUE(c.SeekGE(K(gap)).ok());
    ASSERT_TRUE(c.Valid());
    EXPECT_EQ(c.key().w[0], firsts[i]);
    ASSERT_TRUE(c.Prev().ok());
    EXPECT_EQ(c.key().w[0], firsts[i] - 10);
    ASSERT_TRUE(c.SeekLE(K(gap)).ok());
    ASSERT_TRUE(c.Valid());
    EXPECT_EQ(c.key().w[0], firsts[i] - 10);
    ASSERT_TRUE(c.Next().ok());
    EXPECT_EQ(c.key().w[0], firsts[i]);
  }
}

// ---------------------------------------------------------------------------------------------
// Overlap queries.

class BTreeOverlapTest : public BTreeTest {
 protected:
  void SetUp() override { Open(Spec(1, 8, /*interval=*/true)); }
  void Add(uint64_t start, uint64_t length) {
    ASSERT_TRUE(tree_->Insert(K(start), V(length, 8)).ok());
  }
};

TEST_F(BTreeOverlapTest, SmallCases) {
  Add(5, 95);   // [5, 100)
  Add(10, 10);  // [10, 20)
  Add(15, 1);   // [15, 16)
  Add(30, 10);  // [30, 40)
  EXPECT_EQ(Overlapping(12, 13), (std::vector<uint64_t>{5, 10}));
  // [10, 20) starts before the query and ends inside it; [15, 16) ends exactly at its start.
  EXPECT_EQ(Overlapping(16, 30), (std::vector<uint64_t>{5, 10}));
  EXPECT_EQ(Overlapping(15, 16), (std::vector<uint64_t>{5, 10, 15}));
  EXPECT_EQ(Overlapping(0, 5), (std::vector<uint64_t>{}));
  EXPECT_EQ(Overlapping(0, 6), (std::vector<uint64_t>{5}));
  EXPECT_EQ(Overlapping(39, 41), (std::vector<uint64_t>{5, 30}));
  EXPECT_EQ(Overlapping(40, 41), (std::vector<uint64_t>{5}));
  EXPECT_EQ(Overlapping(99, 1000), (std::vector<uint64_t>{5}));
  EXPECT_EQ(Overlapping(100, 1000), (std::vector<uint64_t>{}));
  EXPECT_EQ(Overlapping(0, ~0ull), (std::vector<uint64_t>{5, 10, 15, 30}));
  EXPECT_EQ(Overlapping(0, ~0ull, 2), (std::vector<uint64_t>{5, 10}));  // fn stops the walk
}

TEST_F(BTreeOverlapTest, BadQueries) {
  auto all = [](const Key&, std::span<const uint8_t>) { return true; };
  EXPECT_EQ(tree_->Overlaps(5, 5, all).code(), EINVAL);
  EXPECT_EQ(tree_->Overlaps(6, 5, all).code(), EINVAL);
  Open(Spec(1, 8));
  EXPECT_EQ(tree_->Overlaps(0, 10, all).code(), EINVAL);
}

TEST_F(BTreeOverlapTest, EmptyTree) { EXPECT_TRUE(Overlapping(0, 100).empty()); }

// Many levels, long records far to the left, updates and deletes that move max_end.
TEST_F(BTreeOverlapTest, AgainstBruteForce) {
  Open(Spec(4, 200, /*interval=*/true));  // 17 records per leaf, 84 per internal node
  std::map<uint64_t, uint64_t> records;   // start -> length
  base::Random rnd(base::SeedFromEnv(11));
  for (int i = 0; i < 5000; ++i) {
    uint64_t start = rnd.Uniform(1000000);
    uint64_t length = rnd.OneIn(100) ? 1 + rnd.Uniform(200000) : 1 + rnd.Uniform(300);
    if (records.emplace(start, length).second) {
      ASSERT_TRUE(tree_->Insert(K(start), V(length, 200)).ok());
    }
  }
  auto check = [&] {
    for (int q = 0; q < 200; ++q) {
      uint64_t start = rnd.Uniform(1100000);
      uint64_t end = start + 1 + rnd.Uniform(q % 10 ? 1000 : 100000);
      std::vector<uint64_t> expected;
      for (auto [s, len] : records) {
        if (s < end && s + len > start) expected.push_back(s);
      }
      ASSERT_EQ(Overlapping(start, end), expected) << start << " " << end;
    }
  };
  ASSERT_GE(Validate().height, 3u);
  check();
  // Shrink every long record: max_end must come down through every level.
  for (auto& [start, length] : records) {
    if (length <= 300) continue;
    length = 1;
    ASSERT_TRUE(tree_->Update(K(start), V(1, 200)).ok());
  }
  Validate();
  check();
  Commit();
  int n = 0;
  for (auto it = records.begin(); it != records.end();) {
    if (n++ % 2) {
      ASSERT_TRUE(tree_->Delete(K(it->first)).ok());
      it = records.erase(it);
    } else {
      ++it;
    }
  }
  Validate();
  check();
}

// ---------------------------------------------------------------------------------------------
// Validate on corrupted trees.

class BTreeCorruptionTest : public BTreeTest {
 protected:
  void SetUp() override {
    Open(Spec(2, 24, /*interval=*/true));
    for (uint64_t i = 0; i < 1000; ++i) Insert(K(i * 10, 0), 5);
    Commit();
    ASSERT_EQ(Validate().height, 2u);
  }
  // Applies `corrupt` to committed node `b` and reseals it (a consistent checksum: only the
  // tree's own rules can catch it).
  template <typename F>
  void Corrupt(uint64_t b, F corrupt) {
    corrupt(store_.RawForTest(b));
    store_.ResealForTest(b);
  }
  void ExpectCorrupt(const std::string& what) {
    Status s = tree_->Validate();
    EXPECT_EQ(s.code(), EUCLEAN) << s.ToString();
    EXPECT_THAT(s.message(), HasSubstr(what)) << s.message();
  }
  std::string NodeName(uint64_t b) { return "node " + std::to_string(b); }
  const format::NodeLayout& L() { return tree_->layout(); }
};

TEST_F(BTreeCorruptionTest, SwappedKeysInALeaf) {
  uint64_t leaf = NthNodeAtLevel(0, 3);
  Corrupt(leaf, [&](uint8_t* p) {
    uint64_t a[2], b[2];
    L().ReadKey(p, 1, a);
    L().ReadKey(p, 2, b);
    L().WriteKey(p, 1, b);
    L().WriteKey(p, 2, a);
  });
  ExpectCorrupt(NodeName(leaf) + " (level 0): rule 4 (key order)");
}

TEST_F(BTreeCorruptionTest, FirstKeyOfALeafNoLongerMatchesItsParent) {
  uint64_t leaf = NthNodeAtLevel(0, 3);
  Corrupt(leaf, [&](uint8_t* p) {
    uint64_t a[2], b[2];
    L().ReadKey(p, 0, a);
    L().ReadKey(p, 1, b);
    L().WriteKey(p, 0, b);
    L().WriteKey(p, 1, a);
  });
  ExpectCorrupt(NodeName(tree_->root()) + " (level 1): rule 5 (separator keys)");
}

TEST_F(BTreeCorruptionTest, WrongMaxEnd) {
  Corrupt(tree_->root(), [&](uint8_t* p) { L().SetMaxEnd(p, 2, L().MaxEnd(p, 2) + 1); });
  ExpectCorrupt(NodeName(tree_->root()) + " (level 1): rule 6 (interval ends)");
}

TEST_F(BTreeCorruptionTest, RecordEndingAtItsStart) {
  uint64_t leaf = NthNodeAtLevel(0, 2);
  Corrupt(leaf, [&](uint8_t* p) { base::EncodeU64(L().value(p, 4), 0); });  // length 0
  ExpectCorrupt(NodeName(leaf) + " (level 0): rule 6 (interval ends)");
  ExpectCorrupt("not after its start");
}

TEST_F(BTreeCorruptionTest, UnderfullNode) {
  uint64_t leaf = NthNodeAtLevel(0, 2);
  Corrupt(leaf, [&](uint8_t* p) { format::SetBTreeNodeCount(p, 2); });
  ExpectCorrupt(NodeName(leaf) + " (level 0): rule 3 (fill)");
}

TEST_F(BTreeCorruptionTest, InternalRootWithOneChild) {
  Corrupt(tree_->root(), [&](uint8_t* p) { format::SetBTreeNodeCount(p, 1); });
  ExpectCorrupt("rule 3 (fill): internal root with 1 entry");
}

TEST_F(BTreeCorruptionTest, WrongLevel) {
  uint64_t leaf = NthNodeAtLevel(0, 1);
  Corrupt(leaf, [&](uint8_t* p) { base::EncodeU16(p + 34, 1); });
  ExpectCorrupt("node " + std::to_string(leaf) + ": level 1 where 0 was expected");
}

TEST_F(BTreeCorruptionTest, WrongTreeId) {
  uint64_t leaf = NthNodeAtLevel(0, 1);
  Corrupt(leaf, [&](uint8_t* p) { base::EncodeU16(p + 32, 3); });
  ExpectCorrupt("block " + std::to_string(leaf) + ": B+tree node: tree id 3");
}

TEST_F(BTreeCorruptionTest, BadChildPointers) {
  Corrupt(tree_->root(), [&](uint8_t* p) { L().SetChild(p, 1, 0); });
  ExpectCorrupt("entry 1: null child pointer");
  Corrupt(tree_->root(), [&](uint8_t* p) { L().SetChild(p, 1, 1u << 30); });
  ExpectCorrupt("entry 1: bad child pointer");
  Result<const uint8_t*> root = store_.Read(tree_->root());
  ASSERT_TRUE(root.ok());
  Status get = tree_->Get(K(L().KeyWord(*root, 1, 0), 0), nullptr).status();
  EXPECT_EQ(get.code(), EUCLEAN);
  EXPECT_THAT(get.message(), HasSubstr("bad child pointer"));
}

// Two entries pointing at the same child: the keys repeat, which rule 4 catches.
TEST_F(BTreeCorruptionTest, SharedChild) {
  Corrupt(tree_->root(), [&](uint8_t* p) {
    L().SetChild(p, 2, L().Child(p, 1));
    uint64_t key[2];
    L().ReadKey(p, 1, key);
    L().WriteKey(p, 2, key);
    L().SetMaxEnd(p, 2, L().MaxEnd(p, 1));
  });
  ExpectCorrupt("rule 4 (key order)");
}

TEST_F(BTreeCorruptionTest, ChecksumMismatchIsFoundByEveryReader) {
  uint64_t leaf = NthNodeAtLevel(0, 4);
  Result<const uint8_t*> node = store_.Read(leaf);
  ASSERT_TRUE(node.ok());
  Key inside = K(L().KeyWord(*node, 3, 0), 0);
  store_.RawForTest(leaf)[3000] ^= 0x40;  // not resealed
  std::string name = "block " + std::to_string(leaf) + ": checksum mismatch";
  ExpectCorrupt(name);
  Status get = tree_->Get(inside, nullptr).status();
  EXPECT_EQ(get.code(), EUCLEAN);
  EXPECT_THAT(get.message(), HasSubstr(name));
  EXPECT_EQ(tree_->Insert(K(inside.w[0] + 1, 0), V(5, 24)).code(), EUCLEAN);
  EXPECT_EQ(tree_->Delete(inside).code(), EUCLEAN);
  EXPECT_EQ(tree_->VisitNodes([](uint64_t, int) { return Status::Ok(); }).code(), EUCLEAN);
  // A cursor walking forward reports it on reaching the leaf.
  Cursor c(tree_.get());
  Status walk = c.SeekFirst();
  while (walk.ok() && c.Valid()) walk = c.Next();
  EXPECT_EQ(walk.code(), EUCLEAN);
  EXPECT_THAT(walk.message(), HasSubstr(name));
  store_.RawForTest(leaf)[3000] ^= 0x40;
  EXPECT_TRUE(tree_->Validate().ok());
}

// A leaf that falls below the minimum next to a full sibling borrows from it; all three nodes
// are committed, so the delete needs three new nodes, and fails cleanly with fewer.
TEST_F(BTreeTest, DeleteBorrowsFromAFullSibling) {
  Open(Spec(1, 200));                                       // 19 records per leaf, at least 6
  for (uint64_t i = 0; i <= 19; ++i) Insert(K(i * 10), i);  // splits 14 + 6 (append at the end)
  for (uint64_t i = 1; i <= 5; ++i) Insert(K(i), i);        // the left leaf is full again
  Commit();
  auto leaf_counts = [&] {
    std::vector<int> counts;
    for (auto [b, level] : Nodes()) {
      if (level == 0) counts.push_back(format::BTreeNodeCount(*store_.Read(b)));
    }
    return counts;
  };
  ASSERT_EQ(leaf_counts(), (std::vector<int>{19, 6}));
  for (int64_t allow = 0; allow < 3; ++allow) {
    store_.FailAllocationsAfter(allow);
    EXPECT_EQ(tree_->Delete(K(190)).code(), ENOSPC);
    store_.FailAllocationsAfter(-1);
    EXPECT_EQ(store_.fresh_count(), 0u);
    EXPECT_EQ(leaf_counts(), (std::vector<int>{19, 6}));
  }
  ASSERT_TRUE(tree_->Delete(K(190)).ok());
  EXPECT_EQ(store_.fresh_count(), 3u);
  EXPECT_EQ(leaf_counts(), (std::vector<int>{12, 12}));
  Validate();
  Commit();
}

// A plain tree: the last key of a leaf moved past the first key of the next leaf.
TEST_F(BTreeTest, KeyOutOfOrderAcrossLeaves) {
  for (uint64_t i = 0; i < 1000; ++i) Insert(K(i * 10), i);
  Commit();
  uint64_t leaf = NthNodeAtLevel(0, 3);
  uint8_t* p = store_.RawForTest(leaf);
  uint64_t big[2] = {1ull << 40, 0};
  tree_->layout().WriteKey(p, format::BTreeNodeCount(p) - 1, big);
  store_.ResealForTest(leaf);
  Status s = tree_->Validate();
  EXPECT_EQ(s.code(), EUCLEAN);
  EXPECT_THAT(s.message(), HasSubstr("node " + std::to_string(NthNodeAtLevel(0, 4)) +
                                     " (level 0): rule 4 (key order)"));
}

// ---------------------------------------------------------------------------------------------
// Copy-on-write.

TEST_F(BTreeTest, CommittedNodesNeverChange) {
  Open(Spec(1, 200, false));
  base::Random rnd(5);
  for (int txn = 0; txn < 20; ++txn) {
    for (int i = 0; i < 60; ++i) {
      Key k = K(rnd.Uniform(3000));
      switch (rnd.Uniform(3)) {
        case 0:
          (void)tree_->Put(k, Val(i));
          break;
        case 1:
          (void)tree_->Delete(k).code();
          break;
        default:
          (void)tree_->Update(k, Val(i)).code();
      }
      Status s = store_.CheckCommittedUnchanged();
      ASSERT_TRUE(s.ok()) << s.ToString();
      ASSERT_TRUE(store_.misuse().empty()) << store_.misuse();
    }
    Commit();
  }
}

TEST_F(BTreeTest, OldRootStillReadsTheCommittedTree) {
  for (uint64_t i = 0; i < 2000; ++i) Insert(K(i), i);
  Commit();
  const uint64_t old_root = tree_->root();
  for (uint64_t i = 0; i < 2000; i += 2) ASSERT_TRUE(tree_->Delete(K(i)).ok());
  for (uint64_t i = 1; i < 2000; i += 2) ASSERT_TRUE(tree_->Update(K(i), Val(i + 7)).ok());
  for (uint64_t i = 5000; i < 6000; ++i) Insert(K(i), i);
  EXPECT_NE(tree_->root(), old_root);
  Validate();

  BTree old(spec_, &store_, old_root);
  EXPECT_TRUE(old.Validate().ok());
  std::vector<uint8_t> v(8);
  for (uint64_t i = 0; i < 2000; ++i) {
    ASSERT_TRUE(*old.Get(K(i), v.data()));
    ASSERT_EQ(base::DecodeU64(v.data()), i);
  }
  EXPECT_FALSE(*old.Get(K(5000), nullptr));

  // Abort: back to the committed tree, nothing leaked.
  store_.Abort();
  Open(spec_, old_root);
  EXPECT_EQ(Validate().records, 2000u);
  EXPECT_EQ(Reachable(), store_.CommittedNodes());
}

TEST_F(BTreeTest, FreshNodesChangeInPlace) {
  for (uint64_t i = 0; i < 1000; ++i) Insert(K(i * 2), i);
  Commit();
  Insert(K(501), 1);  // copies the path: root and one leaf
  EXPECT_EQ(store_.fresh_count(), 2u);
  EXPECT_EQ(store_.released_count(), 2u);
  size_t total = store_.total_count();
  Insert(K(503), 1);  // same leaf, now fresh: no new node
  ASSERT_TRUE(tree_->Update(K(502), Val(9)).ok());
  ASSERT_TRUE(tree_->Delete(K(504)).ok());
  EXPECT_EQ(store_.fresh_count(), 2u);
  EXPECT_EQ(store_.total_count(), total);
  Commit();
  EXPECT_EQ(store_.released_count(), 0u);
}

TEST_F(BTreeTest, GenerationIsStampedIntoNewNodes) {
  for (uint64_t i = 0; i < 500; ++i) Insert(K(i), i);
  Commit();
  Insert(K(1000), 1);
  for (auto [b, level] : Nodes()) {
    Result<const uint8_t*> node = store_.Read(b);
    ASSERT_TRUE(node.ok());
    format::NodeHeader h = format::DecodeNodeHeader(*node);
    EXPECT_EQ(h.blockno, b);
    EXPECT_EQ(h.type, format::BlockType::kBTreeNode);
    EXPECT_EQ(h.generation, store_.IsFresh(b) ? store_.generation() : store_.generation() - 1);
  }
}

// ENOSPC at each allocation of changes that copy paths, split several levels, grow a new root,
// merge and collapse it: the change fails and the tree and the store are as before.
class BTreeNoSpaceTest : public BTreeTest, public ::testing::WithParamInterface<SizeCase> {};

TEST_P(BTreeNoSpaceTest, NoSpaceChangesNothing) {
  // 3 records per leaf (merges only) or 19 (merges and borrowing).
  Open(Spec(GetParam().key_words, GetParam().value_size));
  const bool tiny_leaves = tree_->layout().leaf_capacity == 3;
  std::vector<uint64_t> keys = Shuffled(1500, 17);
  int most_allocations = 0;
  auto attempt = [&](auto change, const Key& key, int64_t value_before) {
    uint64_t root = tree_->root();
    size_t fresh = store_.fresh_count();
    for (int64_t allow = 0;; ++allow) {
      store_.FailAllocationsAfter(allow);
      Status s = change();
      store_.FailAllocationsAfter(-1);
      if (s.ok()) {
        most_allocations = std::max<int>(most_allocations, allow);
        return;
      }
      ASSERT_EQ(s.code(), ENOSPC) << s.ToString();
      ASSERT_EQ(tree_->root(), root);
      ASSERT_EQ(store_.fresh_count(), fresh) << "a failed change kept nodes";
      ASSERT_EQ(Lookup(key), value_before);
    }
  };
  for (size_t i = 0; i < keys.size(); ++i) {
    Key k = K(keys[i]);
    ASSERT_NO_FATAL_FAILURE(attempt([&] { return tree_->Insert(k, Val(keys[i])); }, k, -1));
    if (i % 25 == 0) Commit();
    if (i % 100 == 0) Validate();
  }
  EXPECT_EQ(Validate().height, tiny_leaves ? 3u : 2u);
  EXPECT_GE(most_allocations, tiny_leaves ? 5 : 3);  // a copied path plus splits
  Commit();
  most_allocations = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    Key k = K(keys[(i * 7) % keys.size()]);
    ASSERT_NO_FATAL_FAILURE(attempt([&] { return tree_->Delete(k); }, k, k.w[0]));
    if (i % 25 == 0) Commit();
    if (i % 100 == 0) Validate();
  }
  EXPECT_GE(most_allocations, tiny_leaves ? 3 : 2);  // a copied path
  EXPECT_EQ(tree_->root(), 0u);
  Commit();
}

INSTANTIATE_TEST_SUITE_P(Sizes, BTreeNoSpaceTest,
                         ::testing::Values(SizeCase{4, 1024, false}, SizeCase{1, 200, false}));

TEST_F(BTreeTest, VisitNodesIsPreOrderWithLevels) {
  Open(Spec(1, 200));
  for (uint64_t i = 0; i < 3000; ++i) Insert(K(i), i);
  TreeStats stats = Validate();
  auto nodes = Nodes();
  ASSERT_EQ(nodes.size(), stats.nodes);
  EXPECT_EQ(nodes[0].first, tree_->root());
  EXPECT_EQ(nodes[0].second, int(stats.height) - 1);
  for (size_t i = 0; i + 1 < nodes.size(); ++i) {
    if (i > 0) {
      EXPECT_LT(nodes[i].second, nodes[0].second);
    }
    if (nodes[i].second > 0) {
      EXPECT_EQ(nodes[i + 1].second, nodes[i].second - 1);  // its first child follows
    }
  }
  EXPECT_EQ(std::count_if(nodes.begin(), nodes.end(), [](auto& p) { return p.second == 0; }),
            int64_t(stats.leaves));
  // A visitor error stops the walk and is returned.
  int calls = 0;
  Status s = tree_->VisitNodes(
      [&](uint64_t, int) { return ++calls == 3 ? Status::IoError("stop") : Status::Ok(); });
  EXPECT_EQ(s.code(), EIO);
  EXPECT_EQ(calls, 3);
}

// ---------------------------------------------------------------------------------------------
// Relocate: moving one node (and copying its path) without changing the tree's contents.

class BTreeRelocateTest : public BTreeTest {
 protected:
  Key FirstKey(uint64_t blockno) {
    Result<const uint8_t*> node = store_.Read(blockno);
    EXPECT_TRUE(node.ok()) << node.status().ToString();
    Key k;
    if (node.ok()) tree_->layout().ReadKey(*node, 0, k.w);
    return k;
  }
  std::vector<std::pair<uint64_t, uint64_t>> Records() {
    std::vector<std::pair<uint64_t, uint64_t>> out;
    Cursor c(tree_.get());
    EXPECT_TRUE(c.SeekFirst().ok());
    while (c.Valid()) {
      out.emplace_back(c.key().w[0], base::DecodeU64(c.value().data()));
      EXPECT_TRUE(c.Next().ok());
    }
    return out;
  }
};

TEST_F(BTreeRelocateTest, EveryNodeOfEveryLevelMovesAndTheTreeStaysTheSame) {
  Open(Spec(4, 1024));  // 3 records per leaf: three levels from 600 records
  for (uint64_t i = 0; i < 600; ++i) Insert(K(i * 3, i), i);
  Commit();
  TreeStats before = Validate();
  ASSERT_EQ(before.height, 3u);
  auto records = Records();
  for (auto [b, level] : Nodes()) {
    SCOPED_TRACE(fmt::format("node {} at level {}", b, level));
    Key first = FirstKey(b);
    uint64_t old_root = tree_->root();
    int64_t delta = tree_->count_delta();
    Result<uint64_t> moved = tree_->Relocate(b, level, first);
    ASSERT_TRUE(moved.ok()) << moved.status().ToString();
    ASSERT_NE(*moved, 0u);
    EXPECT_NE(*moved, b);
    EXPECT_TRUE(store_.IsFresh(*moved));
    EXPECT_NE(tree_->root(), old_root);  // the path up to the root was copied
    EXPECT_EQ(tree_->count_delta(), delta);
    std::vector<uint64_t> reachable = Reachable();
    EXPECT_FALSE(std::binary_search(reachable.begin(), reachable.end(), b));
    EXPECT_TRUE(std::binary_search(reachable.begin(), reachable.end(), *moved));
    // Nothing to do the second time: the node is not there any more.
    Result<uint64_t> again = tree_->Relocate(b, level, first);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*again, 0u);
    Commit();
    TreeStats after = Validate();
    EXPECT_EQ(after.records, before.records);
    EXPECT_EQ(after.nodes, before.nodes);
    EXPECT_EQ(after.height, before.height);
    ASSERT_EQ(Records(), records);
  }
}

TEST_F(BTreeRelocateTest, IntervalTreeKeepsItsEnds) {
  Open(Spec(2, 16, true));
  base::Random rnd(7);
  for (uint64_t i = 0; i < 4000; ++i) {
    std::vector<uint8_t> v(16);
    base::EncodeU64(v.data(), 1 + rnd.Uniform(500));
    ASSERT_TRUE(tree_->Insert(K(rnd.Uniform(1 << 20), i), v).ok());
  }
  Commit();
  auto expect = Overlapping(1000, 300000);
  int moved = 0;
  for (auto [b, level] : Nodes()) {
    if (moved % 7 == 0) {
      Result<uint64_t> to = tree_->Relocate(b, level, FirstKey(b));
      ASSERT_TRUE(to.ok());
      EXPECT_NE(*to, 0u);
    }
    ++moved;
  }
  Validate();  // rule 6: every max_end still exact
  Commit();
  EXPECT_EQ(Overlapping(1000, 300000), expect);
}

TEST_F(BTreeRelocateTest, AskingForTheWrongNodeChangesNothing) {
  Open(Spec(1, 200));
  for (uint64_t i = 0; i < 3000; ++i) Insert(K(i), i);
  Commit();
  uint64_t leaf = NthNodeAtLevel(0, 5);
  uint64_t other = NthNodeAtLevel(0, 6);
  Key first = FirstKey(leaf);
  uint64_t root = tree_->root();
  auto zero = [&](uint64_t b, int level, const Key& k) {
    Result<uint64_t> r = tree_->Relocate(b, level, k);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(*r, 0u);
  };
  zero(other, 0, first);             // the node on that key's path is another block
  zero(leaf, 1, first);              // wrong level
  zero(leaf, 7, first);              // above the root
  zero(leaf, 0, K(first.w[0] + 1));  // not its first key
  zero(leaf, -1, first);
  EXPECT_EQ(tree_->root(), root);
  EXPECT_EQ(store_.fresh_count(), 0u);
  EXPECT_EQ(store_.released_count(), 0u);
  BTree empty(Spec(1, 200), &store_, 0);
  Result<uint64_t> r = empty.Relocate(leaf, 0, first);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 0u);
}

TEST_F(BTreeRelocateTest, FreshNodesAreNotMovedAndSharedAncestorsAreCopiedOnce) {
  Open(Spec(1, 200));
  for (uint64_t i = 0; i < 3000; ++i) Insert(K(i), i);
  Commit();
  uint64_t a = NthNodeAtLevel(0, 1), b = NthNodeAtLevel(0, 2);
  Key ka = FirstKey(a), kb = FirstKey(b);
  Result<uint64_t> ma = tree_->Relocate(a, 0, ka);
  ASSERT_TRUE(ma.ok() && *ma != 0);
  size_t fresh = store_.fresh_count();
  Result<uint64_t> mb = tree_->Relocate(b, 0, kb);
  ASSERT_TRUE(mb.ok() && *mb != 0);
  EXPECT_EQ(store_.fresh_count(), fresh + 1);  // only the leaf: its ancestors are fresh already
  Result<uint64_t> again = tree_->Relocate(*ma, 0, ka);  // a fresh node stays where it is
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0u);
  Commit();
  Validate();
}

TEST_F(BTreeRelocateTest, NoSpaceChangesNothing) {
  Open(Spec(1, 200));
  for (uint64_t i = 0; i < 3000; ++i) Insert(K(i), i);
  Commit();
  uint64_t leaf = NthNodeAtLevel(0, 9);
  Key first = FirstKey(leaf);
  uint64_t root = tree_->root();
  const int64_t path = Validate().height;  // a leaf's path: one copy per level
  ASSERT_GE(path, 2);
  for (int64_t n = 0; n < path; ++n) {
    store_.FailAllocationsAfter(n);
    Result<uint64_t> r = tree_->Relocate(leaf, 0, first);
    EXPECT_EQ(r.status().code(), ENOSPC);
    EXPECT_EQ(tree_->root(), root);
    EXPECT_EQ(store_.fresh_count(), 0u);
    EXPECT_EQ(store_.released_count(), 0u);
  }
  store_.FailAllocationsAfter(-1);
  Result<uint64_t> r = tree_->Relocate(leaf, 0, first);
  ASSERT_TRUE(r.ok());
  EXPECT_NE(*r, 0u);
  Commit();
}

TEST_F(BTreeRelocateTest, CorruptNodeOnThePathIsReported) {
  Open(Spec(1, 200));
  for (uint64_t i = 0; i < 3000; ++i) Insert(K(i), i);
  Commit();
  uint64_t leaf = NthNodeAtLevel(0, 4);
  Key first = FirstKey(leaf);
  uint64_t parent = NthNodeAtLevel(1, 0);
  store_.RawForTest(parent)[300] ^= 1;
  Result<uint64_t> r = tree_->Relocate(leaf, 0, first);
  EXPECT_EQ(r.status().code(), EUCLEAN);
  EXPECT_THAT(r.status().message(), HasSubstr(fmt::format("block {}", parent)));
  EXPECT_EQ(store_.fresh_count(), 0u);
}

}  // namespace
}  // namespace daxfs::btree
