// Unit tests of metadata twins (metadup) in the pool: twins written with every commit, reads
// that fall back to a good twin and queue the node, relocation and retirement at the next
// commit, the superblock's twin slots, growth in pairs, ENOSPC, adding twins to an existing
// pool, Check of both copies and RebuildTwins.
#include <fmt/core.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

#include "base/coding.h"
#include "format/node.h"
#include "status_assert.h"
#include "txn/pool.h"

namespace daxfs::txn {
namespace {

using btree::Key;
using format::kBlockSize;

constexpr uint64_t kDeviceSize = 8 << 20;
constexpr uint64_t kChunk = 256 << 10;
constexpr uint64_t kChunkBlocks = kChunk / kBlockSize;

std::array<uint8_t, 24> Value(uint64_t v) {
  std::array<uint8_t, 24> out{};
  base::EncodeU64(out.data(), v);
  base::EncodeU64(out.data() + 8, ~v);
  return out;
}

std::unique_ptr<Pool> MustFormat(device::Device* dev, bool dup = true, uint64_t chunk = kChunk) {
  Result<std::unique_ptr<Pool>> p = Pool::Format(dev, {.chunk_size = chunk, .metadata_dup = dup});
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  if (!p.ok()) return nullptr;
  (*p)->RegisterTree(ScratchSpec());
  return std::move(*p);
}

std::unique_ptr<Pool> MustOpen(device::Device* dev, OpenOptions options = {}) {
  Result<std::unique_ptr<Pool>> p = Pool::Open(dev, options);
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  if (!p.ok()) return nullptr;
  (*p)->RegisterTree(ScratchSpec());
  return std::move(*p);
}

std::vector<std::string> Problems(Pool* pool) { return pool->Check().problems; }

void ExpectClean(Pool* pool) {
  CheckReport r = pool->Check();
  for (const auto& p : r.problems) ADD_FAILURE() << p;
  for (const auto& p : r.pending) ADD_FAILURE() << "pending: " << p;
}

Status PutRange(Pool* pool, uint64_t from, uint64_t to, uint64_t salt = 0) {
  ASSIGN_OR_RETURN(auto txn, pool->BeginWrite());
  ASSIGN_OR_RETURN(btree::BTree * t, txn->Tree(ScratchSpec()));
  for (uint64_t i = from; i < to; ++i) {
    ASSIGN_OR_RETURN(bool added, t->Put(Key{{i, i * 7}}, Value(i + salt)));
    (void)added;
  }
  return txn->Commit();
}

Status EmptyCommit(Pool* pool) {
  ASSIGN_OR_RETURN(auto txn, pool->BeginWrite());
  return txn->Commit();
}

Result<std::map<uint64_t, uint64_t>> ReadAll(Pool* pool) {
  std::map<uint64_t, uint64_t> out;
  auto view = pool->BeginRead();
  ASSIGN_OR_RETURN(btree::BTree t, view->Tree(ScratchSpec()));
  btree::Cursor c(&t);
  for (Status s = c.SeekFirst();; s = c.Next()) {
    RETURN_IF_ERROR(s);
    if (!c.Valid()) break;
    out[c.key().w[0]] = base::DecodeU64(c.value().data());
  }
  return out;
}

void ExpectRecords(Pool* pool, uint64_t count, uint64_t salt = 0) {
  Result<std::map<uint64_t, uint64_t>> all = ReadAll(pool);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), count);
  for (auto& [k, v] : *all) ASSERT_EQ(v, k + salt) << "key " << k;
}

// (block, level) of every node of a tree, pre-order.
std::vector<std::pair<uint64_t, int>> Nodes(Pool* pool, const btree::TreeSpec& spec) {
  std::vector<std::pair<uint64_t, int>> out;
  auto view = pool->BeginRead();
  Result<btree::BTree> t = view->Tree(spec);
  EXPECT_TRUE(t.ok());
  EXPECT_OK(t->VisitNodes([&](uint64_t b, int level) {
    out.emplace_back(b, level);
    return Status::Ok();
  }));
  return out;
}

uint64_t LeafOf(Pool* pool, int n = 3) {
  int seen = 0;
  for (auto [b, level] : Nodes(pool, ScratchSpec())) {
    if (level == 0 && seen++ == n) return b;
  }
  ADD_FAILURE() << "no leaf " << n;
  return 0;
}

void Flip(device::Device* dev, uint64_t block, size_t byte = 900) {
  dev->At(block * kBlockSize)[byte] ^= 0x10;
}

bool Contains(const std::string& s, const std::string& what) {
  return s.find(what) != std::string::npos;
}

TEST(TwinsTest, EveryCommittedNodeAndTheSuperblockHaveAnIdenticalTwin) {
  auto dev = device::NewMemoryDevice(kDeviceSize);
  auto pool = MustFormat(dev.get());
  ASSERT_TRUE(pool);
  EXPECT_TRUE(pool->metadata_dup());
  format::Superblock sb = pool->superblock();
  EXPECT_NE(sb.ro_compat & format::feature::kRoCompatMetadup, 0u);
  ASSERT_EQ(sb.twins().size(), 1u);
  EXPECT_EQ(sb.twins()[0], (format::TwinPair{0, 1}));
  ASSERT_OK(PutRange(pool.get(), 0, 3000));
  std::set<uint64_t> twin_chunks;
  for (auto& [c, type] : pool->Chunks()) {
    if (type == format::ChunkType::kMetadataTwin) twin_chunks.insert(c);
  }
  for (const btree::TreeSpec& spec : {ScratchSpec(), ChunkTableSpec()}) {
    for (auto [b, level] : Nodes(pool.get(), spec)) {
      uint64_t twin = pool->TwinBlock(b);
      ASSERT_NE(twin, 0u);
      EXPECT_TRUE(twin_chunks.count(twin / kChunkBlocks)) << "twin of " << b << " at " << twin;
      EXPECT_EQ(twin % kChunkBlocks, b % kChunkBlocks);
      EXPECT_EQ(std::memcmp(dev->At(b * kBlockSize), dev->At(twin * kBlockSize), kBlockSize), 0)
          << "node " << b;
    }
  }
  int slot = pool->superblock_slot();
  uint64_t sb_twin = pool->TwinBlock(slot);
  EXPECT_EQ(sb_twin, kChunkBlocks + slot);
  EXPECT_EQ(std::memcmp(dev->At(slot * kBlockSize), dev->At(sb_twin * kBlockSize), kBlockSize), 0);
  CheckReport report = pool->Check();
  EXPECT_TRUE(report.ok());
  EXPECT_EQ(report.twins_checked, report.nodes_checked);
  EXPECT_GT(report.twins_checked, 10u);
  SpaceInfo space = pool->Space();
  EXPECT_EQ(space.metadata_chunks, space.metadata_twin_chunks);
  pool.reset();
  auto again = MustOpen(dev.get());
  EXPECT_TRUE(again->metadata_dup());
  ExpectRecords(again.get(), 3000);
  ExpectClean(again.get());
}

TEST(TwinsTest, WithoutMetadupTheFormatIsAsBefore) {
  auto dev = device::NewMemoryDevice(kDeviceSize);
  auto pool = MustFormat(dev.get(), /*dup=*/false);
  ASSERT_OK(PutRange(pool.get(), 0, 3000));
  EXPECT_FALSE(pool->metadata_dup());
  for (auto& [c, type] : pool->Chunks()) EXPECT_EQ(type, format::ChunkType::kMetadata);
  for (int slot = 0; slot < 2; ++slot) {
    for (size_t i = 640; i < kBlockSize; ++i) ASSERT_EQ(dev->At(slot * kBlockSize)[i], 0) << i;
  }
  EXPECT_EQ(pool->TwinBlock(LeafOf(pool.get())), 0u);
  // A corrupt node is an error, as always.
  uint64_t leaf = LeafOf(pool.get());
  pool.reset();
  Flip(dev.get(), leaf);
  Result<std::unique_ptr<Pool>> p = Pool::Open(dev.get());
  EXPECT_EQ(p.status().code(), EUCLEAN);
}

TEST(TwinsTest, CorruptPrimaryReadsTheTwinAndTheNextCommitMovesIt) {
  auto dev = device::NewMemoryDevice(kDeviceSize);
  auto pool = MustFormat(dev.get());
  ASSERT_OK(PutRange(pool.get(), 0, 3000));
  uint64_t leaf = LeafOf(pool.get());
  uint64_t twin = pool->TwinBlock(leaf);
  pool.reset();
  Flip(dev.get(), leaf);
  pool = MustOpen(dev.get());  // the walk verifies every node: the leaf reads from its twin
  ASSERT_TRUE(pool);
  EXPECT_FALSE(pool->read_only());
  EXPECT_EQ(pool->PendingRepairs(), 1u);
  ExpectRecords(pool.get(), 3000);
  std::vector<std::string> problems = Problems(pool.get());
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_TRUE(Contains(problems[0], fmt::format("block {}: primary copy is bad", leaf)))
      << problems[0];
  EXPECT_TRUE(Contains(problems[0], fmt::format("twin at block {} is good", twin))) << problems[0];

  ASSERT_OK(EmptyCommit(pool.get()));
  EXPECT_EQ(pool->PendingRepairs(), 0u);
  std::vector<RepairEvent> events = pool->TakeRepairEvents();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, RepairEvent::kRelocated);
  EXPECT_EQ(events[0].block, leaf);
  EXPECT_EQ(events[0].twin_block, twin);
  EXPECT_TRUE(events[0].primary_bad);
  EXPECT_FALSE(events[0].twin_bad);
  EXPECT_EQ(events[0].tree, static_cast<uint16_t>(format::TreeId::kScratch));
  EXPECT_EQ(events[0].level, 0);
  EXPECT_NE(events[0].new_block, leaf);
  EXPECT_EQ(events[0].generation, pool->superblock().generation);
  EXPECT_TRUE(Contains(events[0].reason, "checksum mismatch")) << events[0].reason;
  ExpectClean(pool.get());
  ExpectRecords(pool.get(), 3000);
  // The bad slot is never handed out again: not by later commits of this mount...
  ASSERT_OK(PutRange(pool.get(), 3000, 3001));  // frees the leaf's old slot (no reader holds it)
  EXPECT_EQ(pool->RetiredNodes(), std::vector<uint64_t>{leaf});
  for (uint64_t i = 0; i < 20; ++i) ASSERT_OK(PutRange(pool.get(), 0, 3000, i + 1));
  for (const btree::TreeSpec& spec : {ScratchSpec(), ChunkTableSpec()}) {
    for (auto [b, level] : Nodes(pool.get(), spec)) ASSERT_NE(b, leaf);
  }
  // ... nor after a remount, once the filesystem hands the list back.
  std::vector<uint64_t> retired = pool->RetiredNodes();
  pool.reset();
  pool = MustOpen(dev.get());
  EXPECT_EQ(pool->PendingRepairs(), 0u);
  ASSERT_OK(pool->RetireNodes(retired));
  EXPECT_EQ(pool->RetiredNodes(), retired);
  ExpectClean(pool.get());
  for (uint64_t i = 0; i < 20; ++i) ASSERT_OK(PutRange(pool.get(), 0, 3000, i + 100));
  for (auto [b, level] : Nodes(pool.get(), ScratchSpec())) ASSERT_NE(b, leaf);
  Result<std::map<uint64_t, uint64_t>> all = ReadAll(pool.get());
  ASSERT_OK(all);
  ASSERT_EQ(all->size(), 3001u);
  EXPECT_EQ(all->at(2999), 2999u + 119);
  EXPECT_EQ(all->at(3000), 3000u);
  ExpectClean(pool.get());
}

TEST(TwinsTest, PoisonedPrimaryIsReadAroundAndRetiredAtEveryMount) {
  auto dev = device::NewMemoryDevice(kDeviceSize);
  auto pool = MustFormat(dev.get());
  ASSERT_OK(PutRange(pool.get(), 0, 3000));
  uint64_t leaf = LeafOf(pool.get(), 5);
  pool.reset();
  ASSERT_OK(dev->InjectPoison(leaf * kBlockSize + 100, 8));
  pool = MustOpen(dev.get());
  ASSERT_TRUE(pool);
  EXPECT_FALSE(pool->read_only()) << "a node with a good twin must not stop writes";
  EXPECT_EQ(pool->MetadataDamage().size(), 1u);
  ExpectRecords(pool.get(), 3000);
  // A transaction that rewrites every record copies the leaf (from its twin) itself: the commit
  // then only retires the old slot.
  ASSERT_OK(PutRange(pool.get(), 0, 3000, 5));
  std::vector<RepairEvent> events = pool->TakeRepairEvents();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, RepairEvent::kRetired);
  EXPECT_EQ(events[0].block, leaf);
  EXPECT_TRUE(Contains(events[0].reason, "bad media")) << events[0].reason;
  ExpectRecords(pool.get(), 3000, 5);
  ExpectClean(pool.get());
  // After a remount the slot is retired again without being told: it is on bad media.
  pool.reset();
  pool = MustOpen(dev.get());
  ASSERT_OK(EmptyCommit(pool.get()));
  EXPECT_EQ(pool->RetiredNodes(), std::vector<uint64_t>{leaf});
  EXPECT_TRUE(pool->TakeRepairEvents().size() == 1);  // the retirement of the free slot
  for (uint64_t i = 0; i < 10; ++i) ASSERT_OK(PutRange(pool.get(), 0, 3000, i));
  for (auto [b, level] : Nodes(pool.get(), ScratchSpec())) ASSERT_NE(b, leaf);
  ExpectClean(pool.get());
}

TEST(TwinsTest, PoisonedTwinMovesThePair) {
  auto dev = device::NewMemoryDevice(kDeviceSize);
  auto pool = MustFormat(dev.get());
  ASSERT_OK(PutRange(pool.get(), 0, 3000));
  uint64_t leaf = LeafOf(pool.get(), 2);
  uint64_t twin = pool->TwinBlock(leaf);
  pool.reset();
  ASSERT_OK(dev->InjectPoison(twin * kBlockSize, kBlockSize));
  pool = MustOpen(dev.get());
  // A bad byte in a twin chunk is metadata by address.
  EXPECT_EQ(pool->MetadataDamage(),
            (std::vector<device::BadRange>{{twin * kBlockSize, kBlockSize}}));
  EXPECT_TRUE(pool->IsMetadataChunk(twin / kChunkBlocks));
  EXPECT_FALSE(pool->read_only());
  EXPECT_EQ(pool->PendingRepairs(), 1u);
  std::vector<std::string> problems = Problems(pool.get());
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_TRUE(Contains(problems[0], fmt::format("block {}: twin at block {} is bad", leaf, twin)))
      << problems[0];
  ASSERT_OK(EmptyCommit(pool.get()));
  std::vector<RepairEvent> events = pool->TakeRepairEvents();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].block, leaf);
  EXPECT_TRUE(events[0].twin_bad);
  EXPECT_FALSE(events[0].primary_bad);
  EXPECT_NE(events[0].new_block, leaf);
  ExpectClean(pool.get());
  ExpectRecords(pool.get(), 3000);
}

TEST(TwinsTest, BothCopiesBadIsAnErrorNamingBoth) {
  auto dev = device::NewMemoryDevice(kDeviceSize);
  auto pool = MustFormat(dev.get());
  ASSERT_OK(PutRange(pool.get(), 0, 3000));
  uint64_t leaf = LeafOf(pool.get(), 4);
  uint64_t twin = pool->TwinBlock(leaf);
  pool.reset();
  Flip(dev.get(), leaf);
  Flip(dev.get(), twin, 2000);
  Result<std::unique_ptr<Pool>> p = Pool::Open(dev.get());
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), EUCLEAN);
  EXPECT_TRUE(Contains(p.status().message(), fmt::format("primary (block {})", leaf)))
      << p.status().message();
  EXPECT_TRUE(Contains(p.status().message(), fmt::format("twin (block {})", twin)))
      << p.status().message();
  // On bad media: the mount is read-only and the read fails with EIO naming both.
  auto dev2 = device::NewMemoryDevice(kDeviceSize);
  pool = MustFormat(dev2.get());
  ASSERT_OK(PutRange(pool.get(), 0, 3000));
  leaf = LeafOf(pool.get(), 4);
  twin = pool->TwinBlock(leaf);
  pool.reset();
  ASSERT_OK(dev2->InjectPoison(leaf * kBlockSize, 64));
  ASSERT_OK(dev2->InjectPoison(twin * kBlockSize + 64, 64));
  pool = MustOpen(dev2.get());
  ASSERT_TRUE(pool);
  EXPECT_TRUE(pool->read_only());
  Result<std::map<uint64_t, uint64_t>> all = ReadAll(pool.get());
  ASSERT_FALSE(all.ok());
  EXPECT_EQ(all.status().code(), EIO);
  EXPECT_TRUE(
      Contains(all.status().message(), fmt::format("metadata node {}: both copies are bad", leaf)))
      << all.status().message();
  EXPECT_TRUE(Contains(all.status().message(), fmt::format("twin (block {})", twin)));
}

TEST(TwinsTest, ReadsAfterMountFallBackToo) {
  auto dev = device::NewMemoryDevice(kDeviceSize);
  auto pool = MustFormat(dev.get());
  ASSERT_OK(PutRange(pool.get(), 0, 3000));
  pool.reset();
  pool = MustOpen(dev.get(), {.verify_every_read = true});
  uint64_t leaf = LeafOf(pool.get(), 7);
  Flip(dev.get(), leaf);  // after the mount verified it
  EXPECT_EQ(pool->PendingRepairs(), 0u);
  ExpectRecords(pool.get(), 3000);
  EXPECT_EQ(pool->PendingRepairs(), 1u);
  ExpectRecords(pool.get(), 3000);  // a second read goes straight to the twin
  ASSERT_OK(EmptyCommit(pool.get()));
  EXPECT_EQ(pool->PendingRepairs(), 0u);
  ExpectClean(pool.get());
  // A poisoned node is found on every read, verified or not.
  pool.reset();
  pool = MustOpen(dev.get());
  leaf = LeafOf(pool.get(), 9);
  ASSERT_OK(dev->InjectPoison(leaf * kBlockSize, 8));
  ExpectRecords(pool.get(), 3000);
  EXPECT_EQ(pool->PendingRepairs(), 1u);
  ASSERT_OK(EmptyCommit(pool.get()));
  ExpectClean(pool.get());
}

TEST(TwinsTest, AReaderOfAnOldSnapshotKeepsReadingTheTwin) {
  auto dev = device::NewMemoryDevice(kDeviceSize);
  auto pool = MustFormat(dev.get());
  ASSERT_OK(PutRange(pool.get(), 0, 3000));
  pool.reset();
  pool = MustOpen(dev.get());
  uint64_t leaf = LeafOf(pool.get(), 1);
  auto reader = pool->BeginRead();  // holds the root that reaches the leaf
  ASSERT_OK(dev->InjectPoison(leaf * kBlockSize, 8));
  ExpectRecords(pool.get(), 3000);
  ASSERT_OK(EmptyCommit(pool.get()));  // relocated; the old slot is deferred, not yet retired
  Result<btree::BTree> t = reader->Tree(ScratchSpec());
  ASSERT_OK(t);
  btree::Cursor c(&*t);
  size_t n = 0;
  for (Status s = c.SeekFirst(); c.Valid(); s = c.Next()) {
    ASSERT_OK(s);
    ++n;
  }
  EXPECT_EQ(n, 3000u);
  reader.reset();
  ASSERT_OK(EmptyCommit(pool.get()));
  EXPECT_EQ(pool->RetiredNodes(), std::vector<uint64_t>{leaf});
  ExpectClean(pool.get());
}

TEST(TwinsTest, ChunkTableNodesHaveTwinsToo) {
  auto dev = device::NewMemoryDevice(kDeviceSize);
  auto pool = MustFormat(dev.get());
  ASSERT_OK(PutRange(pool.get(), 0, 20000));  // several metadata chunks
  uint64_t root = pool->superblock().tree(format::TreeId::kChunks).root;
  pool.reset();
  Flip(dev.get(), root);
  pool = MustOpen(dev.get());
  ASSERT_TRUE(pool);
  ExpectRecords(pool.get(), 20000);
  ASSERT_OK(EmptyCommit(pool.get()));
  EXPECT_NE(pool->superblock().tree(format::TreeId::kChunks).root, root);
  ExpectClean(pool.get());
  pool.reset();
  pool = MustOpen(dev.get());
  ExpectClean(pool.get());
}

TEST(TwinsTest, ABadSuperblockSlotIsReadFromItsTwin) {
  auto dev = device::NewMemoryDevice(kDeviceSize);
  auto pool = MustFormat(dev.get());
  ASSERT_OK(PutRange(pool.get(), 0, 100));
  ASSERT_OK(PutRange(pool.get(), 100, 200));
  uint64_t generation = pool->superblock().generation;
  int slot = pool->superblock_slot();
  pool.reset();
  Flip(dev.get(), slot, 300);  // the newest primary slot
  pool = MustOpen(dev.get());
  ASSERT_TRUE(pool);
  EXPECT_EQ(pool->superblock().generation, generation) << "the twin of the newest slot wins";
  ExpectRecords(pool.get(), 200);
  CheckReport report = pool->Check();
  EXPECT_TRUE(report.ok());
  ASSERT_EQ(report.pending.size(), 1u);
  EXPECT_TRUE(
      Contains(report.pending[0], fmt::format("superblock slot {}: the primary copy", slot)))
      << report.pending[0];
  ASSERT_OK(EmptyCommit(pool.get()));  // rewrites the bad copy
  ExpectClean(pool.get());
  pool.reset();
  pool = MustOpen(dev.get());
  ExpectClean(pool.get());
  EXPECT_EQ(pool->superblock().generation, generation + 1);
}

TEST(TwinsTest, BothPrimarySlotsLostFindsTheTwinByScanning) {
  for (bool poison : {false, true}) {
    SCOPED_TRACE(poison ? "poisoned" : "zeroed");
    auto dev = device::NewMemoryDevice(kDeviceSize);
    auto pool = MustFormat(dev.get());
    ASSERT_OK(PutRange(pool.get(), 0, 500));
    uint64_t generation = pool->superblock().generation;
    pool.reset();
    if (poison) {
      ASSERT_OK(dev->InjectPoison(0, 2 * kBlockSize));
    } else {
      std::memset(dev->At(0), 0, 2 * kBlockSize);
    }
    pool = MustOpen(dev.get());
    ASSERT_TRUE(pool);
    EXPECT_EQ(pool->superblock().generation, generation);
    ExpectRecords(pool.get(), 500);
    if (!poison) {
      ASSERT_OK(PutRange(pool.get(), 500, 600));
      ExpectClean(pool.get());
    }
  }
}

TEST(TwinsTest, ScanFindsATwinFarFromTheStart) {
  auto dev = device::NewMemoryDevice(kDeviceSize);
  // Chunks 1..11 bad before mkfs: chunk 0's twin is chunk 12, past the first places looked at.
  ASSERT_OK(dev->InjectPoison(kChunk, 11 * kChunk));
  auto pool = MustFormat(dev.get());
  EXPECT_EQ(pool->TwinBlock(0), 12 * kChunkBlocks);
  ASSERT_OK(PutRange(pool.get(), 0, 500));
  pool.reset();
  ASSERT_OK(dev->InjectPoison(0, kBlockSize));
  ASSERT_OK(dev->InjectPoison(kBlockSize, kBlockSize));
  pool = MustOpen(dev.get());
  ASSERT_TRUE(pool);
  ExpectRecords(pool.get(), 500);
}

TEST(TwinsTest, FormatClearsTwinSuperblocksOfAnOlderImage) {
  auto dev = device::NewMemoryDevice(kDeviceSize);
  ASSERT_TRUE(MustFormat(dev.get()));
  ASSERT_TRUE(MustFormat(dev.get(), /*dup=*/false));
  std::memset(dev->At(0), 0, 2 * kBlockSize);
  Result<std::unique_ptr<Pool>> p = Pool::Open(dev.get());
  ASSERT_FALSE(p.ok()) << "the older image's twin superblock was found";
  EXPECT_TRUE(Contains(p.status().message(), "not a daxfs image")) << p.status().message();
}

TEST(TwinsTest, MetadataGrowsTwoChunksAtATime) {
  auto dev = device::NewMemoryDevice(kDeviceSize);
  auto pool = MustFormat(dev.get());
  for (uint64_t i = 0; i < 40000; i += 4000) ASSERT_OK(PutRange(pool.get(), i, i + 4000));
  SpaceInfo space = pool->Space();
  EXPECT_GT(space.metadata_chunks, 2u);
  EXPECT_EQ(space.metadata_chunks, space.metadata_twin_chunks);
  format::Superblock sb = pool->superblock();
  EXPECT_EQ(sb.twins().size(), space.metadata_chunks);
  std::map<uint64_t, format::ChunkType> types;
  for (auto& [c, type] : pool->Chunks()) types[c] = type;
  for (const format::TwinPair& pair : sb.twins()) {
    EXPECT_EQ(types[pair.primary], format::ChunkType::kMetadata);
    EXPECT_EQ(types[pair.twin], format::ChunkType::kMetadataTwin);
    EXPECT_TRUE(pool->IsMetadataChunk(pair.twin));
  }
  ExpectClean(pool.get());
  pool.reset();
  pool = MustOpen(dev.get());
  ExpectRecords(pool.get(), 40000);
  ExpectClean(pool.get());
}

TEST(TwinsTest, NoTwinForANewChunkIsENOSPCAndChangesNothing) {
  // 1 MiB, 256 KiB chunks: chunk 0 and its twin, then one free chunk: a pair cannot be typed.
  auto dev = device::NewMemoryDevice(1 << 20);
  auto pool = MustFormat(dev.get());
  {
    auto txn = *pool->BeginWrite();
    ASSERT_OK(txn->AllocateChunk(format::ChunkType::kData));
    ASSERT_OK(txn->Commit());
  }
  auto chunks = pool->Chunks();
  ASSERT_EQ(chunks.size(), 3u);
  uint64_t committed = 0;
  Status s;
  for (uint64_t i = 0; s.ok(); i += 200) {
    s = PutRange(pool.get(), i, i + 200);
    if (s.ok()) committed = i + 200;
  }
  EXPECT_EQ(s.code(), ENOSPC) << s.ToString();
  EXPECT_GT(committed, 0u);
  EXPECT_EQ(pool->Chunks(), chunks) << "the last free chunk stays free: it has no twin";
  {
    auto txn = *pool->BeginWrite();
    Result<uint64_t> c = txn->AllocateChunk(format::ChunkType::kMetadata);
    EXPECT_EQ(c.status().code(), ENOSPC);
    EXPECT_TRUE(Contains(c.status().message(), "twin")) << c.status().message();
    EXPECT_EQ(txn->AllocateChunk(format::ChunkType::kMetadataTwin).status().code(), EINVAL);
    EXPECT_OK(txn->status());
    ASSERT_OK(txn->Commit());
  }
  EXPECT_EQ(pool->Chunks(), chunks);
  ExpectRecords(pool.get(), committed);
  ExpectClean(pool.get());
  pool.reset();
  pool = MustOpen(dev.get());
  ExpectRecords(pool.get(), committed);
  ExpectClean(pool.get());
}

TEST(TwinsTest, FormatNeedsRoomForChunkZerosTwin) {
  // Chunks 1-3 bad and chunk 4 shorter than chunk 0: no chunk can be chunk 0's twin.
  auto dev = device::NewMemoryDevice((1 << 20) + (128 << 10));
  ASSERT_OK(dev->InjectPoison(kChunk, 3 * kChunk));
  std::memset(dev->base(), 0x5a, 4096);
  Result<std::unique_ptr<Pool>> p =
      Pool::Format(dev.get(), {.chunk_size = kChunk, .metadata_dup = true});
  EXPECT_EQ(p.status().code(), ENOSPC) << p.status().ToString();
  EXPECT_EQ(dev->base()[0], 0x5a) << "a refused format changed the device";
  // Without twins the same device formats.
  EXPECT_OK(Pool::Format(dev.get(), {.chunk_size = kChunk}));
}

TEST(TwinsTest, EnableMetadataDupOnAnExistingPool) {
  auto dev = device::NewMemoryDevice(kDeviceSize);
  auto pool = MustFormat(dev.get(), /*dup=*/false);
  ASSERT_OK(PutRange(pool.get(), 0, 20000));
  uint64_t metadata_chunks = pool->Space().metadata_chunks;
  ASSERT_GT(metadata_chunks, 1u);
  ASSERT_OK(pool->EnableMetadataDup());
  EXPECT_TRUE(pool->metadata_dup());
  EXPECT_EQ(pool->EnableMetadataDup().code(), EEXIST);
  SpaceInfo space = pool->Space();
  EXPECT_EQ(space.metadata_twin_chunks, space.metadata_chunks);
  EXPECT_GE(space.metadata_chunks, metadata_chunks);
  ExpectClean(pool.get());
  ExpectRecords(pool.get(), 20000);
  pool.reset();
  pool = MustOpen(dev.get());
  EXPECT_TRUE(pool->metadata_dup());
  ExpectClean(pool.get());
  // The twins hold what they should: a corrupt primary reads from its twin.
  uint64_t leaf = LeafOf(pool.get(), 11);
  pool.reset();
  Flip(dev.get(), leaf);
  pool = MustOpen(dev.get());
  ExpectRecords(pool.get(), 20000);
  ASSERT_OK(EmptyCommit(pool.get()));
  ExpectClean(pool.get());
}

TEST(TwinsTest, EnableMetadataDupWithoutRoomChangesNothing) {
  auto dev = device::NewMemoryDevice(2 << 20);  // 8 chunks
  auto pool = MustFormat(dev.get(), /*dup=*/false);
  ASSERT_OK(PutRange(pool.get(), 0, 4000));
  {
    auto txn = *pool->BeginWrite();
    while (txn->AllocateChunk(format::ChunkType::kData).ok()) {
    }
    ASSERT_OK(txn->Commit());
  }
  format::Superblock before = pool->superblock();
  auto chunks = pool->Chunks();
  Status s = pool->EnableMetadataDup();
  EXPECT_EQ(s.code(), ENOSPC) << s.ToString();
  EXPECT_FALSE(pool->metadata_dup());
  EXPECT_EQ(pool->Chunks(), chunks);
  EXPECT_EQ(pool->superblock().generation, before.generation);
  ExpectClean(pool.get());
  ExpectRecords(pool.get(), 4000);
}

TEST(TwinsTest, CheckFindsBadAndDifferingTwinsAndRebuildFixesThem) {
  auto dev = device::NewMemoryDevice(kDeviceSize);
  auto pool = MustFormat(dev.get());
  ASSERT_OK(PutRange(pool.get(), 0, 5000));
  uint64_t a = LeafOf(pool.get(), 1), b = LeafOf(pool.get(), 2), c = LeafOf(pool.get(), 3);
  uint64_t ta = pool->TwinBlock(a), tb = pool->TwinBlock(b), tc = pool->TwinBlock(c);
  Flip(dev.get(), ta);                                   // a bad twin
  std::memset(dev->At(tb * kBlockSize), 0, kBlockSize);  // a missing twin
  ASSERT_OK(dev->InjectPoison(tc * kBlockSize, 8));      // a twin on bad media
  int slot = pool->superblock_slot();
  Flip(dev.get(), pool->TwinBlock(slot), 200);  // the superblock's twin
  std::vector<std::string> problems = Problems(pool.get());
  ASSERT_EQ(problems.size(), 4u);
  std::string all;
  for (auto& p : problems) all += p + "\n";
  EXPECT_TRUE(Contains(all, fmt::format("block {}: twin at block {} is bad", a, ta))) << all;
  EXPECT_TRUE(Contains(
      all, fmt::format("block {}: twin at block {} is bad: block {}: bad magic", b, tb, b)))
      << all;
  EXPECT_TRUE(
      Contains(all, fmt::format("twin at block {} is bad: block {} (device offset", tc, tc)))
      << all;
  EXPECT_TRUE(Contains(all, fmt::format("superblock slot {}: the twin copy", slot))) << all;

  Result<TwinRebuildReport> rebuilt = pool->RebuildTwins();
  ASSERT_OK(rebuilt);
  EXPECT_EQ(rebuilt->rewritten.size(), 2u);
  EXPECT_EQ(rebuilt->relocated.size(), 1u);
  EXPECT_TRUE(rebuilt->lost.empty());
  EXPECT_TRUE(rebuilt->superblock_rewritten);
  EXPECT_GT(rebuilt->nodes_checked, 10u);
  ExpectClean(pool.get());
  ExpectRecords(pool.get(), 5000);
  pool.reset();
  pool = MustOpen(dev.get());
  ExpectClean(pool.get());
  // Without twins there is nothing to rebuild.
  auto plain = device::NewMemoryDevice(kDeviceSize);
  auto p2 = MustFormat(plain.get(), false);
  EXPECT_EQ(p2->RebuildTwins().status().code(), EINVAL);
}

TEST(TwinsTest, NoteMetadataFailureQueuesWhatHasATwin) {
  auto dev = device::NewMemoryDevice(kDeviceSize);
  auto pool = MustFormat(dev.get());
  ASSERT_OK(PutRange(pool.get(), 0, 3000));
  uint64_t leaf = LeafOf(pool.get(), 6);
  // A whole free-and-used stretch of chunk 0 goes bad at runtime.
  uint64_t free_slot = 0;
  for (uint64_t b = format::kFirstNodeBlock; b < kChunkBlocks; ++b) {
    bool used = false;
    for (const btree::TreeSpec& spec : {ScratchSpec(), ChunkTableSpec()}) {
      for (auto [n, level] : Nodes(pool.get(), spec)) used |= n == b;
    }
    if (!used) {
      free_slot = b;
      break;
    }
  }
  ASSERT_NE(free_slot, 0u);
  for (uint64_t b : {leaf, free_slot}) {
    ASSERT_OK(dev->InjectPoison(b * kBlockSize, kBlockSize));
    MetadataFailure hit = pool->NoteMetadataFailure(b * kBlockSize, kBlockSize);
    EXPECT_TRUE(hit.repairable());
    if (b == leaf) {
      EXPECT_EQ(hit.nodes, std::vector<uint64_t>{leaf});
    } else {
      EXPECT_EQ(hit.free_slots, std::vector<uint64_t>{free_slot});
    }
  }
  ExpectRecords(pool.get(), 3000);
  ASSERT_OK(PutRange(pool.get(), 0, 3000, 1));
  std::vector<uint64_t> retired = pool->RetiredNodes();
  EXPECT_TRUE(std::count(retired.begin(), retired.end(), free_slot));
  ExpectClean(pool.get());
  // The superblock's twin slot and a node whose twin is already bad.
  uint64_t leaf2 = LeafOf(pool.get(), 8);
  ASSERT_OK(dev->InjectPoison(pool->TwinBlock(leaf2) * kBlockSize, 8));
  ASSERT_OK(dev->InjectPoison(leaf2 * kBlockSize, 8));
  MetadataFailure lost = pool->NoteMetadataFailure(leaf2 * kBlockSize, 8);
  EXPECT_FALSE(lost.repairable());
  ASSERT_EQ(lost.lost.size(), 1u);
  EXPECT_TRUE(Contains(lost.lost[0], fmt::format("metadata node {}: both copies", leaf2)))
      << lost.lost[0];
  MetadataFailure sb = pool->NoteMetadataFailure(pool->TwinBlock(0) * kBlockSize, kBlockSize);
  EXPECT_TRUE(sb.repairable());
  EXPECT_EQ(sb.superblock_copies, std::vector<uint64_t>{pool->TwinBlock(0)});
  // Without twins every node hit is lost.
  auto plain = device::NewMemoryDevice(kDeviceSize);
  auto p2 = MustFormat(plain.get(), false);
  ASSERT_OK(PutRange(p2.get(), 0, 3000));
  MetadataFailure none = p2->NoteMetadataFailure(LeafOf(p2.get()) * kBlockSize, 8);
  EXPECT_FALSE(none.repairable());
  EXPECT_TRUE(Contains(none.lost[0], "has no second copy"));
}

TEST(TwinsTest, AnAbortedRepairIsQueuedAgain) {
  auto dev = device::NewMemoryDevice(kDeviceSize);
  auto pool = MustFormat(dev.get());
  ASSERT_OK(PutRange(pool.get(), 0, 3000));
  uint64_t leaf = LeafOf(pool.get(), 3);
  pool.reset();
  Flip(dev.get(), leaf);
  pool = MustOpen(dev.get());
  {
    auto txn = *pool->BeginWrite();
    ASSERT_OK(txn->Repair());
    ASSERT_EQ(txn->repairs().size(), 1u);
    EXPECT_EQ(txn->repairs()[0].kind, RepairEvent::kRelocated);
    EXPECT_EQ(pool->PendingRepairs(), 0u);
    txn->Abort();
  }
  EXPECT_EQ(pool->PendingRepairs(), 1u);
  EXPECT_TRUE(pool->TakeRepairEvents().empty());
  ExpectRecords(pool.get(), 3000);
  ASSERT_OK(EmptyCommit(pool.get()));
  EXPECT_EQ(pool->TakeRepairEvents().size(), 1u);
  ExpectClean(pool.get());
}

TEST(TwinsTest, RetireNodesRefusesWhatIsNotANodeSlot) {
  auto dev = device::NewMemoryDevice(kDeviceSize);
  auto pool = MustFormat(dev.get());
  EXPECT_EQ(pool->RetireNodes({5, 0}).code(), EINVAL);
  EXPECT_EQ(pool->RetireNodes({kChunkBlocks + 3}).code(), EINVAL);  // in the twin chunk
  EXPECT_TRUE(pool->RetiredNodes().empty());
  ASSERT_OK(pool->RetireNodes({5}));
  EXPECT_EQ(pool->RetiredNodes(), std::vector<uint64_t>{5});
}

TEST(TwinsTest, CloseRepairsFirst) {
  auto dev = device::NewMemoryDevice(kDeviceSize);
  auto pool = MustFormat(dev.get());
  ASSERT_OK(PutRange(pool.get(), 0, 3000));
  uint64_t leaf = LeafOf(pool.get(), 2);
  pool.reset();
  Flip(dev.get(), leaf);
  pool = MustOpen(dev.get());
  ASSERT_EQ(pool->PendingRepairs(), 1u);
  ASSERT_OK(pool->Close());
  EXPECT_EQ(pool->TakeRepairEvents().size(), 1u);
  pool.reset();
  pool = MustOpen(dev.get());
  EXPECT_TRUE(pool->was_clean());
  EXPECT_EQ(pool->PendingRepairs(), 0u);
  ExpectClean(pool.get());
}

TEST(TwinsTest, AShortLastChunkIsOnlyEverAPrimary) {
  const uint64_t size = kDeviceSize + (128 << 10);  // chunk 32 holds 32 blocks
  const uint64_t last = kDeviceSize / kChunk;
  auto dev = device::NewMemoryDevice(size);
  auto pool = MustFormat(dev.get());
  {
    auto txn = *pool->BeginWrite();
    ASSERT_OK(txn->AllocateChunk(format::ChunkType::kMetadata, last));
    ASSERT_OK(txn->Commit());
  }
  uint64_t twin = pool->TwinBlock(last * kChunkBlocks) / kChunkBlocks;
  EXPECT_NE(twin, last);
  EXPECT_EQ(pool->TwinBlock(last * kChunkBlocks + 31), twin * kChunkBlocks + 31);
  // A bad byte in the twin chunk past the primary's end hits no node slot.
  MetadataFailure hit =
      pool->NoteMetadataFailure((twin * kChunkBlocks + 40) * kBlockSize, kBlockSize);
  EXPECT_TRUE(hit.nodes.empty());
  EXPECT_TRUE(hit.free_slots.empty());
  EXPECT_TRUE(hit.repairable());
  for (uint64_t i = 0; i < 60000; i += 6000) ASSERT_OK(PutRange(pool.get(), i, i + 6000));
  ExpectClean(pool.get());
  pool.reset();
  pool = MustOpen(dev.get());
  ExpectRecords(pool.get(), 60000);
  ExpectClean(pool.get());
}

}  // namespace
}  // namespace daxfs::txn
