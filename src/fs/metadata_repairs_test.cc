// Tests of metadata repairs from twins in the filesystem (metadata_repairs.cc, docs/media.md
// "Metadata with twins"): a media failure or a checksum error on one copy of a node is healed
// online (the node moves, the bad slot is retired and recorded in the poison tree, the repair is
// reported), survives remount, and only the loss of both copies shuts down.
#include <fmt/core.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "base/random.h"
#include "daxfs/filesystem.h"
#include "device/device.h"
#include "format/records.h"
#include "fs/fs_impl.h"

namespace daxfs {
namespace {

constexpr uint64_t kB = 4096;
constexpr uint64_t kChunk = 256 << 10;

std::vector<uint8_t> Pattern(uint64_t length, uint8_t seed) {
  std::vector<uint8_t> v(length);
  for (uint64_t i = 0; i < length; ++i) v[i] = static_cast<uint8_t>(seed + i * 13 + i / 4096);
  return v;
}

std::string Joined(const std::vector<std::string>& lines) {
  std::string s;
  for (auto& l : lines) s += "\n  " + l;
  return s;
}

class Recorder final : public fs::RepairObserver {
 public:
  void Repaired(const std::vector<MetadataRepair>& r) override {
    heard.insert(heard.end(), r.begin(), r.end());
  }
  std::vector<MetadataRepair> heard;
};

class MetadataRepairTest : public ::testing::Test {
 protected:
  void Format(FormatOptions options = {}) {
    options.chunk_size = kChunk;
    Status formatted = Filesystem::Format(dev_.get(), options);
    ASSERT_TRUE(formatted.ok()) << formatted.ToString();
    Mount();
  }
  void Mount() {
    fs_.reset();
    auto fs = Filesystem::Open(dev_.get(), {});
    ASSERT_TRUE(fs.ok()) << fs.status().ToString();
    fs_ = std::move(*fs);
  }
  void Unmount() {
    ASSERT_TRUE(fs_->Unmount().ok());
    fs_.reset();
  }
  fs::FsImpl* impl() { return static_cast<fs::FsImpl*>(fs_.get()); }
  void ExpectCheckClean() {
    auto check = fs_->Check();
    ASSERT_TRUE(check.ok()) << check.status().ToString();
    EXPECT_TRUE(check->ok()) << Joined(check->problems);
  }
  // Twenty files of a few blocks each: the inode and extent trees have several nodes.
  std::vector<Ino> MakeFiles(int n = 20, const std::string& prefix = "f") {
    std::vector<Ino> out;
    for (int i = 0; i < n; ++i) {
      auto a = fs_->Create(kRootIno, fmt::format("{}{}", prefix, i), 0644);
      EXPECT_TRUE(a.ok());
      EXPECT_TRUE(fs_->Write(a->ino, 0, Pattern(3 * kB, static_cast<uint8_t>(i))).ok());
      out.push_back(a->ino);
    }
    return out;
  }
  void ExpectFilesIntact(const std::vector<Ino>& files) {
    for (size_t i = 0; i < files.size(); ++i) {
      std::vector<uint8_t> buf(3 * kB);
      auto r = fs_->Read(files[i], 0, buf);
      ASSERT_TRUE(r.ok()) << "file " << i << ": " << r.status().ToString();
      EXPECT_EQ(buf, Pattern(3 * kB, static_cast<uint8_t>(i))) << "file " << i;
    }
  }
  uint64_t InodesRoot() { return impl()->pool()->superblock().tree(format::TreeId::kInodes).root; }
  std::unique_ptr<device::Device> dev_ = device::NewMemoryDevice(8 << 20);
  std::unique_ptr<Filesystem> fs_;
};

TEST_F(MetadataRepairTest, MediaFailureOnANodeWithATwinIsRepairedOnline) {
  Format();
  std::vector<Ino> files = MakeFiles();
  ASSERT_TRUE(fs_->Sync().ok());
  Recorder heard;
  static_cast<fs::FsFace*>(fs_.get())->SetRepairObserver(&heard);
  uint64_t root = InodesRoot();
  uint64_t twin = impl()->pool()->TwinBlock(root);
  ASSERT_NE(twin, 0u);
  ASSERT_TRUE(dev_->InjectPoison(root * kB, kB).ok());
  auto rec = fs_->RecordMediaFailure(root * kB, kB, kFailureSimulated);
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  EXPECT_FALSE(rec->metadata_hit) << rec->message;
  EXPECT_FALSE(fs_->read_only());
  ASSERT_EQ(rec->repairs.size(), 1u) << rec->message;
  const MetadataRepair& r = rec->repairs[0];
  EXPECT_EQ(r.kind, MetadataRepair::Kind::kRelocated);
  EXPECT_EQ(r.block, root);
  EXPECT_EQ(r.twin_block, twin);
  EXPECT_TRUE(r.primary_bad);
  EXPECT_FALSE(r.twin_bad);
  EXPECT_EQ(r.tree, "inodes");
  EXPECT_NE(r.new_block, root);
  EXPECT_NE(r.new_twin_block, 0u);
  EXPECT_NE(rec->message.find("repaired from the twin copies (1 node(s) moved"), std::string::npos)
      << rec->message;
  ASSERT_EQ(heard.heard.size(), 1u);
  EXPECT_EQ(heard.heard[0].new_block, r.new_block);
  EXPECT_EQ(InodesRoot(), r.new_block);
  ExpectFilesIntact(files);
  auto errors = fs_->MediaErrors();
  ASSERT_TRUE(errors.ok());
  ASSERT_EQ(errors->retired_metadata.size(), 1u);
  EXPECT_EQ(errors->retired_metadata[0].offset, root * kB);
  EXPECT_TRUE(errors->metadata_damage.empty() || !errors->incomplete.empty() ||
              errors->metadata_damage[0].offset == root * kB);
  // Still writable, and the bad slot is never handed out again.
  auto more = fs_->Create(kRootIno, "after", 0644);
  ASSERT_TRUE(more.ok()) << more.status().ToString();
  ExpectCheckClean();

  // Remount: the retirement was recorded; no new repair is reported; the slot stays retired.
  Unmount();
  Mount();
  EXPECT_FALSE(fs_->read_only());
  Recorder again;
  static_cast<fs::FsFace*>(fs_.get())->SetRepairObserver(&again);
  EXPECT_TRUE(again.heard.empty());
  std::vector<uint64_t> retired = impl()->pool()->RetiredNodes();
  EXPECT_NE(std::find(retired.begin(), retired.end(), root), retired.end());
  ExpectFilesIntact(files);
  MakeFiles(40, "g");
  ExpectCheckClean();
}

TEST_F(MetadataRepairTest, ChecksumErrorOnOneCopyIsHealedByTheReadThatFindsIt) {
  Format();
  std::vector<Ino> files = MakeFiles();
  uint64_t root = InodesRoot();
  Unmount();
  // Flip bytes in the primary copy (no bad-block list entry: only the checksum can tell; a bad
  // twin is found by check and scrub, which read both copies).
  uint8_t* p = dev_->At(root * kB + 100);
  for (int i = 0; i < 16; ++i) p[i] ^= 0x5a;
  Mount();
  Recorder heard;
  static_cast<fs::FsFace*>(fs_.get())->SetRepairObserver(&heard);
  // The mount verifies both copies of what it reads or a later read finds it; either way the
  // repair is reported, made durable, and the contents are unchanged.
  ExpectFilesIntact(files);
  ASSERT_TRUE(fs_->Sync().ok());
  ASSERT_FALSE(heard.heard.empty());
  bool found = false;
  for (const MetadataRepair& r : heard.heard) {
    if (r.block == root && r.primary_bad && !r.twin_bad) found = true;
  }
  EXPECT_TRUE(found);
  auto errors = fs_->MediaErrors();
  ASSERT_TRUE(errors.ok());
  bool recorded = false;
  for (const DeviceRange& d : errors->retired_metadata) recorded |= d.offset == root * kB;
  EXPECT_TRUE(recorded);
  ExpectCheckClean();
  Unmount();
  Mount();
  ExpectFilesIntact(files);
  EXPECT_FALSE(fs_->read_only());
  ExpectCheckClean();
}

TEST_F(MetadataRepairTest, BothCopiesLostShutsDownWithTheReason) {
  Format();
  std::vector<Ino> files = MakeFiles();
  ASSERT_TRUE(fs_->Sync().ok());
  uint64_t root = InodesRoot();
  uint64_t twin = impl()->pool()->TwinBlock(root);
  ASSERT_TRUE(dev_->InjectPoison(twin * kB, kB).ok());
  ASSERT_TRUE(dev_->InjectPoison(root * kB, kB).ok());
  // Both at once: the node has no good copy.
  auto rec = fs_->RecordMediaFailure(root * kB, kB, kFailureSimulated);
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  EXPECT_TRUE(rec->metadata_hit);
  EXPECT_TRUE(fs_->read_only());
  EXPECT_NE(rec->message.find("shut down read-only"), std::string::npos) << rec->message;
  EXPECT_NE(rec->message.find(fmt::format("{}", root)), std::string::npos) << rec->message;
  EXPECT_EQ(fs_->Create(kRootIno, "x", 0644).status().code(), EROFS);
  Unmount();
  // A remount sees both copies on the bad-block list: read-only with the reason.
  Mount();
  EXPECT_TRUE(fs_->read_only());
  auto attr = fs_->GetAttr(files[0]);
  EXPECT_FALSE(attr.ok());
}

TEST_F(MetadataRepairTest, HitsOnASuperblockCopyAndOnAFreeSlotDoNotShutDown) {
  Format();
  std::vector<Ino> files = MakeFiles(5);
  ASSERT_TRUE(fs_->Sync().ok());
  // Superblock slot 0 of the primary copy.
  ASSERT_TRUE(dev_->InjectPoison(0, kB).ok());
  auto rec = fs_->RecordMediaFailure(0, kB, kFailureSimulated);
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  EXPECT_FALSE(rec->metadata_hit) << rec->message;
  EXPECT_FALSE(fs_->read_only());
  // The last node slot of chunk 0: free on a small filesystem.
  ASSERT_TRUE(dev_->InjectPoison(kChunk - kB, kB).ok());
  rec = fs_->RecordMediaFailure(kChunk - kB, kB, kFailureSimulated);
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  EXPECT_FALSE(rec->metadata_hit) << rec->message;
  EXPECT_FALSE(fs_->read_only());
  MakeFiles(30, "g");
  ExpectCheckClean();
  Unmount();
  Mount();
  EXPECT_FALSE(fs_->read_only());
  ExpectFilesIntact(files);
}

// Scrub's metadata phase reads both copies: a bad twin (which reads never look at) is found and
// repaired; both copies bad is a problem and shuts down.
TEST_F(MetadataRepairTest, ScrubFindsABadTwinAndRepairsIt) {
  Format();
  std::vector<Ino> files = MakeFiles();
  ASSERT_TRUE(fs_->Sync().ok());
  uint64_t root = InodesRoot();
  uint64_t twin = impl()->pool()->TwinBlock(root);
  dev_->At(twin * kB + 200)[0] ^= 0x11;
  auto* face = static_cast<fs::FsFace*>(fs_.get());
  fs::ScrubRoute route = [&](uint64_t offset, uint64_t length) {
    return fs_->RecordMediaFailure(offset, length, kFailureSimulated);
  };
  auto r = face->Scrub({}, route);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->clean()) << (r->metadata.problems.empty() ? "" : r->metadata.problems[0]);
  EXPECT_EQ(r->metadata.found, 1u);
  EXPECT_EQ(r->metadata.repaired, 1u);
  ASSERT_EQ(r->repairs.size(), 1u);
  EXPECT_EQ(r->repairs[0].block, root);
  EXPECT_TRUE(r->repairs[0].twin_bad);
  EXPECT_FALSE(r->repairs[0].primary_bad);
  EXPECT_NE(InodesRoot(), root);
  ExpectFilesIntact(files);
  ExpectCheckClean();
  auto again = face->Scrub({}, route);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->metadata.found, 0u);
  Unmount();
  Mount();
  ExpectFilesIntact(files);
  ExpectCheckClean();
}

TEST_F(MetadataRepairTest, ScrubFindingBothCopiesBadShutsDown) {
  Format();
  MakeFiles();
  ASSERT_TRUE(fs_->Sync().ok());
  uint64_t root = InodesRoot();
  uint64_t twin = impl()->pool()->TwinBlock(root);
  dev_->At(twin * kB + 200)[0] ^= 0x11;
  dev_->At(root * kB + 300)[0] ^= 0x11;
  auto* face = static_cast<fs::FsFace*>(fs_.get());
  auto r = face->Scrub({}, [&](uint64_t offset, uint64_t length) {
    return fs_->RecordMediaFailure(offset, length, kFailureSimulated);
  });
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->clean());
  ASSERT_FALSE(r->metadata.problems.empty());
  EXPECT_NE(r->metadata.problems[0].find("both copies are bad"), std::string::npos)
      << r->metadata.problems[0];
  EXPECT_TRUE(r->read_only);
  EXPECT_NE(r->read_only_reason.find(fmt::format("metadata node {}", root)), std::string::npos)
      << r->read_only_reason;
  EXPECT_TRUE(fs_->read_only());
}

// Check reports a bad twin (from the pool's check of both copies); repair rewrites it.
TEST_F(MetadataRepairTest, CheckReportsABadTwinAndRepairRebuildsIt) {
  Format();
  std::vector<Ino> files = MakeFiles();
  ASSERT_TRUE(fs_->Sync().ok());
  uint64_t root = InodesRoot();
  uint64_t twin = impl()->pool()->TwinBlock(root);
  dev_->At(twin * kB + 200)[0] ^= 0x11;
  auto check = fs_->Check();
  ASSERT_TRUE(check.ok());
  ASSERT_FALSE(check->ok());
  EXPECT_NE(Joined(check->problems).find(fmt::format("twin at block {} is bad", twin)),
            std::string::npos)
      << Joined(check->problems);
  auto repaired = fs_->RebuildReverseMaps();
  ASSERT_TRUE(repaired.ok()) << repaired.status().ToString();
  EXPECT_TRUE(repaired->twins_rebuilt);
  EXPECT_GT(repaired->twin_nodes_checked, 0u);
  EXPECT_EQ(repaired->twins_fixed.size(), 1u) << Joined(repaired->twins_fixed);
  EXPECT_TRUE(repaired->twins_lost.empty());
  ExpectCheckClean();
  ExpectFilesIntact(files);
  Unmount();
  Mount();
  ExpectCheckClean();
  ExpectFilesIntact(files);
}

TEST_F(MetadataRepairTest, RepairWithoutRmapStillRebuildsTwins) {
  Format({.rmap = false, .reflink = false});
  MakeFiles(5);
  ASSERT_TRUE(fs_->Sync().ok());
  uint64_t twin = impl()->pool()->TwinBlock(InodesRoot());
  dev_->At(twin * kB + 99)[0] ^= 0x22;
  auto repaired = fs_->RebuildReverseMaps();
  ASSERT_TRUE(repaired.ok()) << repaired.status().ToString();
  EXPECT_EQ(repaired->twins_fixed.size(), 1u);
  EXPECT_EQ(repaired->rmap_records, 0u);
  ExpectCheckClean();
}

// ---- Randomised: aged filesystems, errors on random metadata copies, contents against a model.

uint64_t Seed() {
  const char* env = std::getenv("DAXFS_SEED");
  uint64_t seed = env != nullptr ? std::strtoull(env, nullptr, 10) : std::random_device{}();
  std::cout << "seed " << seed << " (DAXFS_SEED to repeat)\n";
  return seed;
}

class AgedRepairTest : public MetadataRepairTest {
 protected:
  // Random creates, writes (some at offsets that grow extent maps), truncates and unlinks.
  void Age(base::Random& rng, int ops) {
    for (int i = 0; i < ops; ++i) {
      uint64_t pick = rng.Uniform(10);
      if (model_.empty() || pick < 3) {
        std::string name = fmt::format("n{}", next_++);
        auto a = fs_->Create(kRootIno, name, 0644);
        ASSERT_TRUE(a.ok()) << a.status().ToString();
        model_[name] = {};
        continue;
      }
      auto it = model_.begin();
      std::advance(it, static_cast<long>(rng.Uniform(model_.size())));
      auto attr = fs_->Lookup(kRootIno, it->first);
      ASSERT_TRUE(attr.ok()) << it->first;
      if (pick < 8) {
        uint64_t off = rng.Uniform(24) * kB + rng.Uniform(2) * rng.Uniform(kB);
        std::vector<uint8_t> data = Pattern(1 + rng.Uniform(3 * kB), static_cast<uint8_t>(i));
        auto w = fs_->Write(attr->ino, off, data);
        ASSERT_TRUE(w.ok()) << w.status().ToString();
        if (it->second.size() < off + data.size()) it->second.resize(off + data.size());
        std::copy(data.begin(), data.end(), it->second.begin() + static_cast<long>(off));
      } else if (pick < 9) {
        uint64_t size = rng.Uniform(it->second.size() + 1);
        ASSERT_TRUE(fs_->Truncate(attr->ino, size).ok());
        it->second.resize(size);
      } else {
        ASSERT_TRUE(fs_->Unlink(kRootIno, it->first).ok());
        model_.erase(it);
      }
    }
  }
  void ExpectModel() {
    size_t entries = 0;
    ASSERT_TRUE(fs_->ReadDir(kRootIno, 0,
                             [&](const DirEntry&) {
                               ++entries;
                               return true;
                             })
                    .ok());
    EXPECT_GE(entries, model_.size());  // may list "." and ".."
    EXPECT_LE(entries, model_.size() + 2);
    for (const auto& entry : model_) {
      auto attr = fs_->Lookup(kRootIno, entry.first);
      ASSERT_TRUE(attr.ok()) << entry.first << ": " << attr.status().ToString();
      EXPECT_EQ(attr->size, entry.second.size()) << entry.first;
      std::vector<uint8_t> buf(entry.second.size());
      auto r = fs_->Read(attr->ino, 0, buf);
      ASSERT_TRUE(r.ok()) << entry.first << ": " << r.status().ToString();
      EXPECT_TRUE(buf == entry.second) << entry.first;
    }
  }
  // Node slots holding a node now (METADATA chunks only: the primaries).
  std::vector<uint64_t> UsedSlots() {
    txn::Pool* pool = impl()->pool();
    const format::Superblock& sb = pool->superblock();
    std::vector<uint64_t> out;
    for (const auto& chunk : pool->Chunks()) {
      if (chunk.second != format::ChunkType::kMetadata) continue;
      uint64_t first = sb.ChunkFirstBlock(chunk.first);
      for (uint64_t b = first; b < first + sb.ChunkBlockCount(chunk.first); ++b) {
        if (pool->SlotState(b) == space::NodeState::kUsed) out.push_back(b);
      }
    }
    return out;
  }
  // One block to hit: a random copy of a random used slot, a superblock copy now and then, or
  // the chunk table's root.
  uint64_t PickCopy(base::Random& rng, uint64_t* slot) {
    txn::Pool* pool = impl()->pool();
    uint64_t pick = rng.Uniform(10);
    uint64_t sb_slot = rng.Uniform(format::kFirstNodeBlock);
    if (pick == 0 && !sb_slots_hit_.count(sb_slot)) {
      // One copy of each superblock slot at most: both lost is the loss of the slot.
      sb_slots_hit_.insert(sb_slot);
      *slot = 0;
      return (rng.Uniform(2) ? 0 : pool->TwinBlock(0)) + sb_slot;
    }
    if (pick == 1) {
      *slot = pool->superblock().tree(format::TreeId::kChunks).root;
    } else {
      std::vector<uint64_t> used = UsedSlots();
      *slot = used[rng.Uniform(used.size())];
    }
    return rng.Uniform(2) ? *slot : pool->TwinBlock(*slot);
  }
  std::map<std::string, std::vector<uint8_t>> model_;
  std::set<uint64_t> sb_slots_hit_;
  uint64_t next_ = 0;
};

TEST_F(AgedRepairTest, OneBadCopyOnlineIsRepairedAndContentsMatchTheModel) {
  uint64_t seed = Seed();
  for (int round = 0; round < 4; ++round) {
    SCOPED_TRACE(fmt::format("seed {} round {}", seed, round));
    base::Random rng(seed + static_cast<uint64_t>(round));
    fs_.reset();
    dev_ = device::NewMemoryDevice(8 << 20);
    model_.clear();
    sb_slots_hit_.clear();
    ASSERT_NO_FATAL_FAILURE(Format());
    ASSERT_NO_FATAL_FAILURE(Age(rng, 300));
    ASSERT_TRUE(fs_->Sync().ok());
    for (int hit = 0; hit < 4; ++hit) {
      uint64_t slot = 0;
      uint64_t block = PickCopy(rng, &slot);
      SCOPED_TRACE(fmt::format("hit {}: block {} (slot {})", hit, block, slot));
      ASSERT_TRUE(dev_->InjectPoison(block * kB, kB).ok());
      auto rec = fs_->RecordMediaFailure(block * kB, kB, kFailureSimulated);
      ASSERT_TRUE(rec.ok()) << rec.status().ToString();
      EXPECT_FALSE(rec->metadata_hit) << rec->message;
      ASSERT_FALSE(fs_->read_only()) << rec->message;
      if (slot != 0 && block >= format::kFirstNodeBlock) {
        // A used slot's node moved off it.
        EXPECT_NE(impl()->pool()->SlotState(slot), space::NodeState::kUsed);
      }
      ASSERT_NO_FATAL_FAILURE(ExpectModel());
      ASSERT_NO_FATAL_FAILURE(Age(rng, 40));
    }
    ASSERT_NO_FATAL_FAILURE(ExpectCheckClean());
    Unmount();
    Mount();
    EXPECT_FALSE(fs_->read_only());
    ASSERT_NO_FATAL_FAILURE(ExpectModel());
    ASSERT_NO_FATAL_FAILURE(ExpectCheckClean());
  }
}

TEST_F(AgedRepairTest, OneBadCopyFoundAtMountOrByChecksumIsRepaired) {
  uint64_t seed = Seed();
  for (int round = 0; round < 4; ++round) {
    SCOPED_TRACE(fmt::format("seed {} round {}", seed, round));
    base::Random rng(seed + 100 + static_cast<uint64_t>(round));
    fs_.reset();
    dev_ = device::NewMemoryDevice(8 << 20);
    model_.clear();
    sb_slots_hit_.clear();
    ASSERT_NO_FATAL_FAILURE(Format());
    ASSERT_NO_FATAL_FAILURE(Age(rng, 300));
    // Distinct slots, one copy each: on the bad list (found by the mount) or bytes flipped in the
    // primary (found by the checksum when read).
    std::vector<uint64_t> used = UsedSlots();
    std::set<uint64_t> hit;
    Unmount();
    for (int i = 0; i < 3; ++i) {
      uint64_t slot = used[rng.Uniform(used.size())];
      if (!hit.insert(slot).second) continue;
      if (rng.Uniform(2)) {
        uint64_t twin = 0;
        {
          // The twin of a slot is fixed by its chunk's pair: mount briefly to ask the pool.
          Mount();
          twin = impl()->pool()->TwinBlock(slot);
          Unmount();
        }
        uint64_t block = rng.Uniform(2) ? slot : twin;
        ASSERT_TRUE(dev_->InjectPoison(block * kB, kB).ok());
      } else {
        uint8_t* p = dev_->At(slot * kB + 64 + rng.Uniform(kB - 128));
        *p ^= 0xff;
      }
    }
    Mount();
    ASSERT_FALSE(fs_->read_only());
    ASSERT_NO_FATAL_FAILURE(ExpectModel());
    ASSERT_NO_FATAL_FAILURE(Age(rng, 60));
    ASSERT_NO_FATAL_FAILURE(ExpectModel());
    ASSERT_NO_FATAL_FAILURE(ExpectCheckClean());
    Unmount();
    Mount();
    EXPECT_FALSE(fs_->read_only());
    ASSERT_NO_FATAL_FAILURE(ExpectModel());
    ASSERT_NO_FATAL_FAILURE(ExpectCheckClean());
  }
}

TEST_F(AgedRepairTest, BothCopiesOfARandomNodeLostShutsDownWithTheReason) {
  uint64_t seed = Seed();
  for (int round = 0; round < 4; ++round) {
    SCOPED_TRACE(fmt::format("seed {} round {}", seed, round));
    base::Random rng(seed + 200 + static_cast<uint64_t>(round));
    fs_.reset();
    dev_ = device::NewMemoryDevice(8 << 20);
    model_.clear();
    sb_slots_hit_.clear();
    ASSERT_NO_FATAL_FAILURE(Format());
    ASSERT_NO_FATAL_FAILURE(Age(rng, 200));
    ASSERT_TRUE(fs_->Sync().ok());
    std::vector<uint64_t> used = UsedSlots();
    uint64_t slot = used[rng.Uniform(used.size())];
    uint64_t twin = impl()->pool()->TwinBlock(slot);
    ASSERT_TRUE(dev_->InjectPoison(twin * kB, kB).ok());
    ASSERT_TRUE(dev_->InjectPoison(slot * kB, kB).ok());
    uint64_t first = rng.Uniform(2) ? slot : twin;
    auto rec = fs_->RecordMediaFailure(first * kB, kB, kFailureSimulated);
    ASSERT_TRUE(rec.ok()) << rec.status().ToString();
    EXPECT_TRUE(rec->metadata_hit) << rec->message;
    EXPECT_TRUE(fs_->read_only());
    EXPECT_NE(rec->message.find("both copies"), std::string::npos) << rec->message;
    EXPECT_NE(rec->message.find("shut down read-only"), std::string::npos) << rec->message;
    EXPECT_EQ(fs_->Create(kRootIno, "late", 0644).status().code(), EROFS);
    Unmount();
  }
}

}  // namespace
}  // namespace daxfs
