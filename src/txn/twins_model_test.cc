// Randomised: a random workload on a pool with metadata twins (against a std::map model), then
// errors injected into random reachable nodes (scratch tree and chunk table) and the superblock:
// a flipped byte or poison on one copy of each, or on both copies of one node. With one good
// copy every record reads back equal to the model, the repairs converge (a commit, RebuildTwins
// for the twins no read looks at) and a remount is clean; with both copies bad the error names
// both blocks. Seeds are printed; DAXFS_SEED=<n> replays one round.
#include <fmt/core.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <map>
#include <set>

#include "base/coding.h"
#include "base/random.h"
#include "status_assert.h"
#include "txn/pool.h"

namespace daxfs::txn {
namespace {

using format::kBlockSize;
using Model = std::map<uint64_t, uint64_t>;

constexpr uint64_t kDeviceSize = 8 << 20;
constexpr uint64_t kChunk = 256 << 10;

Status RandomTransactions(Pool* pool, base::Random* rng, Model* model, int transactions) {
  for (int t = 0; t < transactions; ++t) {
    ASSIGN_OR_RETURN(auto txn, pool->BeginWrite());
    ASSIGN_OR_RETURN(btree::BTree * tree, txn->Tree(ScratchSpec()));
    Model next = *model;
    int ops = 1 + static_cast<int>(rng->Uniform(rng->OneIn(4) ? 3000 : 200));
    for (int i = 0; i < ops; ++i) {
      uint64_t k = rng->Uniform(20000);
      if (rng->OneIn(4) && next.count(k)) {
        RETURN_IF_ERROR(tree->Delete(btree::Key{{k, 0}}));
        next.erase(k);
      } else {
        uint64_t v = rng->Next();
        std::array<uint8_t, 24> value{};
        base::EncodeU64(value.data(), v);
        RETURN_IF_ERROR(tree->Put(btree::Key{{k, 0}}, value).status());
        next[k] = v;
      }
    }
    if (rng->OneIn(8)) {
      txn->Abort();
      continue;
    }
    RETURN_IF_ERROR(txn->Commit());
    *model = std::move(next);
  }
  return Status::Ok();
}

Result<Model> ReadModel(Pool* pool) {
  Model m;
  auto view = pool->BeginRead();
  ASSIGN_OR_RETURN(btree::BTree t, view->Tree(ScratchSpec()));
  btree::Cursor c(&t);
  for (Status s = c.SeekFirst();; s = c.Next()) {
    RETURN_IF_ERROR(s);
    if (!c.Valid()) break;
    m[c.key().w[0]] = base::DecodeU64(c.value().data());
  }
  return m;
}

std::vector<uint64_t> ReachableNodes(Pool* pool) {
  std::vector<uint64_t> out;
  auto view = pool->BeginRead();
  for (const btree::TreeSpec& spec : {ScratchSpec(), ChunkTableSpec()}) {
    Result<btree::BTree> t = view->Tree(spec);
    EXPECT_OK(t);
    EXPECT_OK(t->VisitNodes([&](uint64_t b, int) {
      out.push_back(b);
      return Status::Ok();
    }));
  }
  return out;
}

std::unique_ptr<Pool> Open(device::Device* dev) {
  Result<std::unique_ptr<Pool>> p = Pool::Open(dev);
  EXPECT_OK(p);
  if (!p.ok()) return nullptr;
  (*p)->RegisterTree(ScratchSpec());
  return std::move(*p);
}

void ExpectClean(Pool* pool, const char* when) {
  CheckReport r = pool->Check();
  for (const auto& p : r.problems) ADD_FAILURE() << when << ": " << p;
  for (const auto& p : r.pending) ADD_FAILURE() << when << ": pending: " << p;
}

struct Damage {
  uint64_t node;   // the node slot
  uint64_t block;  // the copy damaged: the node or its twin
  bool twin;
  bool poison;  // else a flipped byte
};

void Apply(device::Device* dev, base::Random* rng, const Damage& d) {
  if (d.poison) {
    ASSERT_OK(
        dev->InjectPoison(d.block * kBlockSize + 64 * rng->Uniform(64), 1 + rng->Uniform(64)));
  } else {
    dev->At(d.block * kBlockSize)[rng->Uniform(kBlockSize)] ^=
        static_cast<uint8_t>(1 + rng->Uniform(255));
  }
}

// Builds a pool with a random workload; returns it unmounted (a crash-like reset, no Close).
std::unique_ptr<device::Device> AgedPool(base::Random* rng, Model* model,
                                         std::vector<uint64_t>* nodes, uint64_t* chunk_root,
                                         std::map<uint64_t, uint64_t>* twin_of, int* slot,
                                         uint64_t* sb_twin) {
  auto dev = device::NewMemoryDevice(kDeviceSize);
  Result<std::unique_ptr<Pool>> p =
      Pool::Format(dev.get(), {.chunk_size = kChunk, .metadata_dup = true});
  EXPECT_OK(p);
  if (!p.ok()) return nullptr;
  std::unique_ptr<Pool> pool = std::move(*p);
  pool->RegisterTree(ScratchSpec());
  EXPECT_OK(RandomTransactions(pool.get(), rng, model, 4 + static_cast<int>(rng->Uniform(12))));
  *nodes = ReachableNodes(pool.get());
  for (uint64_t b : *nodes) (*twin_of)[b] = pool->TwinBlock(b);
  *chunk_root = pool->superblock().tree(format::TreeId::kChunks).root;
  *slot = pool->superblock_slot();
  *sb_twin = pool->TwinBlock(*slot);
  return dev;
}

void OneGoodCopyRound(uint64_t seed) {
  SCOPED_TRACE(fmt::format("one good copy, seed {} (replay with DAXFS_SEED={})", seed, seed));
  base::Random rng(seed);
  Model model;
  std::vector<uint64_t> nodes;
  std::map<uint64_t, uint64_t> twin_of;
  uint64_t chunk_root = 0, sb_twin = 0;
  int slot = 0;
  auto dev = AgedPool(&rng, &model, &nodes, &chunk_root, &twin_of, &slot, &sb_twin);
  ASSERT_TRUE(dev);
  // Damage one copy of up to 8 distinct nodes (the chunk table's root a quarter of the time).
  std::vector<uint64_t> pick = nodes;
  for (size_t i = pick.size(); i > 1; --i) std::swap(pick[i - 1], pick[rng.Uniform(i)]);
  pick.resize(std::min<size_t>(pick.size(), 1 + rng.Uniform(8)));
  if (rng.OneIn(4) && std::find(pick.begin(), pick.end(), chunk_root) == pick.end())
    pick.push_back(chunk_root);
  std::vector<Damage> damage;
  for (uint64_t b : pick) {
    bool twin = rng.OneIn(2);
    damage.push_back({b, twin ? twin_of[b] : b, twin, rng.OneIn(2)});
  }
  bool sb_damage = rng.OneIn(3);
  for (const Damage& d : damage) Apply(dev.get(), &rng, d);
  if (sb_damage) {  // one copy of the newest superblock slot: a flipped byte
    uint64_t block = rng.OneIn(2) ? static_cast<uint64_t>(slot) : sb_twin;
    dev->At(block * kBlockSize)[32 + rng.Uniform(600)] ^= 0x20;
  }

  auto pool = Open(dev.get());
  ASSERT_TRUE(pool);
  EXPECT_FALSE(pool->read_only());
  Result<Model> got = ReadModel(pool.get());
  ASSERT_OK(got);
  ASSERT_TRUE(*got == model) << "records differ from the model after the damage";
  // The next commit moves every node whose primary is bad or whose twin is on bad media; only
  // the flipped twins (no read looks at a twin whose primary is good) are left for Check.
  ASSERT_OK(RandomTransactions(pool.get(), &rng, &model, 1));  // may abort: then
  {
    auto txn = pool->BeginWrite();  // a commit of nothing repairs as well
    ASSERT_OK(txn);
    ASSERT_OK((*txn)->Commit());
  }
  std::set<uint64_t> flipped_twins;
  for (const Damage& d : damage) {
    if (d.twin && !d.poison) flipped_twins.insert(d.node);
  }
  CheckReport report = pool->Check();
  std::set<uint64_t> named;
  for (const std::string& p : report.problems) {
    uint64_t b = 0;
    if (std::sscanf(p.c_str(), "block %lu: twin at block", &b) == 1) {
      named.insert(b);
    } else {
      ADD_FAILURE() << "unexpected problem: " << p;
    }
  }
  // A flipped twin of a node the commit rewrote anyway is gone with the old node.
  for (uint64_t b : named)
    EXPECT_TRUE(flipped_twins.count(b))
        << "block " << b << "; problems: " << ::testing::PrintToString(report.problems);
  std::vector<uint64_t> now = ReachableNodes(pool.get());
  for (uint64_t b : flipped_twins) {
    if (std::count(now.begin(), now.end(), b))
      EXPECT_TRUE(named.count(b)) << "Check missed the twin of " << b;
  }
  Result<TwinRebuildReport> rebuilt = pool->RebuildTwins();
  ASSERT_OK(rebuilt);
  EXPECT_TRUE(rebuilt->lost.empty());
  EXPECT_EQ(rebuilt->rewritten.size(), named.size());
  ExpectClean(pool.get(), "after repair");
  got = ReadModel(pool.get());
  ASSERT_OK(got);
  ASSERT_TRUE(*got == model);

  // Remount: clean, the retired slots (handed back) are never used again.
  std::vector<uint64_t> retired = pool->RetiredNodes();
  pool.reset();
  pool = Open(dev.get());
  ASSERT_TRUE(pool);
  EXPECT_EQ(pool->PendingRepairs(), 0u);
  ASSERT_OK(pool->RetireNodes(retired));
  ExpectClean(pool.get(), "after remount");
  ASSERT_OK(RandomTransactions(pool.get(), &rng, &model, 6));
  got = ReadModel(pool.get());
  ASSERT_OK(got);
  ASSERT_TRUE(*got == model);
  std::set<uint64_t> retired_set(retired.begin(), retired.end());
  for (const Damage& d : damage) {
    if (!d.twin || d.poison)
      EXPECT_TRUE(retired_set.count(d.node) || !std::count(now.begin(), now.end(), d.node))
          << "damaged slot " << d.node << " not retired";
  }
  for (uint64_t b : ReachableNodes(pool.get()))
    ASSERT_FALSE(retired_set.count(b)) << "retired slot " << b << " reused";
  ExpectClean(pool.get(), "after more work");
}

void BothCopiesRound(uint64_t seed) {
  SCOPED_TRACE(fmt::format("both copies, seed {} (replay with DAXFS_SEED={})", seed, seed));
  base::Random rng(seed);
  Model model;
  std::vector<uint64_t> nodes;
  std::map<uint64_t, uint64_t> twin_of;
  uint64_t chunk_root = 0, sb_twin = 0;
  int slot = 0;
  auto dev = AgedPool(&rng, &model, &nodes, &chunk_root, &twin_of, &slot, &sb_twin);
  ASSERT_TRUE(dev);
  uint64_t b = rng.OneIn(4) ? chunk_root : nodes[rng.Uniform(nodes.size())];
  Apply(dev.get(), &rng, {b, b, false, rng.OneIn(2)});
  Apply(dev.get(), &rng, {b, twin_of[b], true, rng.OneIn(2)});
  std::string both = fmt::format("metadata node {}: both copies are bad: primary (block {})", b, b);
  std::string twin = fmt::format("twin (block {})", twin_of[b]);
  Result<std::unique_ptr<Pool>> p = Pool::Open(dev.get());
  if (!p.ok()) {
    EXPECT_NE(p.status().message().find(both), std::string::npos) << p.status().message();
    EXPECT_NE(p.status().message().find(twin), std::string::npos) << p.status().message();
    return;
  }
  // Mounted read-only (bad media under metadata): the read of that node fails, naming both.
  EXPECT_TRUE((*p)->read_only());
  Result<Model> got = ReadModel(p->get());
  ASSERT_FALSE(got.ok()) << "a node with both copies bad was read";
  EXPECT_EQ(got.status().code(), EIO);
  EXPECT_NE(got.status().message().find(both), std::string::npos) << got.status().message();
  EXPECT_NE(got.status().message().find(twin), std::string::npos) << got.status().message();
}

TEST(TwinsModelTest, OneGoodCopyReadsBackAndRepairs) {
  uint64_t seed = base::SeedFromEnv(0);
  if (seed) return OneGoodCopyRound(seed);
  uint64_t first = 1000 + static_cast<uint64_t>(time(nullptr)) % 100000;
  std::printf("[ twins    ] one good copy: seeds %llu..%llu\n", (unsigned long long)first,
              (unsigned long long)first + 39);
  for (uint64_t s = first; s < first + 40 && !::testing::Test::HasFailure(); ++s)
    OneGoodCopyRound(s);
}

TEST(TwinsModelTest, BothCopiesBadIsAClearError) {
  uint64_t seed = base::SeedFromEnv(0);
  if (seed) return BothCopiesRound(seed);
  uint64_t first = 5000 + static_cast<uint64_t>(time(nullptr)) % 100000;
  std::printf("[ twins    ] both copies: seeds %llu..%llu\n", (unsigned long long)first,
              (unsigned long long)first + 39);
  for (uint64_t s = first; s < first + 40 && !::testing::Test::HasFailure(); ++s)
    BothCopiesRound(s);
}

}  // namespace
}  // namespace daxfs::txn
