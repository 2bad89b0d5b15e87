// Crash loop over copy-on-write transactions: run small random workloads on a CrashDevice, and at
// every persist point build the images a power cut could leave (several seeds each). Every image
// must mount, pass the full check (no leaked or doubly owned node, every checksum valid) and hold
// exactly the last committed state or the state being committed; a commit that returned is
// durable. Seeded: DAXFS_SEED=<n> replays one workload.
#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <optional>

#include "base/coding.h"
#include "base/random.h"
#include "device/crash_device.h"
#include "txn/pool.h"

namespace daxfs {
namespace {

using Model = std::map<uint64_t, uint64_t>;
constexpr uint64_t kDeviceSize = 2 << 20;
constexpr uint64_t kChunk = 256 << 10;
constexpr uint64_t kImageSeeds[] = {0, 1, 2, 3};

Model ReadModel(txn::Pool* pool) {
  Model m;
  auto view = pool->BeginRead();
  Result<btree::BTree> t = view->Tree(txn::ScratchSpec());
  EXPECT_TRUE(t.ok());
  btree::Cursor c(&*t);
  for (Status s = c.SeekFirst(); c.Valid(); s = c.Next()) {
    EXPECT_TRUE(s.ok()) << s.ToString();
    m[c.key().w[0]] = base::DecodeU64(c.value().data());
  }
  return m;
}

struct Expectation {
  bool formatted = false;   // Format has returned: the image must mount
  Model committed;          // the last state whose Commit returned
  std::optional<Model> pending;  // the state being committed, if a commit is in flight
};

class CrashChecker {
 public:
  explicit CrashChecker(device::CrashDevice* dev) : dev_(dev) {}
  Expectation expect;
  uint64_t images_checked = 0;

  void AtPersistPoint(uint64_t point) {
    for (uint64_t seed : kImageSeeds) CheckImage(dev_->CrashImage(seed), point, seed);
    CheckImage(dev_->WorkingImage(), point, ~0ULL);
  }

  void CheckImage(const std::string& image, uint64_t point, uint64_t seed) {
    ++images_checked;
    auto mem = device::NewMemoryDevice(image);
    Result<std::unique_ptr<txn::Pool>> pool = txn::Pool::Open(mem.get());
    std::string where = "persist point " + std::to_string(point) + ", image seed " + std::to_string(seed);
    if (!pool.ok()) {
      if (expect.formatted) ADD_FAILURE() << where << ": mount failed: " << pool.status().ToString();
      return;
    }
    (*pool)->RegisterTree(txn::ScratchSpec());
    txn::CheckReport report = (*pool)->Check();
    for (const auto& p : report.problems) ADD_FAILURE() << where << ": " << p;
    Model got = ReadModel(pool->get());
    bool matches = got == expect.committed || (expect.pending && got == *expect.pending);
    EXPECT_TRUE(matches) << where << ": recovered " << got.size() << " records; committed has "
                         << expect.committed.size() << ", pending has "
                         << (expect.pending ? expect.pending->size() : 0);
  }

 private:
  device::CrashDevice* dev_;
};

void RunWorkload(uint64_t seed, int transactions, int max_ops, uint64_t key_space) {
  SCOPED_TRACE("workload seed " + std::to_string(seed) + " (replay with DAXFS_SEED=" +
               std::to_string(seed) + ")");
  base::Random rng(seed);
  device::CrashDevice dev(kDeviceSize);
  CrashChecker checker(&dev);
  dev.SetPersistHook([&](uint64_t point) { checker.AtPersistPoint(point); });

  Result<std::unique_ptr<txn::Pool>> formatted = txn::Pool::Format(&dev, {.chunk_size = kChunk});
  ASSERT_TRUE(formatted.ok()) << formatted.status().ToString();
  std::unique_ptr<txn::Pool> pool = std::move(*formatted);
  checker.expect.formatted = true;

  Model model;
  for (int t = 0; t < transactions; ++t) {
    auto txn = *pool->BeginWrite();
    btree::BTree* tree = *txn->Tree(txn::ScratchSpec());
    Model next = model;
    int ops = 1 + rng.Uniform(max_ops);
    for (int i = 0; i < ops; ++i) {
      uint64_t k = rng.Uniform(key_space);
      if (rng.OneIn(3) && next.count(k)) {
        ASSERT_TRUE(tree->Delete(btree::Key{{k, 0}}).ok());
        next.erase(k);
      } else {
        uint64_t v = rng.Next();
        std::array<uint8_t, 24> value{};
        base::EncodeU64(value.data(), v);
        ASSERT_TRUE(tree->Put(btree::Key{{k, 0}}, value).ok());
        next[k] = v;
      }
    }
    if (rng.OneIn(6)) {
      txn->Abort();
      continue;
    }
    checker.expect.pending = next;
    ASSERT_TRUE(txn->Commit().ok());
    model = next;
    checker.expect.committed = model;
    checker.expect.pending.reset();
  }
  // A clean close is one more persist point; its image holds the same records.
  ASSERT_TRUE(pool->Close().ok());
  checker.CheckImage(dev.CrashImage(0), dev.persist_count(), 0);
  std::printf("workload seed %llu: %llu persist points, %llu crash images checked\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(dev.persist_count()),
              static_cast<unsigned long long>(checker.images_checked));
}

TEST(PoolCrashTest, EveryPersistPointOfSmallWorkloads) {
  uint64_t first = base::SeedFromEnv(0);
  if (first) {
    RunWorkload(first, 12, 80, 400);
    return;
  }
  for (uint64_t seed = 1; seed <= 4; ++seed) RunWorkload(seed, 12, 80, 400);
}

TEST(PoolCrashTest, LargeTransactionsThatSplitAndGrowMetadata) {
  uint64_t seed = base::SeedFromEnv(77);
  RunWorkload(seed, 6, 1500, 1ULL << 40);
}

}  // namespace
}  // namespace daxfs
