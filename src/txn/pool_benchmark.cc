// Micro-benchmarks of pool commits with and without metadata twins (metadup): transactions of 1,
// 10 and 100 random overwrites in a 200,000-record scratch tree, durable at commit, on a memory
// device (the CPU cost: checksums and twin copies) and on a /dev/shm file made durable by msync
// (emulated pmem); and point lookups, which twins must not slow down. Knows the pool's interface
// only.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/coding.h"
#include "base/random.h"
#include "device/device.h"
#include "txn/pool.h"

namespace daxfs::txn {
namespace {

constexpr uint64_t kRecords = 200000;
constexpr uint64_t kDeviceSize = 256ULL << 20;

enum DeviceKind { kMemory = 0, kShmFile = 1 };

std::vector<std::string>& Files() {
  static std::vector<std::string> files;
  return files;
}
void RemoveFiles() {
  for (const std::string& f : Files()) ::unlink(f.c_str());
}

struct Loaded {
  std::unique_ptr<device::Device> device;
  std::unique_ptr<Pool> pool;
};

// One pool per (device kind, twins), filled once per process.
Loaded* Get(DeviceKind kind, bool dup) {
  static std::map<std::pair<int, bool>, std::unique_ptr<Loaded>> loaded;
  auto& slot = loaded[{kind, dup}];
  if (slot) return slot.get();
  slot = std::make_unique<Loaded>();
  if (kind == kMemory) {
    slot->device = device::NewMemoryDevice(kDeviceSize);
  } else {
    if (Files().empty()) std::atexit(RemoveFiles);
    std::string path =
        "/dev/shm/daxfs-pool-bench-" + std::to_string(::getpid()) + (dup ? "-dup" : "-plain");
    Files().push_back(path);
    if (!device::CreateDeviceFile(path, kDeviceSize, true).ok()) std::abort();
    Result<std::unique_ptr<device::Device>> dev = device::OpenDevice(path);
    if (!dev.ok()) std::abort();
    slot->device = std::move(*dev);
  }
  Result<std::unique_ptr<Pool>> pool = Pool::Format(slot->device.get(), {.metadata_dup = dup});
  if (!pool.ok()) std::abort();
  slot->pool = std::move(*pool);
  slot->pool->RegisterTree(ScratchSpec());
  std::array<uint8_t, 24> value{};
  for (uint64_t i = 0; i < kRecords;) {
    auto txn = *slot->pool->BeginWrite();
    btree::BTree* tree = *txn->Tree(ScratchSpec());
    for (uint64_t end = i + 10000; i < end; ++i) {
      base::EncodeU64(value.data(), i);
      if (!tree->Insert(btree::Key{{i * 2654435761ULL % kRecords, i}}, value).ok()) std::abort();
    }
    if (!txn->Commit().ok()) std::abort();
  }
  return slot.get();
}

// Args: device kind, twins (0/1), overwrites per transaction.
void BM_Commit(benchmark::State& state) {
  Loaded* l = Get(static_cast<DeviceKind>(state.range(0)), state.range(1) != 0);
  const int64_t ops = state.range(2);
  base::Random rnd(7);
  std::array<uint8_t, 24> value{};
  for (auto _ : state) {
    auto txn = *l->pool->BeginWrite();
    btree::BTree* tree = *txn->Tree(ScratchSpec());
    for (int64_t i = 0; i < ops; ++i) {
      uint64_t r = rnd.Uniform(kRecords);
      base::EncodeU64(value.data(), rnd.Next());
      // Keys were inserted as {i * 2654435761 % n, i}: overwrite record r of that sequence.
      if (!tree->Update(btree::Key{{r * 2654435761ULL % kRecords, r}}, value).ok()) std::abort();
    }
    if (!txn->Commit().ok()) std::abort();
  }
  state.SetItemsProcessed(state.iterations() * ops);
  state.counters["commits/s"] =
      benchmark::Counter(double(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Commit)
    ->ArgNames({"shm", "dup", "ops"})
    ->ArgsProduct({{kMemory, kShmFile}, {0, 1}, {1, 10, 100}})
    ->Unit(benchmark::kMicrosecond);

// Args: twins (0/1). Random point lookups in one read transaction (memory device).
void BM_Lookup(benchmark::State& state) {
  Loaded* l = Get(kMemory, state.range(0) != 0);
  auto view = l->pool->BeginRead();
  btree::BTree tree = *view->Tree(ScratchSpec());
  base::Random rnd(9);
  uint8_t value[24];
  for (auto _ : state) {
    uint64_t r = rnd.Uniform(kRecords);
    Result<bool> found = tree.Get(btree::Key{{r * 2654435761ULL % kRecords, r}}, value);
    benchmark::DoNotOptimize(found);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Lookup)->ArgNames({"dup"})->Arg(0)->Arg(1);

}  // namespace
}  // namespace daxfs::txn

BENCHMARK_MAIN();
