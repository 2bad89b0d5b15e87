#include "txn/pool.h"

#include <fmt/core.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <thread>

#include "base/coding.h"
#include "base/random.h"
#include "format/node.h"

namespace daxfs::txn {
namespace {

using btree::Key;

constexpr uint64_t kDeviceSize = 8 << 20;
constexpr uint64_t kChunk = 256 << 10;

std::array<uint8_t, 24> Value(uint64_t v) {
  std::array<uint8_t, 24> out{};
  base::EncodeU64(out.data(), v);
  base::EncodeU64(out.data() + 8, ~v);
  return out;
}

std::unique_ptr<Pool> MustFormat(device::Device* dev, uint64_t chunk = kChunk) {
  Result<std::unique_ptr<Pool>> p = Pool::Format(dev, {.chunk_size = chunk, .label = "t"});
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return p.ok() ? std::move(*p) : nullptr;
}

std::unique_ptr<Pool> MustOpen(device::Device* dev, OpenOptions options = {}) {
  Result<std::unique_ptr<Pool>> p = Pool::Open(dev, options);
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  if (!p.ok()) return nullptr;
  (*p)->RegisterTree(ScratchSpec());
  return std::move(*p);
}

void ExpectClean(Pool* pool) {
  pool->RegisterTree(ScratchSpec());
  CheckReport r = pool->Check();
  for (const auto& p : r.problems) ADD_FAILURE() << p;
}

Status PutRange(Pool* pool, uint64_t from, uint64_t to) {
  ASSIGN_OR_RETURN(auto txn, pool->BeginWrite());
  ASSIGN_OR_RETURN(btree::BTree * t, txn->Tree(ScratchSpec()));
  for (uint64_t i = from; i < to; ++i) {
    auto v = Value(i);
    ASSIGN_OR_RETURN(bool added, t->Put(Key{{i, i * 7}}, v));
    (void)added;
  }
  return txn->Commit();
}

std::map<uint64_t, uint64_t> ReadAll(Pool* pool) {
  std::map<uint64_t, uint64_t> out;
  auto view = pool->BeginRead();
  Result<btree::BTree> t = view->Tree(ScratchSpec());
  EXPECT_TRUE(t.ok());
  btree::Cursor c(&*t);
  for (Status s = c.SeekFirst(); c.Valid(); s = c.Next()) {
    EXPECT_TRUE(s.ok()) << s.ToString();
    out[c.key().w[0]] = base::DecodeU64(c.value().data());
  }
  return out;
}

TEST(PoolTest, FormatThenOpen) {
  auto dev = device::NewMemoryDevice(kDeviceSize);
  auto pool = MustFormat(dev.get());
  ASSERT_TRUE(pool);
  EXPECT_EQ(pool->superblock().generation, 1u);
  EXPECT_EQ(pool->superblock().chunk_count, kDeviceSize / kChunk);
  ExpectClean(pool.get());
  ASSERT_TRUE(pool->Close().ok());
  pool.reset();
  auto again = MustOpen(dev.get());
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->was_clean());
  EXPECT_EQ(again->superblock().Label(), "t");
  auto chunks = again->Chunks();
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0].first, 0u);
  EXPECT_EQ(chunks[0].second, format::ChunkType::kMetadata);
  ExpectClean(again.get());
}

TEST(PoolTest, CommittedRecordsSurviveRemount) {
  auto dev = device::NewMemoryDevice(kDeviceSize);
  auto pool = MustFormat(dev.get());
  ASSERT_TRUE(PutRange(pool.get(), 0, 5000).ok());
  ASSERT_TRUE(PutRange(pool.get(), 2500, 6000).ok());
  EXPECT_EQ(pool->superblock().tree(format::TreeId::kScratch).records, 6000u);
  ExpectClean(pool.get());
  pool.reset();  // no Close: an unclean unmount
  auto again = MustOpen(dev.get());
  EXPECT_FALSE(again->was_clean());
  auto all = ReadAll(again.get());
  ASSERT_EQ(all.size(), 6000u);
  for (auto& [k, v] : all) EXPECT_EQ(k, v);
  ExpectClean(again.get());
}

TEST(PoolTest, AbortLeavesNoTrace) {
  auto dev = device::NewMemoryDevice(kDeviceSize);
  auto pool = MustFormat(dev.get());
  ASSERT_TRUE(PutRange(pool.get(), 0, 100).ok());
  space::NodeCounts before = pool->Space().nodes;
  uint64_t gen = pool->superblock().generation;
  {
    auto txn = *pool->BeginWrite();
    btree::BTree* t = *txn->Tree(ScratchSpec());
    for (uint64_t i = 100; i < 3000; ++i) ASSERT_TRUE(t->Insert(Key{{i, i * 7}}, Value(i)).ok());
    ASSERT_TRUE(t->Delete(Key{{5, 35}}).ok());
    txn->Abort();
  }
  EXPECT_EQ(pool->superblock().generation, gen);
  EXPECT_EQ(ReadAll(pool.get()).size(), 100u);
  space::NodeCounts after = pool->Space().nodes;
  EXPECT_EQ(after.used, before.used);
  EXPECT_EQ(after.fresh, 0u);
  ExpectClean(pool.get());
}

// Group commit begins a write transaction on one thread and finishes it on another (a later
// request, or the commit thread); the writer gate must allow it, and a second writer waits for
// the first to finish, wherever it finishes.
TEST(PoolTest, WriteTxnMayFinishOnAnotherThread) {
  auto dev = device::NewMemoryDevice(kDeviceSize);
  auto pool = MustFormat(dev.get());
  pool->RegisterTree(ScratchSpec());
  std::unique_ptr<WriteTxn> first = *pool->BeginWrite();
  ASSERT_TRUE((*first->Tree(ScratchSpec()))->Put(Key{{1, 7}}, Value(1)).ok());
  std::atomic<bool> second_began{false};
  std::thread second([&] {
    auto txn = pool->BeginWrite();  // waits for the first
    ASSERT_TRUE(txn.ok());
    second_began = true;
    ASSERT_TRUE((*(*txn)->Tree(ScratchSpec()))->Put(Key{{2, 14}}, Value(2)).ok());
    ASSERT_TRUE((*txn)->Commit().ok());
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(second_began.load());  // the gate is held by the first transaction
  std::thread finisher([&] { ASSERT_TRUE(first->Commit().ok()); });  // not the thread that began
  finisher.join();
  second.join();
  EXPECT_TRUE(second_began.load());
  auto all = ReadAll(pool.get());
  EXPECT_EQ(all.size(), 2u);
  ExpectClean(pool.get());
}

TEST(PoolTest, ReaderKeepsItsSnapshotWhileWriterRecyclesNodes) {
  auto dev = device::NewMemoryDevice(kDeviceSize);
  auto pool = MustFormat(dev.get());
  ASSERT_TRUE(PutRange(pool.get(), 0, 2000).ok());
  auto reader = pool->BeginRead();
  auto before = ReadAll(pool.get());
  for (int round = 0; round < 20; ++round) {
    auto txn = *pool->BeginWrite();
    btree::BTree* t = *txn->Tree(ScratchSpec());
    for (uint64_t i = 0; i < 2000; i += 3) ASSERT_TRUE(t->Put(Key{{i, i * 7}}, Value(i + round + 1)).ok());
    ASSERT_TRUE(txn->Commit().ok());
  }
  // The old snapshot is intact: its nodes were deferred, not reused.
  Result<btree::BTree> t = reader->Tree(ScratchSpec());
  ASSERT_TRUE(t.ok());
  btree::Cursor c(&*t);
  size_t n = 0;
  for (Status s = c.SeekFirst(); c.Valid(); s = c.Next()) {
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(base::DecodeU64(c.value().data()), before[c.key().w[0]]);
    ++n;
  }
  EXPECT_EQ(n, 2000u);
  EXPECT_GT(pool->Space().nodes.deferred, 0u);
  reader.reset();
  ASSERT_TRUE(PutRange(pool.get(), 0, 1).ok());  // the next writer reclaims them
  EXPECT_EQ(pool->Space().nodes.deferred, pool->Space().nodes.deferred);
  ExpectClean(pool.get());
}

TEST(PoolTest, MetadataGrowsIntoNewChunks) {
  auto dev = device::NewMemoryDevice(kDeviceSize);
  auto pool = MustFormat(dev.get());
  for (uint64_t i = 0; i < 40000; i += 4000) ASSERT_TRUE(PutRange(pool.get(), i, i + 4000).ok());
  EXPECT_GT(pool->Space().metadata_chunks, 1u);
  ExpectClean(pool.get());
  pool.reset();
  auto again = MustOpen(dev.get());
  EXPECT_EQ(ReadAll(again.get()).size(), 40000u);
  ExpectClean(again.get());
}

TEST(PoolTest, FullDeviceFailsCleanly) {
  auto dev = device::NewMemoryDevice(1 << 20);
  auto pool = MustFormat(dev.get(), 256 << 10);
  uint64_t committed = 0;
  Status s;
  for (uint64_t i = 0; s.ok(); i += 500) {
    s = PutRange(pool.get(), i, i + 500);
    if (s.ok()) committed = i + 500;
  }
  EXPECT_EQ(s.code(), ENOSPC) << s.ToString();
  EXPECT_GT(committed, 0u);
  EXPECT_EQ(ReadAll(pool.get()).size(), committed);
  ExpectClean(pool.get());
  pool.reset();
  auto again = MustOpen(dev.get());
  EXPECT_EQ(ReadAll(again.get()).size(), committed);
  ExpectClean(again.get());
}

TEST(PoolTest, CorruptNodeIsReportedWithItsBlock) {
  auto dev = device::NewMemoryDevice(kDeviceSize);
  auto pool = MustFormat(dev.get());
  ASSERT_TRUE(PutRange(pool.get(), 0, 10).ok());
  uint64_t root = pool->superblock().tree(format::TreeId::kScratch).root;
  pool.reset();
  dev->At(root * format::kBlockSize)[200] ^= 0x40;
  Result<std::unique_ptr<Pool>> p = Pool::Open(dev.get());
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), EUCLEAN);
  EXPECT_NE(p.status().message().find(fmt::format("block {}", root)), std::string::npos)
      << p.status().message();
}

TEST(PoolTest, TornNewestSuperblockFallsBack) {
  auto dev = device::NewMemoryDevice(kDeviceSize);
  auto pool = MustFormat(dev.get());
  ASSERT_TRUE(PutRange(pool.get(), 0, 10).ok());   // generation 2
  ASSERT_TRUE(PutRange(pool.get(), 10, 20).ok());  // generation 3, slot 1
  pool.reset();
  dev->At(1 * format::kBlockSize)[300] ^= 1;
  auto again = MustOpen(dev.get());
  EXPECT_EQ(again->superblock().generation, 2u);
  EXPECT_EQ(ReadAll(again.get()).size(), 10u);
  ExpectClean(again.get());
}

TEST(PoolTest, RefusesWhatItCannotRead) {
  auto dev = device::NewMemoryDevice(kDeviceSize);
  ASSERT_TRUE(MustFormat(dev.get()));
  format::Superblock sb;
  {
    auto p = MustOpen(dev.get());
    sb = p->superblock();
  }
  auto rewrite = [&](format::Superblock s) {
    format::EncodeSuperblock(s, s.generation % 2, dev->At((s.generation % 2) * format::kBlockSize));
  };
  format::Superblock v = sb;
  v.version = 7;
  rewrite(v);
  Result<std::unique_ptr<Pool>> p = Pool::Open(dev.get());
  EXPECT_EQ(p.status().code(), EOPNOTSUPP);
  EXPECT_NE(p.status().message().find("version 7"), std::string::npos);
  v = sb;
  v.incompat = 1ULL << 9;
  rewrite(v);
  EXPECT_EQ(Pool::Open(dev.get()).status().code(), EOPNOTSUPP);
  v = sb;
  v.ro_compat = 1ULL << 20;
  rewrite(v);
  EXPECT_EQ(Pool::Open(dev.get()).status().code(), EROFS);
  EXPECT_TRUE(Pool::Open(dev.get(), {.read_only = true}).ok());
  rewrite(sb);
  std::string image(reinterpret_cast<char*>(dev->base()), kDeviceSize / 2);
  auto truncated = device::NewMemoryDevice(image);
  p = Pool::Open(truncated.get());
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("truncated"), std::string::npos) << p.status().message();
  auto zero = device::NewMemoryDevice(kDeviceSize);
  p = Pool::Open(zero.get());
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("not a daxfs image"), std::string::npos);
}

TEST(PoolTest, BadFormatInputChangesNothing) {
  auto dev = device::NewMemoryDevice(kDeviceSize);
  std::memset(dev->base(), 0x5a, kDeviceSize);
  auto unchanged = [&] {
    for (uint64_t i = 0; i < kDeviceSize; ++i) {
      if (dev->base()[i] != 0x5a) return false;
    }
    return true;
  };
  EXPECT_EQ(Pool::Format(dev.get(), {.chunk_size = 3 << 20}).status().code(), EINVAL);
  EXPECT_EQ(Pool::Format(dev.get(), {.chunk_size = 64 << 10}).status().code(), EINVAL);
  EXPECT_EQ(Pool::Format(dev.get(), {.label = std::string(40, 'x')}).status().code(), EINVAL);
  EXPECT_EQ(Pool::Format(dev.get(), {.incompat = 1}).status().code(), EOPNOTSUPP);
  EXPECT_TRUE(unchanged());
  auto small = device::NewMemoryDevice(512 << 10);
  EXPECT_EQ(Pool::Format(small.get(), {}).status().code(), EINVAL);
}

TEST(PoolTest, ReadOnlyPoolRefusesWrites) {
  auto dev = device::NewMemoryDevice(kDeviceSize);
  ASSERT_TRUE(MustFormat(dev.get()));
  auto p = MustOpen(dev.get(), {.read_only = true});
  EXPECT_EQ(p->BeginWrite().status().code(), EROFS);
}

TEST(PoolTest, WrongTreeShapeIsRefused) {
  auto dev = device::NewMemoryDevice(kDeviceSize);
  auto pool = MustFormat(dev.get());
  ASSERT_TRUE(PutRange(pool.get(), 0, 3).ok());
  auto txn = *pool->BeginWrite();
  btree::TreeSpec other = ScratchSpec();
  other.value_size = 8;
  EXPECT_EQ(txn->Tree(other).status().code(), EINVAL);
}

TEST(PoolTest, CheckFindsLeakedAndDoublyOwnedNodes) {
  auto dev = device::NewMemoryDevice(kDeviceSize);
  auto pool = MustFormat(dev.get());
  ASSERT_TRUE(PutRange(pool.get(), 0, 3000).ok());
  ExpectClean(pool.get());
  // Point the chunk table's root at the scratch tree's root: one node owned twice.
  format::Superblock sb = pool->superblock();
  pool.reset();
  sb.tree(format::TreeId::kChunks).root = sb.tree(format::TreeId::kScratch).root;
  sb.generation += 1;
  format::EncodeSuperblock(sb, sb.generation % 2, dev->At((sb.generation % 2) * format::kBlockSize));
  Result<std::unique_ptr<Pool>> p = Pool::Open(dev.get());
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), EUCLEAN);
}

}  // namespace
}  // namespace daxfs::txn
