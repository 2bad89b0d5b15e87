#include "format/records.h"

#include <gtest/gtest.h>

#include <set>

namespace daxfs::format {
namespace {

TEST(RecordsTest, InodeRoundTrip) {
  Inode n{.ino = 9, .type = FileType::kDirectory, .mode = 0755, .uid = 1000, .gid = 100, .nlink = 3,
          .size = 12, .blocks = 7, .atime_ns = -5, .mtime_ns = 1, .ctime_ns = 2, .btime_ns = 3,
          .parent = 1, .flags = kInodeFlagReflinked, .generation = 4};
  uint8_t v[kInodeValueSize];
  EncodeInode(n, v);
  Result<Inode> got = DecodeInode(9, v);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->type, FileType::kDirectory);
  EXPECT_EQ(got->mode, 0755);
  EXPECT_EQ(got->uid, 1000u);
  EXPECT_EQ(got->nlink, 3u);
  EXPECT_EQ(got->atime_ns, -5);
  EXPECT_EQ(got->parent, 1u);
  EXPECT_EQ(got->generation, 4u);
}

TEST(RecordsTest, InodeRejectsGarbage) {
  uint8_t v[kInodeValueSize] = {};
  Result<Inode> got = DecodeInode(5, v);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), EUCLEAN);
  EXPECT_NE(got.status().message().find("inode 5"), std::string::npos);
  EncodeInode({.type = FileType::kRegular, .mode = 0644}, v);
  v[3] = 0xf0;  // mode beyond 07777
  EXPECT_FALSE(DecodeInode(5, v).ok());
}

TEST(RecordsTest, DirentRoundTripAndNameCompare) {
  uint8_t v[kDirentValueSize];
  std::string long_name(255, 'n');
  EncodeDirent({.ino = 77, .type = FileType::kSymlink, .name = long_name}, v);
  Result<Dirent> got = DecodeDirent(1, NameHashSlot(long_name), v);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->name, long_name);
  EXPECT_EQ(got->type, FileType::kSymlink);
  EXPECT_TRUE(DirentNameIs(v, long_name));
  EXPECT_FALSE(DirentNameIs(v, "n"));
  v[9] = 0;
  EXPECT_FALSE(DecodeDirent(1, 0, v).ok());
}

TEST(RecordsTest, HashSlotsLeaveRoomForCollisionsAndDotCookies) {
  std::set<uint64_t> seen;
  for (int i = 0; i < 10000; ++i) {
    uint64_t s = NameHashSlot("file" + std::to_string(i));
    EXPECT_EQ(s & kSlotCollisionMask, 0u);
    EXPECT_GT(s, 2u);
    seen.insert(s);
  }
  EXPECT_GT(seen.size(), 9990u);
}

TEST(RecordsTest, ExtentRoundTripAndValidation) {
  uint8_t v[kExtentValueSize];
  EncodeExtent({.device_block = 4096, .blocks = 16, .flags = kExtentUnwritten}, v);
  Result<ExtentRecord> got = DecodeExtent(3, 10, v);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->device_block, 4096u);
  EXPECT_EQ(got->blocks, 16u);
  EXPECT_EQ(got->flags, kExtentUnwritten);
  EncodeExtent({.device_block = 4096, .blocks = 0}, v);
  Result<ExtentRecord> bad = DecodeExtent(3, 10, v);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("inode 3 at file block 10"), std::string::npos);
}

TEST(RecordsTest, PoisonRecordsRoundTripAndValidation) {
  uint8_t v[kPoisonValueSize];
  EncodeLostValue({.ino = 7, .file_block = 3, .blocks = 2, .device_block = 900}, v);
  Result<LostRecord> lost = DecodeLost(7, 3, v);
  ASSERT_TRUE(lost.ok());
  EXPECT_EQ(lost->blocks, 2u);
  EXPECT_EQ(lost->device_block, 900u);
  EXPECT_FALSE(DecodeLost(0, 3, v).ok());
  EncodeLostValue({.blocks = 0, .device_block = 900}, v);
  Result<LostRecord> empty = DecodeLost(7, 3, v);
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), EUCLEAN);
  EXPECT_NE(empty.status().message().find("inode 7 at file block 3"), std::string::npos);

  EncodeBadValue({.device_block = 64, .blocks = 4, .flags = kBadHitFree}, v);
  Result<BadRecord> bad = DecodeBad(64, 0, v);
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->blocks, 4u);
  EXPECT_EQ(bad->flags, kBadHitFree);
  EXPECT_FALSE(DecodeBad(64, 1, v).ok());  // the key's last word must be zero
  EncodeBadValue({.blocks = 4, .flags = 0x80}, v);
  EXPECT_FALSE(DecodeBad(64, 0, v).ok());  // unknown flag
  EncodeBadValue({.blocks = UINT64_MAX, .flags = 0}, v);
  EXPECT_FALSE(DecodeBad(64, 0, v).ok());  // wraps past the end of the device space
}

}  // namespace
}  // namespace daxfs::format
