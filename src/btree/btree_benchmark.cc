// Micro-benchmarks of the B+tree over the in-memory node store: random inserts in transactions
// of 1,000, point lookups, 100-record range scans, and overlap queries on an interval tree of
// 1 million small intervals. Knows nothing about devices: the store is plain memory.
#include <benchmark/benchmark.h>

#include <memory>
#include <vector>

#include "base/coding.h"
#include "base/random.h"
#include "btree/btree.h"
#include "btree/testing/mem_node_store.h"

namespace daxfs::btree {
namespace {

using testing::MemNodeStore;

constexpr int64_t kRecords = 1000000;
constexpr int kTransaction = 1000;
constexpr uint64_t kIntervalSpace = uint64_t{1} << 24;

uint64_t IntervalEnd(const Key& key, const uint8_t* value) {
  return key.w[0] + base::DecodeU64(value);
}

TreeSpec KeyValueSpec() {
  TreeSpec spec;
  spec.name = "bench";
  spec.key_words = 2;    // 16-byte keys
  spec.value_size = 24;  // 24-byte values
  return spec;
}

TreeSpec IntervalSpec() {
  TreeSpec spec;
  spec.name = "bench-interval";
  spec.key_words = 2;   // (start, owner)
  spec.value_size = 8;  // length
  spec.interval_end = IntervalEnd;
  return spec;
}

Key RandomKey(base::Random* rnd) {
  Key k;
  k.w[0] = rnd->Next();
  k.w[1] = rnd->Next();
  return k;
}

// A store and a tree of kRecords random records (the same keys as RandomKey from seed 1),
// committed every kTransaction inserts. Built once per process.
struct Loaded {
  MemNodeStore store;
  std::unique_ptr<BTree> tree;
};

Loaded* LoadKeyValueTree() {
  static Loaded* loaded = [] {
    auto* l = new Loaded;
    l->store.set_poison_allocations(false);
    l->tree = std::make_unique<BTree>(KeyValueSpec(), &l->store, 0);
    base::Random rnd(1);
    uint8_t value[24] = {};
    for (int64_t i = 0; i < kRecords; ++i) {
      Key k = RandomKey(&rnd);
      base::EncodeU64(value, i);
      if (!l->tree->Insert(k, value).ok()) std::abort();
      if (i % kTransaction == kTransaction - 1) l->store.Commit();
    }
    l->store.Commit();
    return l;
  }();
  return loaded;
}

// Random intervals [start, start + 1..64) with start in [0, 2^24), owner in [0, 16): about
// six records overlap a random 64-unit range.
Loaded* LoadIntervalTree() {
  static Loaded* loaded = [] {
    auto* l = new Loaded;
    l->store.set_poison_allocations(false);
    l->tree = std::make_unique<BTree>(IntervalSpec(), &l->store, 0);
    base::Random rnd(2);
    uint8_t value[8];
    for (int64_t i = 0; i < kRecords;) {
      Key k;
      k.w[0] = rnd.Uniform(kIntervalSpace);
      k.w[1] = rnd.Uniform(16);
      base::EncodeU64(value, 1 + rnd.Uniform(64));
      if (!l->tree->Insert(k, value).ok()) continue;
      if (++i % kTransaction == 0) l->store.Commit();
    }
    l->store.Commit();
    return l;
  }();
  return loaded;
}

void BM_Insert(benchmark::State& state) {
  const int64_t n = state.range(0);
  for (auto _ : state) {
    state.PauseTiming();
    auto store = std::make_unique<MemNodeStore>();
    store->set_poison_allocations(false);
    BTree tree(KeyValueSpec(), store.get(), 0);
    base::Random rnd(1);
    uint8_t value[24] = {};
    state.ResumeTiming();
    for (int64_t i = 0; i < n; ++i) {
      Key k = RandomKey(&rnd);
      base::EncodeU64(value, i);
      Status s = tree.Insert(k, value);
      if (!s.ok()) {
        state.SkipWithError(s.ToString().c_str());
        break;
      }
      if (i % kTransaction == kTransaction - 1) store->Commit();
    }
    store->Commit();
    benchmark::DoNotOptimize(tree.root());
    state.PauseTiming();
    store.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_Insert)->Arg(kRecords)->Unit(benchmark::kMillisecond)->Iterations(3);

void BM_Get(benchmark::State& state) {
  Loaded* l = LoadKeyValueTree();
  base::Random rnd(1);
  int64_t i = 0;
  uint8_t value[24];
  for (auto _ : state) {
    if (i++ == kRecords) {  // start the sequence of inserted keys again
      rnd = base::Random(1);
      i = 1;
    }
    Result<bool> found = l->tree->Get(RandomKey(&rnd), value);
    benchmark::DoNotOptimize(found);
    benchmark::DoNotOptimize(value);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Get);

void BM_GetMissing(benchmark::State& state) {
  Loaded* l = LoadKeyValueTree();
  base::Random rnd(99);
  for (auto _ : state) {
    Result<bool> found = l->tree->Get(RandomKey(&rnd), nullptr);
    benchmark::DoNotOptimize(found);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_GetMissing);

void BM_Scan100(benchmark::State& state) {
  Loaded* l = LoadKeyValueTree();
  base::Random rnd(3);
  Cursor cursor(l->tree.get());
  uint64_t sum = 0;
  for (auto _ : state) {
    if (!cursor.SeekGE(RandomKey(&rnd)).ok()) std::abort();
    for (int n = 0; n < 100 && cursor.Valid(); ++n) {
      sum += cursor.value()[0];
      if (!cursor.Next().ok()) std::abort();
    }
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(state.iterations() * 100);
}
BENCHMARK(BM_Scan100);

// Queries of 64 units at random places, each finding a handful of records.
void BM_Overlaps(benchmark::State& state) {
  Loaded* l = LoadIntervalTree();
  base::Random rnd(4);
  int64_t found = 0;
  for (auto _ : state) {
    uint64_t start = rnd.Uniform(kIntervalSpace);
    Status s = l->tree->Overlaps(start, start + 64, [&](const Key&, std::span<const uint8_t>) {
      ++found;
      return true;
    });
    benchmark::DoNotOptimize(s);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["records_per_query"] =
      benchmark::Counter(double(found) / double(std::max<int64_t>(1, state.iterations())));
}
BENCHMARK(BM_Overlaps);

}  // namespace
}  // namespace daxfs::btree

BENCHMARK_MAIN();
