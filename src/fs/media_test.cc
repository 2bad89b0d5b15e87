// Tests of media failures in the filesystem (media_failures.cc, poison.cc, docs/media.md):
// classification, every owner of a shared bad block lost and failing reads, whole-block rewrites
// restoring one owner, bad blocks never reused and retired at their last owner, free-space
// retirement surviving remount, metadata hits shutting down, the no-rmap scan, records cleared by
// unlink/truncate, the read-only overlay, idempotence, and the reflink operations refusing lost
// ranges. Every test ends with the checker.
#include <fmt/core.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <iostream>
#include <limits>
#include <string>
#include <vector>

#include "base/random.h"
#include "daxfs/filesystem.h"
#include "device/device.h"
#include "fs/fs_impl.h"

namespace daxfs {
namespace {

constexpr uint64_t kB = 4096;
constexpr uint64_t kAll = std::numeric_limits<uint64_t>::max();
constexpr uint64_t kChunk = 256 << 10;
constexpr uint64_t kDeviceSize = 8 << 20;

std::vector<uint8_t> Pattern(uint64_t length, uint8_t seed) {
  std::vector<uint8_t> v(length);
  for (uint64_t i = 0; i < length; ++i) v[i] = static_cast<uint8_t>(seed + i * 7 + i / 4096);
  return v;
}

std::string Joined(const std::vector<std::string>& lines) {
  std::string s;
  for (auto& l : lines) s += "\n  " + l;
  return s;
}

class MediaTest : public ::testing::Test {
 protected:
  void Format(FormatOptions options = {}) {
    options.chunk_size = kChunk;
    ASSERT_TRUE(Filesystem::Format(dev_.get(), options).ok());
    Mount();
  }
  void Mount(MountOptions options = {}) {
    fs_.reset();
    auto fs = Filesystem::Open(dev_.get(), options);
    ASSERT_TRUE(fs.ok()) << fs.status().ToString();
    fs_ = std::move(*fs);
  }
  void Remount(MountOptions options = {}) {
    ASSERT_TRUE(fs_->Unmount().ok());
    Mount(options);
  }
  void TearDown() override {
    if (fs_ == nullptr) return;
    auto check = fs_->Check();
    ASSERT_TRUE(check.ok()) << check.status().ToString();
    if (!expect_problems_) {
      EXPECT_TRUE(check->ok()) << Joined(check->problems);
    }
  }
  fs::FsImpl* impl() { return static_cast<fs::FsImpl*>(fs_.get()); }

  Ino MakeFile(const std::string& name, uint64_t blocks, uint8_t seed) {
    auto a = fs_->Create(kRootIno, name, 0644);
    EXPECT_TRUE(a.ok()) << a.status().ToString();
    if (blocks > 0) {
      auto data = Pattern(blocks * kB, seed);
      auto w = fs_->Write(a->ino, 0, data);
      EXPECT_TRUE(w.ok()) << w.status().ToString();
    }
    return a->ino;
  }
  // The device offset of file block `block` of `ino`.
  uint64_t DeviceOffsetOf(Ino ino, uint64_t block) {
    auto map = fs_->Bmap(ino);
    EXPECT_TRUE(map.ok());
    for (const FileExtent& x : *map) {
      if (x.file_offset <= block * kB && block * kB < x.file_offset + x.length) {
        return x.device_offset + (block * kB - x.file_offset);
      }
    }
    ADD_FAILURE() << "inode " << ino << " block " << block << " is not mapped";
    return 0;
  }
  // Injects poison on the device and routes it, as the failure layer does.
  MediaFailureRecord Fail(uint64_t offset, uint64_t length) {
    EXPECT_TRUE(dev_->InjectPoison(offset, length).ok());
    auto rec = fs_->RecordMediaFailure(offset, length, kFailureSimulated);
    EXPECT_TRUE(rec.ok()) << rec.status().ToString();
    return rec.ok() ? *rec : MediaFailureRecord{};
  }
  int ReadErrno(Ino ino, uint64_t offset, uint64_t length = kB) {
    std::vector<uint8_t> buf(length);
    auto r = fs_->Read(ino, offset, buf);
    return r.ok() ? 0 : r.status().code();
  }
  bool ReadsAs(Ino ino, uint64_t offset, const std::vector<uint8_t>& want) {
    std::vector<uint8_t> buf(want.size());
    auto r = fs_->Read(ino, offset, buf);
    return r.ok() && *r == want.size() && buf == want;
  }
  // Writes files until ENOSPC (the bad blocks must never be handed out).
  void FillFilesystem() {
    auto f = fs_->Create(kRootIno, "filler", 0644);
    ASSERT_TRUE(f.ok());
    std::vector<uint8_t> chunk(64 * kB, 0xee);
    for (uint64_t off = 0;; off += chunk.size()) {
      auto w = fs_->Write(f->ino, off, chunk);
      if (!w.ok()) {
        ASSERT_EQ(w.status().code(), ENOSPC) << w.status().ToString();
        break;
      }
    }
    std::vector<uint8_t> one(kB, 0xdd);
    for (uint64_t off = 1ULL << 30;; off += kB) {
      auto w = fs_->Write(f->ino, off, one);
      if (!w.ok()) break;
    }
  }
  std::vector<FsmapRecord> OwnersOf(uint64_t offset) {
    auto m = fs_->Fsmap(offset, offset + kB, std::nullopt, 0);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return m.ok() ? *m : std::vector<FsmapRecord>{};
  }

  std::unique_ptr<device::Device> dev_ = device::NewMemoryDevice(kDeviceSize);
  std::unique_ptr<Filesystem> fs_;
  bool expect_problems_ = false;
};

// a: 4 blocks; b: a's block 1 cloned at block 2; c: a clone of a. One bad block, three owners.
struct Shared {
  Ino a, b, c;
  uint64_t bad;  // device offset of a's block 1
};

class SharedMediaTest : public MediaTest {
 protected:
  Shared MakeShared() {
    Shared s;
    s.a = MakeFile("a", 4, 1);
    s.b = MakeFile("b", 4, 2);
    s.c = MakeFile("c", 0, 0);
    EXPECT_TRUE(fs_->CloneRange(s.a, kB, s.b, 2 * kB, kB).ok());
    EXPECT_TRUE(fs_->Clone(s.a, s.c).ok());
    s.bad = DeviceOffsetOf(s.a, 1);
    EXPECT_EQ(DeviceOffsetOf(s.b, 2), s.bad);
    EXPECT_EQ(DeviceOffsetOf(s.c, 1), s.bad);
    return s;
  }
};

TEST_F(SharedMediaTest, SharedBlockHitMakesEveryOwnerLost) {
  Format();
  Shared s = MakeShared();
  // Part of one block: the whole block goes bad.
  MediaFailureRecord rec = Fail(s.bad + 100, 10);
  ASSERT_EQ(rec.pieces.size(), 1u);
  EXPECT_EQ(rec.pieces[0].kind, RangeKind::kData);
  EXPECT_EQ(rec.pieces[0].offset, s.bad);
  EXPECT_EQ(rec.pieces[0].length, kB);
  EXPECT_FALSE(rec.metadata_hit);
  EXPECT_TRUE(rec.recorded);
  ASSERT_EQ(rec.owners.size(), 3u);
  std::vector<std::pair<Ino, uint64_t>> got;
  for (const FileRangeLoss& o : rec.owners) {
    got.push_back({o.ino, o.file_offset});
    EXPECT_TRUE(o.shared);
    EXPECT_EQ(o.length, kB);
    EXPECT_EQ(o.device_offset, s.bad);
    EXPECT_FALSE(o.path.empty());
  }
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<std::pair<Ino, uint64_t>>{{s.a, kB}, {s.b, 2 * kB}, {s.c, kB}}));

  EXPECT_EQ(ReadErrno(s.a, kB), EIO);
  EXPECT_EQ(ReadErrno(s.a, 0, 4 * kB), EIO);
  EXPECT_EQ(ReadErrno(s.b, 2 * kB + 5, 1), EIO);
  EXPECT_EQ(ReadErrno(s.c, kB), EIO);
  // The other blocks read as they were.
  auto a_data = Pattern(4 * kB, 1), b_data = Pattern(4 * kB, 2);
  EXPECT_TRUE(ReadsAs(s.a, 0, {a_data.begin(), a_data.begin() + kB}));
  EXPECT_TRUE(ReadsAs(s.a, 2 * kB, {a_data.begin() + 2 * kB, a_data.end()}));
  EXPECT_TRUE(ReadsAs(s.b, 0, {b_data.begin(), b_data.begin() + 2 * kB}));
  EXPECT_TRUE(ReadsAs(s.c, 3 * kB, {a_data.begin() + 3 * kB, a_data.end()}));

  auto errors = fs_->MediaErrors();
  ASSERT_TRUE(errors.ok()) << errors.status().ToString();
  EXPECT_EQ(errors->lost.size(), 3u);
  EXPECT_TRUE(errors->retired.empty());
  ASSERT_EQ(errors->bad.size(), 1u);
  EXPECT_EQ(errors->bad[0].offset, s.bad);
  EXPECT_EQ(errors->bad[0].length, kB);
  auto check = fs_->Check();
  ASSERT_TRUE(check.ok());
  EXPECT_TRUE(check->ok()) << Joined(check->problems);
  EXPECT_EQ(check->damage.size(), 3u) << Joined(check->damage);
}

// The failure path plans once: the observer hears the owners once, and they are the record's
// owners. A metadata hit names no owners, so the observer is not called.
class PlanRecorder final : public fs::FailurePlanObserver {
 public:
  void Planned(const DeviceRange& range, const std::vector<FileRangeLoss>& owners) override {
    ++calls;
    this->range = range;
    this->owners = owners;
  }
  int calls = 0;
  DeviceRange range;
  std::vector<FileRangeLoss> owners;
};

TEST_F(SharedMediaTest, FailureIsPlannedOnceWithTheRecordsOwners) {
  Format({.metadata_dup = false});
  Shared s = MakeShared();
  PlanRecorder plan;
  ASSERT_TRUE(dev_->InjectPoison(s.bad, kB).ok());
  Result<DeviceRange> range = fs::CheckFailedRange(*dev_, s.bad + 100, 10);
  ASSERT_TRUE(range.ok());
  auto rec = impl()->RecordCheckedFailure(*range, kFailureSimulated, &plan);
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  ASSERT_EQ(plan.calls, 1);
  EXPECT_EQ(plan.range.offset, s.bad + 100);
  EXPECT_EQ(plan.range.length, 10u);
  ASSERT_EQ(plan.owners.size(), rec->owners.size());
  ASSERT_EQ(plan.owners.size(), 3u);
  for (size_t i = 0; i < plan.owners.size(); ++i) {
    EXPECT_EQ(plan.owners[i].ino, rec->owners[i].ino);
    EXPECT_EQ(plan.owners[i].file_offset, rec->owners[i].file_offset);
    EXPECT_EQ(plan.owners[i].device_offset, rec->owners[i].device_offset);
  }
  EXPECT_EQ(ReadErrno(s.a, kB), EIO);

  PlanRecorder metadata;
  range = fs::CheckFailedRange(*dev_, 3 * kB, kB);
  ASSERT_TRUE(range.ok());
  rec = impl()->RecordCheckedFailure(*range, kFailureSimulated, &metadata);
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  EXPECT_TRUE(rec->metadata_hit);
  EXPECT_EQ(metadata.calls, 0);
  expect_problems_ = true;
}

TEST_F(SharedMediaTest, WholeBlockRewriteRestoresOneOwnerOnly) {
  Format();
  Shared s = MakeShared();
  Fail(s.bad, kB);
  auto fresh = Pattern(kB, 99);
  auto w = fs_->Write(s.a, kB, fresh);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_TRUE(ReadsAs(s.a, kB, fresh));
  EXPECT_NE(DeviceOffsetOf(s.a, 1), s.bad);
  EXPECT_EQ(ReadErrno(s.b, 2 * kB), EIO);
  EXPECT_EQ(ReadErrno(s.c, kB), EIO);
  auto errors = fs_->MediaErrors();
  ASSERT_TRUE(errors.ok());
  EXPECT_EQ(errors->lost.size(), 2u);

  // A partial write into a lost block: EIO, nothing changed.
  auto before = fs_->GetAttr(s.b);
  std::vector<uint8_t> small(100, 7);
  auto partial = fs_->Write(s.b, 2 * kB + 10, small);
  ASSERT_FALSE(partial.ok());
  EXPECT_EQ(partial.status().code(), EIO);
  EXPECT_EQ(DeviceOffsetOf(s.b, 2), s.bad);
  EXPECT_EQ(fs_->GetAttr(s.b)->mtime_ns, before->mtime_ns);
  // A write spanning a lost block whole and good blocks partially is fine.
  auto span = Pattern(kB + 200, 55);
  ASSERT_TRUE(fs_->Write(s.b, 2 * kB - 100, span).ok());
  EXPECT_TRUE(ReadsAs(s.b, 2 * kB - 100, span));
  EXPECT_EQ(ReadErrno(s.c, kB), EIO);
  // The last owner rewrites: the bad block is retired, never free.
  ASSERT_TRUE(fs_->Write(s.c, kB, fresh).ok());
  errors = fs_->MediaErrors();
  ASSERT_TRUE(errors.ok());
  EXPECT_TRUE(errors->lost.empty());
  ASSERT_EQ(errors->retired.size(), 1u);
  EXPECT_EQ(errors->retired[0].offset, s.bad);
  EXPECT_EQ(errors->retired[0].length, kB);
  auto owners = OwnersOf(s.bad);
  ASSERT_EQ(owners.size(), 1u);
  EXPECT_EQ(owners[0].owner, kOwnerBad);
  FillFilesystem();
  owners = OwnersOf(s.bad);
  ASSERT_EQ(owners.size(), 1u);
  EXPECT_EQ(owners[0].owner, kOwnerBad);
  auto scan = impl()->FsmapByFullScan(0, kAll, std::nullopt, 0);
  auto rmap = fs_->Fsmap(0, kAll, std::nullopt, 0);
  ASSERT_TRUE(scan.ok() && rmap.ok());
  ASSERT_EQ(scan->size(), rmap->size());
  for (size_t i = 0; i < scan->size(); ++i) {
    EXPECT_EQ((*scan)[i].physical, (*rmap)[i].physical) << i;
    EXPECT_EQ((*scan)[i].owner, (*rmap)[i].owner) << i;
    EXPECT_EQ((*scan)[i].length, (*rmap)[i].length) << i;
  }
  Remount();
  owners = OwnersOf(s.bad);
  ASSERT_EQ(owners.size(), 1u);
  EXPECT_EQ(owners[0].owner, kOwnerBad);
}

TEST_F(SharedMediaTest, UnlinkAndTruncateClearTheirRecords) {
  Format();
  Shared s = MakeShared();
  Fail(s.bad, kB);
  ASSERT_TRUE(fs_->Truncate(s.a, kB).ok());  // block 1 goes
  EXPECT_TRUE(ReadsAs(s.a, 0, Pattern(kB, 1)));
  auto errors = fs_->MediaErrors();
  ASSERT_TRUE(errors.ok());
  EXPECT_EQ(errors->lost.size(), 2u);
  // Punching the lost block out of b.
  ASSERT_TRUE(fs_->Fallocate(s.b, kFallocPunchHole | kFallocKeepSize, 2 * kB, kB).ok());
  EXPECT_EQ(ReadErrno(s.b, 2 * kB), 0);
  ASSERT_TRUE(fs_->Unlink(kRootIno, "c").ok());
  errors = fs_->MediaErrors();
  ASSERT_TRUE(errors.ok());
  EXPECT_TRUE(errors->lost.empty());
  ASSERT_EQ(errors->retired.size(), 1u);
  EXPECT_EQ(errors->retired[0].offset, s.bad);
}

TEST_F(SharedMediaTest, ReflinkOperationsRefuseLostRanges) {
  Format();
  Shared s = MakeShared();
  Fail(s.bad, kB);
  auto d = fs_->Create(kRootIno, "d", 0644);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(fs_->Clone(s.a, d->ino).code(), EIO);
  EXPECT_EQ(fs_->CloneRange(s.a, 0, d->ino, 0, 2 * kB).code(), EIO);
  EXPECT_TRUE(fs_->CloneRange(s.a, 2 * kB, d->ino, 0, 2 * kB).ok());  // around the loss: fine
  EXPECT_EQ(fs_->CopyFileRange(s.a, 0, d->ino, 4 * kB, 4 * kB).status().code(), EIO);
  EXPECT_EQ(fs_->Unshare(s.c, 0, 4 * kB).code(), EIO);
  auto dd = fs_->Dedupe(s.a, kB, s.c, 2 * kB, kB);
  EXPECT_FALSE(dd.ok());
  EXPECT_EQ(fs_->GetAttr(d->ino)->size, 2 * kB);
}

TEST_F(SharedMediaTest, RecordingTwiceIsIdempotentAndRemountKeepsIt) {
  Format();
  Shared s = MakeShared();
  Fail(s.bad, kB);
  auto first = fs_->MediaErrors();
  auto again = fs_->RecordMediaFailure(s.bad, 3 * kB / 2, kFailureSimulated);  // covers 2 blocks
  ASSERT_TRUE(again.ok());
  ASSERT_EQ(again->owners.size(), 3u);  // one per owner record: a and c now lose 2 blocks each
  for (const FileRangeLoss& o : again->owners) {
    EXPECT_EQ(o.length, o.ino == s.b ? kB : 2 * kB) << o.ino;
  }
  auto second = fs_->MediaErrors();
  ASSERT_TRUE(first.ok() && second.ok());
  auto third = fs_->RecordMediaFailure(s.bad, 3 * kB / 2, kFailureSimulated);
  ASSERT_TRUE(third.ok());
  auto fourth = fs_->MediaErrors();
  ASSERT_TRUE(fourth.ok());
  EXPECT_EQ(second->lost.size(), fourth->lost.size());
  EXPECT_EQ(second->bad.size(), fourth->bad.size());
  Remount();
  auto after = fs_->MediaErrors();
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->lost.size(), fourth->lost.size());
  EXPECT_EQ(ReadErrno(s.a, kB), EIO);
  EXPECT_EQ(ReadErrno(s.b, 2 * kB), EIO);
  EXPECT_EQ(ReadErrno(s.c, kB), EIO);
}

TEST_F(MediaTest, FreeSpaceHitIsRetiredAndSurvivesRemount) {
  Format();
  Ino a = MakeFile("a", 2, 3);
  uint64_t used = DeviceOffsetOf(a, 1);
  uint64_t free_block = used + 10 * kB;                  // free DATA space in the same chunk
  uint64_t unallocated = kDeviceSize - kChunk + 5 * kB;  // the last chunk: not typed yet
  EXPECT_EQ(impl()->pool()->superblock().ro_compat & format::feature::kRoCompatPoison, 0u);
  MediaFailureRecord rec = Fail(free_block, kB);
  // The first recorded failure marks the image: builds unaware of the poison tree mount it
  // read-only only.
  EXPECT_NE(impl()->pool()->superblock().ro_compat & format::feature::kRoCompatPoison, 0u);
  ASSERT_EQ(rec.pieces.size(), 1u);
  EXPECT_EQ(rec.pieces[0].kind, RangeKind::kFree);
  ASSERT_EQ(rec.retired.size(), 1u);
  EXPECT_EQ(rec.retired[0].offset, free_block);
  rec = Fail(unallocated, 2 * kB);
  ASSERT_EQ(rec.pieces.size(), 1u);
  EXPECT_EQ(rec.pieces[0].kind, RangeKind::kFree);
  ASSERT_EQ(rec.retired.size(), 1u);
  EXPECT_EQ(rec.retired[0].length, 2 * kB);
  EXPECT_TRUE(rec.owners.empty());
  Remount();
  auto errors = fs_->MediaErrors();
  ASSERT_TRUE(errors.ok());
  EXPECT_EQ(errors->retired.size(), 2u);
  EXPECT_TRUE(errors->lost.empty());
  FillFilesystem();
  for (uint64_t off : {free_block, unallocated, unallocated + kB}) {
    auto owners = OwnersOf(off);
    ASSERT_EQ(owners.size(), 1u) << off;
    EXPECT_EQ(owners[0].owner, kOwnerBad) << off;
  }
  auto classified = impl()->ClassifyRange(unallocated, kB);
  ASSERT_TRUE(classified.ok());
  EXPECT_EQ((*classified)[0].kind, RangeKind::kData);  // retired counts as data
}

TEST_F(MediaTest, MetadataHitShutsDownAndMountWithDamageIsReadOnly) {
  Format({.metadata_dup = false});
  Ino a = MakeFile("a", 1, 4);
  uint64_t node = 3 * kB;  // chunk 0 holds the superblocks and nodes
  auto rec = fs_->RecordMediaFailure(node, kB, kFailureSimulated);
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  EXPECT_TRUE(rec->metadata_hit);
  EXPECT_FALSE(rec->recorded);
  EXPECT_NE(rec->message.find("media error in metadata at device offset 12288 (chunk 0)"),
            std::string::npos)
      << rec->message;
  EXPECT_TRUE(fs_->read_only());
  EXPECT_EQ(fs_->Write(a, 0, Pattern(10, 1)).status().code(), EROFS);
  EXPECT_EQ(fs_->Create(kRootIno, "x", 0644).status().code(), EROFS);
  EXPECT_TRUE(ReadsAs(a, 0, Pattern(kB, 4)));
  auto errors = fs_->MediaErrors();
  ASSERT_TRUE(errors.ok());
  ASSERT_FALSE(errors->metadata_damage.empty());
  ASSERT_TRUE(fs_->Unmount().ok());
  fs_.reset();

  // The device now reports bad bytes in the last (free) node of chunk 0: mount works, read-only.
  ASSERT_TRUE(dev_->InjectPoison(kChunk - kB, kB).ok());
  Mount();
  EXPECT_TRUE(fs_->read_only());
  EXPECT_EQ(fs_->Write(a, 0, Pattern(10, 1)).status().code(), EROFS);
  EXPECT_TRUE(ReadsAs(a, 0, Pattern(kB, 4)));
  errors = fs_->MediaErrors();
  ASSERT_TRUE(errors.ok());
  ASSERT_EQ(errors->metadata_damage.size(), 1u);
  EXPECT_EQ(errors->metadata_damage[0].offset, kChunk - kB);
  EXPECT_EQ(errors->metadata_damage[0].kind, RangeKind::kMetadata);
  auto check = fs_->Check();
  ASSERT_TRUE(check.ok());
  EXPECT_FALSE(check->ok());
  EXPECT_NE(Joined(check->problems).find("bad bytes under metadata"), std::string::npos)
      << Joined(check->problems);
  expect_problems_ = true;
}

TEST_F(MediaTest, BadSuperblockSlotFallsBackToTheOther) {
  Format({.metadata_dup = false});
  Ino a = MakeFile("a", 1, 5);
  ASSERT_TRUE(fs_->Unmount().ok());
  fs_.reset();
  ASSERT_TRUE(dev_->InjectPoison(0, 1).ok());
  Mount();
  EXPECT_TRUE(fs_->read_only());
  EXPECT_TRUE(ReadsAs(a, 0, Pattern(kB, 5)));
  expect_problems_ = true;
}

TEST_F(MediaTest, BadTreeNodeFailsWithEio) {
  Format({.metadata_dup = false});
  MakeFile("a", 1, 5);
  auto* pool = impl()->pool();
  uint64_t root = pool->superblock().tree(format::TreeId::kInodes).root;
  ASSERT_TRUE(fs_->Unmount().ok());
  fs_.reset();
  ASSERT_TRUE(dev_->InjectPoison(root * kB, 8).ok());
  auto fs = Filesystem::Open(dev_.get(), {});
  if (fs.ok()) {  // mounted read-only: the node's reads fail
    fs_ = std::move(*fs);
    EXPECT_TRUE(fs_->read_only());
    auto attr = fs_->GetAttr(kRootIno);
    ASSERT_FALSE(attr.ok());
    EXPECT_EQ(attr.status().code(), EIO);
    EXPECT_NE(attr.status().message().find("is on bad media"), std::string::npos);
    expect_problems_ = true;
  } else {
    EXPECT_EQ(fs.status().code(), EIO) << fs.status().ToString();
  }
}

TEST_F(MediaTest, WithoutRmapOwnersComeFromTheScan) {
  Format({.rmap = false, .reflink = false});
  Ino a = MakeFile("a", 3, 6);
  Ino b = MakeFile("b", 3, 7);
  uint64_t bad = DeviceOffsetOf(b, 2);
  MediaFailureRecord rec = Fail(bad, kB);
  ASSERT_EQ(rec.owners.size(), 1u);
  EXPECT_EQ(rec.owners[0].ino, b);
  EXPECT_EQ(rec.owners[0].file_offset, 2 * kB);
  EXPECT_EQ(rec.owners[0].path, "/b");
  EXPECT_FALSE(rec.owners[0].shared);
  EXPECT_EQ(ReadErrno(b, 2 * kB), EIO);
  EXPECT_EQ(ReadErrno(a, 0, 3 * kB), 0);
  Remount();
  EXPECT_EQ(ReadErrno(b, 2 * kB), EIO);
  ASSERT_TRUE(fs_->Unlink(kRootIno, "b").ok());
  auto errors = fs_->MediaErrors();
  ASSERT_TRUE(errors.ok());
  EXPECT_TRUE(errors->lost.empty());
  ASSERT_EQ(errors->retired.size(), 1u);
  EXPECT_EQ(errors->retired[0].offset, bad);
  Remount();
  FillFilesystem();
  auto owners = OwnersOf(bad);
  ASSERT_EQ(owners.size(), 1u);
  EXPECT_EQ(owners[0].owner, kOwnerBad);
}

TEST_F(MediaTest, ReadOnlyMountKeepsLossesInMemory) {
  Format();
  Ino a = MakeFile("a", 2, 8);
  uint64_t bad = DeviceOffsetOf(a, 0);
  Remount({.read_only = true});
  auto rec = fs_->RecordMediaFailure(bad, kB, kFailureSimulated);
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  EXPECT_FALSE(rec->recorded);
  ASSERT_EQ(rec->owners.size(), 1u);
  EXPECT_EQ(ReadErrno(a, 0), EIO);
  EXPECT_EQ(ReadErrno(a, kB), 0);
  auto errors = fs_->MediaErrors();
  ASSERT_TRUE(errors.ok());
  EXPECT_EQ(errors->lost.size(), 1u);
  Remount();  // read-write, nothing was recorded
  EXPECT_EQ(ReadErrno(a, 0), 0);
}

TEST_F(MediaTest, UnrecordedDeviceBadBytesFailReads) {
  Format();
  Ino a = MakeFile("a", 2, 9);
  ASSERT_TRUE(dev_->InjectPoison(DeviceOffsetOf(a, 1) + 5, 1).ok());
  EXPECT_EQ(ReadErrno(a, 0, kB), 0);
  EXPECT_EQ(ReadErrno(a, kB, 10), EIO);
  EXPECT_EQ(ReadErrno(a, 0, 2 * kB), EIO);
}

TEST_F(MediaTest, ArgumentsAndRemoval) {
  Format();
  Ino a = MakeFile("a", 1, 10);
  EXPECT_EQ(fs_->RecordMediaFailure(0, 0, 0).status().code(), EINVAL);
  EXPECT_EQ(fs_->RecordMediaFailure(kDeviceSize, 1, 0).status().code(), ENXIO);
  // The one check of a failed range, wherever it enters.
  EXPECT_EQ(fs::CheckFailedRange(*dev_, 0, 0).status().code(), EINVAL);
  EXPECT_EQ(fs::CheckFailedRange(*dev_, kDeviceSize, 1).status().code(), ENXIO);
  EXPECT_NE(fs::CheckFailedRange(*dev_, kDeviceSize, 1).status().message().find("past the end"),
            std::string::npos);
  Result<DeviceRange> clipped = fs::CheckFailedRange(*dev_, kDeviceSize - kB, 2 * kB);
  ASSERT_TRUE(clipped.ok());
  EXPECT_EQ(clipped->offset, kDeviceSize - kB);
  EXPECT_EQ(clipped->length, kB);
  auto removed = fs_->RecordMediaFailure(DeviceOffsetOf(a, 0), kB, kFailureRemove);
  ASSERT_TRUE(removed.ok());
  EXPECT_FALSE(removed->recorded);
  EXPECT_EQ(removed->pieces.size(), 1u);
  EXPECT_EQ(ReadErrno(a, 0), 0);
  // A crossing range is clipped; the pieces cover what the device has.
  auto crossing = fs_->RecordMediaFailure(kDeviceSize - kB, 2 * kB, kFailureSimulated);
  ASSERT_TRUE(crossing.ok()) << crossing.status().ToString();
  ASSERT_EQ(crossing->pieces.size(), 1u);
  EXPECT_EQ(crossing->pieces[0].offset + crossing->pieces[0].length, kDeviceSize);
  auto pieces = impl()->ClassifyRange(0, kDeviceSize + kB);
  ASSERT_TRUE(pieces.ok());
  EXPECT_EQ(pieces->front().kind, RangeKind::kSuperblock);
  EXPECT_EQ(pieces->front().length, 2 * kB);
  EXPECT_EQ((*pieces)[1].kind, RangeKind::kMetadata);
  EXPECT_EQ(pieces->back().kind, RangeKind::kOutside);
}

// Randomized: files sharing blocks, random failures, random rewrites and removals; after each
// step, every lost (ino, block) reads EIO and every other written block reads its last bytes.
TEST_F(MediaTest, RandomFailuresAgainstAModel) {
  uint64_t seed = base::SeedFromEnv(20240917);
  std::cout << "seed " << seed << " (DAXFS_SEED to replay)\n";
  base::Random rng(seed);
  Format();
  constexpr int kFiles = 4, kBlocks = 8;
  std::vector<Ino> files;
  std::vector<std::vector<std::vector<uint8_t>>> model(kFiles);
  for (int f = 0; f < kFiles; ++f) {
    files.push_back(MakeFile("f" + std::to_string(f), kBlocks, static_cast<uint8_t>(f)));
    auto data = Pattern(kBlocks * kB, static_cast<uint8_t>(f));
    for (int b = 0; b < kBlocks; ++b)
      model[f].push_back({data.begin() + b * kB, data.begin() + (b + 1) * kB});
  }
  std::vector<std::vector<bool>> lost(kFiles, std::vector<bool>(kBlocks, false));
  for (int step = 0; step < 150; ++step) {
    int f = static_cast<int>(rng.Uniform(kFiles)), b = static_cast<int>(rng.Uniform(kBlocks));
    int op = static_cast<int>(rng.Uniform(3));
    if (op == 0) {  // clone one block to another file
      int g = static_cast<int>(rng.Uniform(kFiles)), c = static_cast<int>(rng.Uniform(kBlocks));
      if (g == f || lost[f][b]) continue;
      ASSERT_TRUE(fs_->CloneRange(files[f], b * kB, files[g], c * kB, kB).ok());
      model[g][c] = model[f][b];
      lost[g][c] = false;
    } else if (op == 1) {  // fail the block: every owner loses it
      uint64_t off = DeviceOffsetOf(files[f], b);
      Fail(off, kB);
      for (int g = 0; g < kFiles; ++g)
        for (int c = 0; c < kBlocks; ++c)
          if (DeviceOffsetOf(files[g], c) == off) lost[g][c] = true;
    } else {  // rewrite it
      auto data = Pattern(kB, static_cast<uint8_t>(rng.Uniform(256)));
      ASSERT_TRUE(fs_->Write(files[f], b * kB, data).ok());
      model[f][b] = data;
      lost[f][b] = false;
    }
    for (int g = 0; g < kFiles; ++g) {
      for (int c = 0; c < kBlocks; ++c) {
        if (lost[g][c]) {
          ASSERT_EQ(ReadErrno(files[g], c * kB), EIO)
              << "step " << step << " file " << g << " block " << c;
        } else {
          ASSERT_TRUE(ReadsAs(files[g], c * kB, model[g][c]))
              << "step " << step << " file " << g << " block " << c;
        }
      }
    }
  }
  auto check = fs_->Check();
  ASSERT_TRUE(check.ok());
  EXPECT_TRUE(check->ok()) << Joined(check->problems);
}

}  // namespace
}  // namespace daxfs
