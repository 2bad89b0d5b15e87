// Crash loop over copy-on-write transactions: run small random workloads on a CrashDevice, and at
// every persist point build the images a power cut could leave (several seeds each). Every image
// must mount, pass the full check (no leaked or doubly owned node, every checksum valid) and hold
// exactly the last committed state or the state being committed; a commit that returned is
// durable. With metadata twins, also the images that split along the copies: only the primary
// copies' lines kept (a crash between the primary and twin writes), only the twins', half the
// twins' (a torn twin), and either superblock copy without the other; each must mount, check
// clean and take one more commit cleanly. Seeded: DAXFS_SEED=<n> replays one workload.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <set>

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
  txn::Pool* pool = nullptr;  // once formatted: where the twin chunks are

  void AtPersistPoint(uint64_t point) {
    for (uint64_t seed : kImageSeeds) CheckImage(dev_->CrashImage(seed), point, seed);
    CheckImage(dev_->WorkingImage(), point, ~0ULL);
    if (pool && pool->metadata_dup()) SplitImages(point);
  }

  // Images that keep the unpersisted lines on one side of the copies and lose the others.
  void SplitImages(uint64_t point) {
    std::set<uint64_t> twin_chunks;
    for (auto& [c, type] : pool->Chunks()) {
      if (type == format::ChunkType::kMetadataTwin) twin_chunks.insert(c);
    }
    const uint64_t chunk_bytes = pool->superblock().chunk_size;
    const uint64_t sb_twin = pool->TwinBlock(0) * format::kBlockSize;
    auto in_twin = [&](uint64_t line) { return twin_chunks.count(line / chunk_bytes) > 0; };
    auto in_sb = [](uint64_t line) { return line < 2 * format::kBlockSize; };
    auto in_sb_twin = [&](uint64_t line) {
      return line >= sb_twin && line < sb_twin + 2 * format::kBlockSize;
    };
    struct Split {
      const char* name;
      std::function<bool(uint64_t line, size_t i)> keep;
    };
    const Split splits[] = {
        {"primaries only", [&](uint64_t l, size_t) { return !in_twin(l); }},
        {"twins only", [&](uint64_t l, size_t) { return in_twin(l); }},
        {"torn twins", [&](uint64_t l, size_t i) { return !in_twin(l) || i % 2 == 0; }},
        {"superblock twin lost", [&](uint64_t l, size_t) { return !in_sb_twin(l); }},
        {"superblock primary lost", [&](uint64_t l, size_t) { return !in_sb(l); }},
    };
    std::vector<uint64_t> lines = dev_->UnpersistedLines();
    if (lines.empty()) return;
    std::string working = dev_->WorkingImage();
    for (const Split& split : splits) {
      std::string image = dev_->DurableImage();
      for (size_t i = 0; i < lines.size(); ++i) {
        if (split.keep(lines[i], i))
          std::memcpy(&image[lines[i]], &working[lines[i]], device::kCacheLine);
      }
      CheckImage(image, point, ~0ULL, split.name);
    }
  }

  void CheckImage(const std::string& image, uint64_t point, uint64_t seed,
                  const char* split = nullptr) {
    ++images_checked;
    auto mem = device::NewMemoryDevice(image);
    Result<std::unique_ptr<txn::Pool>> pool = txn::Pool::Open(mem.get());
    std::string where =
        "persist point " + std::to_string(point) +
        (split ? std::string(", ") + split : ", image seed " + std::to_string(seed));
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
    if (!split) return;
    // The image goes on: one more commit leaves it clean, with nothing pending.
    Result<std::unique_ptr<txn::WriteTxn>> txn = (*pool)->BeginWrite();
    ASSERT_TRUE(txn.ok()) << where << ": " << txn.status().ToString();
    Status committed = (*txn)->Commit();
    ASSERT_TRUE(committed.ok()) << where << ": " << committed.ToString();
    txn::CheckReport after = (*pool)->Check();
    for (const auto& p : after.problems) ADD_FAILURE() << where << ", after a commit: " << p;
    for (const auto& p : after.pending) ADD_FAILURE() << where << ", after a commit: pending " << p;
    EXPECT_EQ((*pool)->PendingRepairs(), 0u) << where;
  }

 private:
  device::CrashDevice* dev_;
};

struct WorkloadOptions {
  int transactions = 12;
  int max_ops = 80;
  uint64_t key_space = 400;
  bool metadata_dup = false;
  int enable_dup_at = -1;  // EnableMetadataDup before this transaction (a pool made without)
};

void RunWorkload(uint64_t seed, const WorkloadOptions& options) {
  SCOPED_TRACE("workload seed " + std::to_string(seed) + " (replay with DAXFS_SEED=" +
               std::to_string(seed) + ")");
  base::Random rng(seed);
  device::CrashDevice dev(kDeviceSize);
  CrashChecker checker(&dev);
  dev.SetPersistHook([&](uint64_t point) { checker.AtPersistPoint(point); });

  Result<std::unique_ptr<txn::Pool>> formatted =
      txn::Pool::Format(&dev, {.chunk_size = kChunk, .metadata_dup = options.metadata_dup});
  ASSERT_TRUE(formatted.ok()) << formatted.status().ToString();
  std::unique_ptr<txn::Pool> pool = std::move(*formatted);
  checker.expect.formatted = true;
  checker.pool = pool.get();

  Model model;
  for (int t = 0; t < options.transactions; ++t) {
    if (t == options.enable_dup_at) {
      checker.expect.pending = model;  // the same records, before or after
      ASSERT_TRUE(pool->EnableMetadataDup().ok());
      checker.expect.pending.reset();
    }
    auto txn = *pool->BeginWrite();
    btree::BTree* tree = *txn->Tree(txn::ScratchSpec());
    Model next = model;
    int ops = 1 + rng.Uniform(options.max_ops);
    for (int i = 0; i < ops; ++i) {
      uint64_t k = rng.Uniform(options.key_space);
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

void RunWorkload(uint64_t seed, int transactions, int max_ops, uint64_t key_space) {
  RunWorkload(seed, {.transactions = transactions, .max_ops = max_ops, .key_space = key_space});
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

TEST(PoolCrashTest, EveryPersistPointWithMetadataTwins) {
  uint64_t first = base::SeedFromEnv(0);
  WorkloadOptions options{.metadata_dup = true};
  if (first) {
    RunWorkload(first, options);
    return;
  }
  for (uint64_t seed = 1; seed <= 4; ++seed) RunWorkload(seed, options);
}

TEST(PoolCrashTest, TwinsOfLargeTransactionsThatGrowMetadataInPairs) {
  uint64_t seed = base::SeedFromEnv(78);
  RunWorkload(seed,
              {.transactions = 6, .max_ops = 1500, .key_space = 1ULL << 40, .metadata_dup = true});
}

TEST(PoolCrashTest, EnablingMetadataTwinsIsAtomic) {
  uint64_t seed = base::SeedFromEnv(79);
  RunWorkload(seed,
              {.transactions = 10, .max_ops = 600, .key_space = 1ULL << 40, .enable_dup_at = 5});
}

}  // namespace
}  // namespace daxfs
