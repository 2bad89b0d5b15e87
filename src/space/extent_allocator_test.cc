// Tests of the data-block allocator: preference order, fresh/deferred life cycle, abort, and a
// randomized comparison against a per-block model (seed printed; DAXFS_SEED replays).
#include "space/extent_allocator.h"

#include <gtest/gtest.h>

#include <optional>
#include <vector>

#include "base/random.h"

namespace daxfs::space {
namespace {

// (gtest's Test::Run hides space::Run inside test bodies.)
using BlockRun = space::Run;
using RunList = std::vector<BlockRun>;

RunList Runs(std::initializer_list<BlockRun> r) { return r; }

TEST(ExtentAllocatorTest, EmptyAllocatorHasNoSpace) {
  ExtentAllocator a;
  EXPECT_EQ(a.Allocate(1, 0).status().code(), ENOSPC);
  Result<RunList> none = a.Allocate(0, 0);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(ExtentAllocatorTest, AddFreeMergesAdjacentRuns) {
  ExtentAllocator a;
  a.AddFree(100, 10);
  a.AddFree(120, 5);
  a.AddFree(110, 10);
  EXPECT_EQ(a.FreeRuns(), Runs({{100, 25}}));
  EXPECT_EQ(a.free_blocks(), 25u);
  EXPECT_TRUE(a.IsFree(124));
  EXPECT_FALSE(a.IsFree(125));
  EXPECT_FALSE(a.IsFree(99));
}

TEST(ExtentAllocatorTest, PrefersTheGoal) {
  ExtentAllocator a;
  a.AddFree(100, 100);
  EXPECT_EQ(*a.Allocate(10, 150), Runs({{150, 10}}));
  EXPECT_EQ(a.FreeRuns(), Runs({{100, 50}, {160, 40}}));
}

TEST(ExtentAllocatorTest, ThenTheFirstRunAfterTheGoalThatFits) {
  ExtentAllocator a;
  a.AddFree(10, 20);   // fits, but before the goal
  a.AddFree(100, 3);   // after the goal, too small
  a.AddFree(200, 8);   // after the goal, fits
  a.AddFree(300, 50);  // fits too, but later
  EXPECT_EQ(*a.Allocate(5, 50), Runs({{200, 5}}));
  // A run holding the goal whose tail is too short is passed over for a later one.
  EXPECT_EQ(*a.Allocate(5, 203), Runs({{300, 5}}));
}

TEST(ExtentAllocatorTest, ThenTheFirstThatFitsAnywhere) {
  ExtentAllocator a;
  a.AddFree(10, 4);
  a.AddFree(20, 9);
  a.AddFree(40, 9);
  a.AddFree(100, 2);
  EXPECT_EQ(*a.Allocate(8, 90), Runs({{20, 8}}));
}

TEST(ExtentAllocatorTest, ThenTheLargestRunsInAddressOrder) {
  ExtentAllocator a;
  a.AddFree(10, 2);
  a.AddFree(20, 5);
  a.AddFree(40, 3);
  a.AddFree(60, 6);
  // 12 blocks: 6 + 5 + 1 of the 3-block run; in address order.
  EXPECT_EQ(*a.Allocate(12, 0), Runs({{20, 5}, {40, 1}, {60, 6}}));
  EXPECT_EQ(a.free_blocks(), 4u);
  EXPECT_EQ(a.fresh_blocks(), 12u);
}

TEST(ExtentAllocatorTest, AllOrNothing) {
  ExtentAllocator a;
  a.AddFree(10, 2);
  a.AddFree(20, 5);
  Result<RunList> r = a.Allocate(8, 0);
  EXPECT_EQ(r.status().code(), ENOSPC);
  EXPECT_EQ(a.free_blocks(), 7u);
  EXPECT_EQ(a.fresh_blocks(), 0u);
  EXPECT_EQ(a.FreeRuns(), Runs({{10, 2}, {20, 5}}));
}

TEST(ExtentAllocatorTest, FreshBlocksReleasedAreFreeAtOnce) {
  ExtentAllocator a;
  a.AddFree(0, 10);
  ASSERT_TRUE(a.Allocate(10, 0).ok());
  EXPECT_TRUE(a.AllFresh(0, 10));
  a.Release(3, 4, 7);
  EXPECT_EQ(a.FreeRuns(), Runs({{3, 4}}));
  EXPECT_EQ(a.deferred_blocks(), 0u);
  EXPECT_EQ(a.fresh_blocks(), 6u);
  EXPECT_FALSE(a.AllFresh(0, 10));
  EXPECT_TRUE(a.AllFresh(7, 3));
  EXPECT_TRUE(a.IsFresh(2));
  EXPECT_FALSE(a.IsFresh(3));
}

TEST(ExtentAllocatorTest, CommittedBlocksAreDeferredUntilTheirGenerationIsSafe) {
  ExtentAllocator a;
  a.AddFree(0, 10);
  ASSERT_TRUE(a.Allocate(10, 0).ok());
  a.Commit();
  EXPECT_EQ(a.fresh_blocks(), 0u);
  EXPECT_FALSE(a.IsFresh(0));
  a.Release(2, 5, 8);
  EXPECT_EQ(a.deferred_blocks(), 5u);
  EXPECT_EQ(a.free_blocks(), 0u);
  a.Commit();
  a.ReleaseDeferred(7);
  EXPECT_EQ(a.deferred_blocks(), 5u) << "freed before the releasing transaction was durable";
  a.ReleaseDeferred(8);
  EXPECT_EQ(a.deferred_blocks(), 0u);
  EXPECT_EQ(a.FreeRuns(), Runs({{2, 5}}));
}

TEST(ExtentAllocatorTest, ReleaseSplitsIntoFreshAndCommittedParts) {
  ExtentAllocator a;
  a.AddFree(0, 20);
  ASSERT_TRUE(a.Allocate(10, 0).ok());  // 0..9 committed
  a.Commit();
  ASSERT_EQ(*a.Allocate(10, 10), Runs({{10, 10}}));  // 10..19 fresh
  a.Release(5, 10, 3);                               // 5..9 committed, 10..14 fresh
  EXPECT_EQ(a.deferred_blocks(), 5u);
  EXPECT_EQ(a.FreeRuns(), Runs({{10, 5}}));
  EXPECT_EQ(a.fresh_blocks(), 5u);
}

TEST(ExtentAllocatorTest, RunningTransactionDeferralsWaitForItsCommit) {
  ExtentAllocator a;
  a.AddFree(0, 4);
  ASSERT_TRUE(a.Allocate(4, 0).ok());
  a.Commit();
  a.Release(0, 4, 5);
  a.ReleaseDeferred(100);  // still the running transaction's: not durable yet
  EXPECT_EQ(a.deferred_blocks(), 4u);
  a.Commit();
  a.ReleaseDeferred(5);
  EXPECT_EQ(a.free_blocks(), 4u);
}

TEST(ExtentAllocatorTest, AbortUndoesAllocationsAndDeferrals) {
  ExtentAllocator a;
  a.AddFree(0, 20);
  ASSERT_TRUE(a.Allocate(5, 0).ok());
  a.Commit();
  a.Release(0, 2, 4);  // deferral of an earlier, committed transaction
  a.Commit();
  a.Release(2, 3, 5);  // deferral of the running one
  ASSERT_TRUE(a.Allocate(6, 10).ok());
  a.Abort();
  EXPECT_EQ(a.fresh_blocks(), 0u);
  EXPECT_EQ(a.deferred_blocks(), 2u);
  EXPECT_EQ(a.free_blocks(), 15u);
  a.ReleaseDeferred(100);
  EXPECT_EQ(a.FreeRuns(), Runs({{0, 2}, {5, 15}}));
  EXPECT_FALSE(a.IsFree(2)) << "abort must leave the running transaction's releases used";
}

TEST(ExtentAllocatorTest, MarkUsedNamesTheFirstBlockThatIsNotFree) {
  ExtentAllocator a;
  a.AddFree(100, 10);
  EXPECT_TRUE(a.MarkUsed(102, 3).ok());
  EXPECT_EQ(a.free_blocks(), 7u);
  Status twice = a.MarkUsed(101, 3);
  EXPECT_EQ(twice.code(), EUCLEAN);
  EXPECT_NE(twice.message().find("102"), std::string::npos) << twice.message();
  EXPECT_EQ(a.MarkUsed(50, 1).code(), EUCLEAN);
  EXPECT_EQ(a.free_blocks(), 7u) << "a failed MarkUsed changed the free set";
}

// ---- Randomized comparison with a per-block model.

enum class BlockState { kOutside, kFree, kFresh, kUsed, kDeferred };

struct ModelBlock {
  BlockState state = BlockState::kOutside;
  uint64_t generation = 0;
  bool deferred_in_txn = false;
};

class Model {
 public:
  explicit Model(uint64_t blocks) : b_(blocks) {}

  RunList FreeRuns() const { return RunsOf(BlockState::kFree); }
  uint64_t Count(BlockState s) const {
    uint64_t n = 0;
    for (auto& b : b_) n += b.state == s;
    return n;
  }
  // The documented preference, computed from scratch over the bitmap.
  std::optional<RunList> Expected(uint64_t count, uint64_t goal) const {
    if (count == 0) return RunList{};
    if (Count(BlockState::kFree) < count) return std::nullopt;
    RunList free = FreeRuns();
    for (const BlockRun& r : free) {
      if (r.start <= goal && goal + count <= r.start + r.count) return RunList{{goal, count}};
    }
    for (const BlockRun& r : free) {
      if (r.start > goal && r.count >= count) return RunList{{r.start, count}};
    }
    for (const BlockRun& r : free) {
      if (r.count >= count) return RunList{{r.start, count}};
    }
    RunList by_size = free;
    std::stable_sort(by_size.begin(), by_size.end(),
                     [](auto& a, auto& b) { return a.count > b.count; });
    RunList out;
    for (const BlockRun& r : by_size) {
      if (count == 0) break;
      uint64_t take = std::min(count, r.count);
      out.push_back({r.start, take});
      count -= take;
    }
    std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.start < b.start; });
    return out;
  }

  std::vector<ModelBlock>& blocks() { return b_; }
  const std::vector<ModelBlock>& blocks() const { return b_; }

 private:
  RunList RunsOf(BlockState s) const {
    RunList out;
    for (uint64_t i = 0; i < b_.size(); ++i) {
      if (b_[i].state != s) continue;
      if (!out.empty() && out.back().start + out.back().count == i) {
        ++out.back().count;
      } else {
        out.push_back({i, 1});
      }
    }
    return out;
  }
  std::vector<ModelBlock> b_;
};

void ExpectSame(const ExtentAllocator& a, const Model& m, const std::string& where) {
  ASSERT_EQ(a.FreeRuns(), m.FreeRuns()) << where;
  ASSERT_EQ(a.free_blocks(), m.Count(BlockState::kFree)) << where;
  ASSERT_EQ(a.fresh_blocks(), m.Count(BlockState::kFresh)) << where;
  ASSERT_EQ(a.deferred_blocks(), m.Count(BlockState::kDeferred)) << where;
  for (uint64_t i = 0; i < m.blocks().size(); ++i) {
    ASSERT_EQ(a.IsFresh(i), m.blocks()[i].state == BlockState::kFresh) << where << " block " << i;
    ASSERT_EQ(a.IsFree(i), m.blocks()[i].state == BlockState::kFree) << where << " block " << i;
  }
}

TEST(ExtentAllocatorTest, RandomizedAgainstPerBlockModel) {
  const uint64_t seed = base::SeedFromEnv(0xa110c);
  std::cout << "seed " << seed << " (replay with DAXFS_SEED=" << seed << ")\n";
  base::Random rnd(seed);
  constexpr uint64_t kBlocks = 512;
  constexpr uint64_t kChunk = 64;
  ExtentAllocator a;
  Model m(kBlocks);
  uint64_t generation = 1;  // the running transaction's
  uint64_t next_chunk = 0;  // chunks are added in order, like AllocateChunk
  for (int step = 0; step < 20000; ++step) {
    std::string where = "step " + std::to_string(step) + " seed " + std::to_string(seed);
    uint64_t op = rnd.Uniform(100);
    auto& b = m.blocks();
    if (op < 3 && next_chunk * kChunk < kBlocks) {
      uint64_t start = next_chunk++ * kChunk;
      a.AddFree(start, kChunk);
      for (uint64_t i = start; i < start + kChunk; ++i) b[i].state = BlockState::kFree;
    } else if (op < 40) {
      uint64_t count = 1 + rnd.Uniform(rnd.OneIn(10) ? 200 : 12);
      uint64_t goal = rnd.Uniform(kBlocks);
      std::optional<RunList> want = m.Expected(count, goal);
      Result<RunList> got = a.Allocate(count, goal);
      if (!want) {
        ASSERT_EQ(got.status().code(), ENOSPC) << where;
      } else {
        ASSERT_TRUE(got.ok()) << where << ": " << got.status().ToString();
        ASSERT_EQ(*got, *want) << where << " count " << count << " goal " << goal;
        for (const BlockRun& r : *got) {
          for (uint64_t i = r.start; i < r.start + r.count; ++i) b[i].state = BlockState::kFresh;
        }
      }
    } else if (op < 75) {
      // Release a random range of owned (fresh or used) blocks.
      uint64_t start = rnd.Uniform(kBlocks);
      if (b[start].state != BlockState::kFresh && b[start].state != BlockState::kUsed) continue;
      uint64_t end = start + 1;
      uint64_t want = 1 + rnd.Uniform(30);
      while (end < kBlocks && end - start < want &&
             (b[end].state == BlockState::kFresh || b[end].state == BlockState::kUsed)) {
        ++end;
      }
      a.Release(start, end - start, generation);
      for (uint64_t i = start; i < end; ++i) {
        if (b[i].state == BlockState::kFresh) {
          b[i].state = BlockState::kFree;
        } else {
          b[i] = {BlockState::kDeferred, generation, true};
        }
      }
    } else if (op < 88) {
      a.Commit();
      for (auto& blk : b) {
        if (blk.state == BlockState::kFresh) blk.state = BlockState::kUsed;
        blk.deferred_in_txn = false;
      }
      ++generation;
      // The next transaction starts by reclaiming what is safe (as the filesystem does), with
      // an older safe generation now and then (a reader pinning a snapshot).
      uint64_t safe = generation - 1 - (rnd.OneIn(3) ? std::min<uint64_t>(generation - 1, 2) : 0);
      a.ReleaseDeferred(safe);
      for (auto& blk : b) {
        if (blk.state == BlockState::kDeferred && blk.generation <= safe)
          blk.state = BlockState::kFree;
      }
    } else if (op < 95) {
      a.Abort();
      for (auto& blk : b) {
        if (blk.state == BlockState::kFresh) blk.state = BlockState::kFree;
        if (blk.state == BlockState::kDeferred && blk.deferred_in_txn) {
          blk = {BlockState::kUsed, 0, false};
        }
      }
    } else {
      // MarkUsed of a random range: succeeds exactly when all of it is free.
      uint64_t start = rnd.Uniform(kBlocks);
      uint64_t count = 1 + rnd.Uniform(8);
      if (start + count > kBlocks) continue;
      bool all_free = true;
      for (uint64_t i = start; i < start + count; ++i) all_free &= b[i].state == BlockState::kFree;
      Status s = a.MarkUsed(start, count);
      ASSERT_EQ(s.ok(), all_free) << where;
      if (all_free) {
        for (uint64_t i = start; i < start + count; ++i) b[i].state = BlockState::kUsed;
      }
    }
    if (step % 97 == 0 || op >= 75) ExpectSame(a, m, where);
    if (HasFatalFailure()) return;
  }
  ExpectSame(a, m, "end");
}

}  // namespace
}  // namespace daxfs::space
