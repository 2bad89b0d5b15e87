#include "space/node_allocator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

namespace daxfs::space {
namespace {

constexpr uint64_t kChunkBlocks = 64;

TEST(NodeAllocatorTest, AllocatesOnlyInMetadataChunks) {
  NodeAllocator a(kChunkBlocks * 4, kChunkBlocks);
  EXPECT_EQ(a.Allocate().status().code(), ENOSPC);
  ASSERT_TRUE(a.AddChunk(2).ok());
  std::set<uint64_t> got;
  for (uint64_t i = 0; i < kChunkBlocks; ++i) {
    Result<uint64_t> b = a.Allocate();
    ASSERT_TRUE(b.ok());
    EXPECT_GE(*b, 2 * kChunkBlocks);
    EXPECT_LT(*b, 3 * kChunkBlocks);
    EXPECT_TRUE(got.insert(*b).second) << "block handed out twice";
  }
  EXPECT_EQ(a.Allocate().status().code(), ENOSPC);
  EXPECT_EQ(a.Counts().fresh, kChunkBlocks);
}

TEST(NodeAllocatorTest, ReservedPrefixIsNeverHandedOut) {
  NodeAllocator a(kChunkBlocks * 2, kChunkBlocks);
  ASSERT_TRUE(a.AddChunk(0, 2).ok());
  EXPECT_EQ(a.Counts().total, kChunkBlocks - 2);
  while (true) {
    Result<uint64_t> b = a.Allocate();
    if (!b.ok()) break;
    EXPECT_GE(*b, 2u);
  }
  EXPECT_EQ(a.State(0), NodeState::kNotMetadata);
}

TEST(NodeAllocatorTest, LifecycleFreshUsedDeferredFree) {
  NodeAllocator a(kChunkBlocks * 2, kChunkBlocks);
  ASSERT_TRUE(a.AddChunk(1).ok());
  uint64_t b = *a.Allocate();
  EXPECT_TRUE(a.IsFresh(b));
  a.CommitFresh({b});
  EXPECT_EQ(a.State(b), NodeState::kUsed);
  a.Defer(b, 7);
  EXPECT_EQ(a.State(b), NodeState::kDeferred);
  a.ReleaseDeferred(6);
  EXPECT_EQ(a.State(b), NodeState::kDeferred) << "released before its generation was safe";
  a.ReleaseDeferred(7);
  EXPECT_EQ(a.State(b), NodeState::kFree);
  NodeCounts c = a.Counts();
  EXPECT_EQ(c.free, c.total);
}

TEST(NodeAllocatorTest, UndoDeferRestoresUsed) {
  NodeAllocator a(kChunkBlocks * 2, kChunkBlocks);
  ASSERT_TRUE(a.AddChunk(1).ok());
  uint64_t b = *a.Allocate();
  a.CommitFresh({b});
  a.Defer(b, 3);
  a.UndoDefer({b});
  EXPECT_EQ(a.State(b), NodeState::kUsed);
  a.ReleaseDeferred(100);
  EXPECT_EQ(a.State(b), NodeState::kUsed);
}

TEST(NodeAllocatorTest, MarkUsedDetectsDoubleOwnership) {
  NodeAllocator a(kChunkBlocks * 2, kChunkBlocks);
  ASSERT_TRUE(a.AddChunk(0, 2).ok());
  EXPECT_TRUE(a.MarkUsed(10).ok());
  EXPECT_EQ(a.MarkUsed(10).code(), EUCLEAN);
  EXPECT_EQ(a.MarkUsed(1).code(), EUCLEAN);                  // a superblock slot
  EXPECT_EQ(a.MarkUsed(kChunkBlocks + 3).code(), EUCLEAN);   // not a metadata chunk
}

TEST(NodeAllocatorTest, MarksClearOnReallocation) {
  NodeAllocator a(kChunkBlocks, kChunkBlocks);
  ASSERT_TRUE(a.AddChunk(0).ok());
  uint64_t b = *a.Allocate();
  a.SetMark(b);
  EXPECT_TRUE(a.TestMark(b));
  a.FreeFresh(b);
  for (uint64_t i = 0; i < kChunkBlocks; ++i) {
    Result<uint64_t> again = a.Allocate();
    ASSERT_TRUE(again.ok());
    if (*again == b) {
      EXPECT_FALSE(a.TestMark(b));
      return;
    }
  }
  FAIL() << "freed block never reallocated";
}

TEST(NodeAllocatorTest, RemoveChunkOnlyWhenAllFree) {
  NodeAllocator a(kChunkBlocks * 3, kChunkBlocks);
  ASSERT_TRUE(a.AddChunk(1).ok());
  uint64_t b = *a.Allocate();
  EXPECT_EQ(a.RemoveChunk(1).code(), EBUSY);
  a.FreeFresh(b);
  EXPECT_TRUE(a.RemoveChunk(1).ok());
  EXPECT_FALSE(a.IsMetadataChunk(1));
  EXPECT_EQ(a.Counts().total, 0u);
}

TEST(NodeAllocatorTest, RetiredSlotsAreNeverHandedOutAgain) {
  NodeAllocator a(kChunkBlocks, kChunkBlocks);
  ASSERT_TRUE(a.AddChunk(0).ok());
  // A free slot retires at once.
  ASSERT_TRUE(a.Retire(5).ok());
  EXPECT_EQ(a.State(5), NodeState::kRetired);
  EXPECT_TRUE(a.Retire(5).ok());  // twice is harmless
  // A used slot retires when it is released and would become free.
  uint64_t used = *a.Allocate();
  a.CommitFresh({used});
  ASSERT_TRUE(a.Retire(used).ok());
  EXPECT_EQ(a.State(used), NodeState::kUsed);
  a.Defer(used, 3);
  a.ReleaseDeferred(3);
  EXPECT_EQ(a.State(used), NodeState::kRetired);
  // A fresh slot retires when it is freed.
  uint64_t fresh = *a.Allocate();
  ASSERT_TRUE(a.Retire(fresh).ok());
  a.FreeFresh(fresh);
  EXPECT_EQ(a.State(fresh), NodeState::kRetired);
  EXPECT_EQ(a.Counts().retired, 3u);
  std::vector<uint64_t> expect = {5, used, fresh};
  std::sort(expect.begin(), expect.end());
  EXPECT_EQ(a.RetiredBlocks(), expect);
  // Every other slot can be allocated; the retired ones never.
  uint64_t got = 0;
  for (Result<uint64_t> b = a.Allocate(); b.ok(); b = a.Allocate()) {
    EXPECT_NE(*b, 5u);
    EXPECT_NE(*b, used);
    EXPECT_NE(*b, fresh);
    ++got;
  }
  EXPECT_EQ(got, kChunkBlocks - 3);
  EXPECT_EQ(a.Counts().free, 0u);
  EXPECT_EQ(a.Retire(kChunkBlocks + 1).code(), EINVAL);
}

TEST(NodeAllocatorTest, ChunkWithRetiredSlotsCanBeRemoved) {
  NodeAllocator a(kChunkBlocks * 2, kChunkBlocks);
  ASSERT_TRUE(a.AddChunk(1).ok());
  ASSERT_TRUE(a.Retire(kChunkBlocks + 2).ok());
  ASSERT_TRUE(a.RemoveChunk(1).ok());
  EXPECT_EQ(a.Counts().total, 0u);
  EXPECT_EQ(a.Counts().retired, 0u);
}

TEST(NodeAllocatorTest, ShortLastChunk) {
  NodeAllocator a(kChunkBlocks + 5, kChunkBlocks);
  ASSERT_TRUE(a.AddChunk(1).ok());
  EXPECT_EQ(a.Counts().total, 5u);
  // Blocks past the device's end, inside the last chunk's span, are not node slots.
  EXPECT_EQ(a.State(kChunkBlocks + 4), NodeState::kFree);
  EXPECT_EQ(a.State(kChunkBlocks + 5), NodeState::kNotMetadata);
  EXPECT_EQ(a.Retire(kChunkBlocks + 9).code(), EINVAL);
}

}  // namespace
}  // namespace daxfs::space
