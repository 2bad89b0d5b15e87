// The kernel's lookup counts: adds, forgets, the root, clamping, and many threads at once.
#include "lookup_table.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace daxfs::fusefs {
namespace {

TEST(LookupTable, RootIsKnownFromTheStart) {
  LookupTable t;
  EXPECT_EQ(t.Count(LookupTable::kRoot), 1u);
  EXPECT_EQ(t.known(), 1u);
}

TEST(LookupTable, AddAndForget) {
  LookupTable t;
  EXPECT_TRUE(t.Add(7));
  EXPECT_FALSE(t.Add(7, 2));
  EXPECT_EQ(t.Count(7), 3u);
  EXPECT_EQ(t.known(), 2u);
  EXPECT_EQ(t.Forget(7, 2), 1u);
  EXPECT_EQ(t.Forget(7, 1), 0u);
  EXPECT_EQ(t.Count(7), 0u);
  EXPECT_EQ(t.known(), 1u);
  EXPECT_EQ(t.underflows(), 0u);
}

TEST(LookupTable, ForgetOfMoreThanKnownIsClampedAndCounted) {
  LookupTable t;
  t.Add(9, 1);
  EXPECT_EQ(t.Forget(9, 5), 0u);
  EXPECT_EQ(t.Forget(10, 1), 0u);
  EXPECT_EQ(t.underflows(), 2u);
  EXPECT_EQ(t.known(), 1u);
}

TEST(LookupTable, ThreadsBalanceOut) {
  LookupTable t;
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k) {
    threads.emplace_back([&t, k] {
      for (uint64_t i = 0; i < 20000; ++i) {
        t.Add(2 + i % 100);
        if (k % 2 == 0) t.Forget(2 + i % 100, 1);
      }
    });
  }
  for (auto& th : threads) th.join();
  uint64_t total = 0;
  for (uint64_t i = 0; i < 100; ++i) total += t.Count(2 + i);
  EXPECT_EQ(total, 2u * 20000u);
  EXPECT_EQ(t.known(), 101u);
  EXPECT_EQ(t.underflows(), 0u);
}

}  // namespace
}  // namespace daxfs::fusefs
