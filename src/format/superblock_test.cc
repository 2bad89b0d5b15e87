#include "format/superblock.h"

#include <gtest/gtest.h>

#include <vector>

#include "base/coding.h"
#include "format/node.h"

namespace daxfs::format {
namespace {

Superblock Sample(uint64_t generation) {
  Superblock sb;
  sb.generation = generation;
  sb.device_size = 64ULL << 20;
  sb.chunk_size = 4ULL << 20;
  sb.chunk_count = 16;
  sb.uuid[0] = 0xab;
  sb.ro_compat = feature::kRoCompatRmap;
  std::snprintf(sb.label.data(), sb.label.size(), "test");
  sb.tree(TreeId::kChunks) = {.root = 7, .records = 3, .key_words = 1, .value_size = 8};
  return sb;
}

std::vector<uint8_t> Encoded(const Superblock& sb, uint64_t slot) {
  std::vector<uint8_t> block(kBlockSize);
  EncodeSuperblock(sb, slot, block.data());
  return block;
}

TEST(SuperblockTest, RoundTrip) {
  Superblock sb = Sample(5);
  auto block = Encoded(sb, 1);
  Result<Superblock> got = DecodeSuperblock(block.data(), 1);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->generation, 5u);
  EXPECT_EQ(got->device_size, sb.device_size);
  EXPECT_EQ(got->uuid, sb.uuid);
  EXPECT_EQ(got->Label(), "test");
  EXPECT_EQ(got->tree(TreeId::kChunks), sb.tree(TreeId::kChunks));
  EXPECT_TRUE(CheckGeometry(*got).ok());
}

TEST(SuperblockTest, EveryBitFlipIsDetected) {
  auto block = Encoded(Sample(5), 0);
  for (size_t byte = 0; byte < kBlockSize; byte += 61) {
    auto copy = block;
    copy[byte] ^= 0x04;
    EXPECT_FALSE(DecodeSuperblock(copy.data(), 0).ok()) << "flip at byte " << byte;
  }
}

TEST(SuperblockTest, WrongSlotIsMisdirected) {
  auto block = Encoded(Sample(5), 0);
  Result<Superblock> got = DecodeSuperblock(block.data(), 1);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), EUCLEAN);
  EXPECT_NE(got.status().message().find("misdirected"), std::string::npos);
}

TEST(SuperblockTest, SelectPicksNewestValid) {
  auto s0 = Encoded(Sample(8), 0);
  auto s1 = Encoded(Sample(9), 1);
  int slot = -1;
  Result<Superblock> got = SelectSuperblock(s0.data(), s1.data(), &slot);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(slot, 1);
  EXPECT_EQ(got->generation, 9u);
  s1[700] ^= 1;  // torn newest slot: fall back to the older one
  got = SelectSuperblock(s0.data(), s1.data(), &slot);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(slot, 0);
  EXPECT_EQ(got->generation, 8u);
}

TEST(SuperblockTest, SelectExplainsRefusal) {
  std::vector<uint8_t> zero(kBlockSize, 0);
  Result<Superblock> got = SelectSuperblock(zero.data(), zero.data(), nullptr);
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.status().message().find("not a daxfs image"), std::string::npos);

  auto s0 = Encoded(Sample(3), 0);
  s0[100] ^= 1;
  got = SelectSuperblock(s0.data(), zero.data(), nullptr);
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.status().message().find("checksum mismatch"), std::string::npos)
      << got.status().message();
}

TEST(SuperblockTest, GeometryChecks) {
  Superblock sb = Sample(1);
  sb.chunk_size = 3 << 20;
  EXPECT_FALSE(CheckGeometry(sb).ok());
  sb = Sample(1);
  sb.chunk_count = 3;
  EXPECT_FALSE(CheckGeometry(sb).ok());
  sb = Sample(1);
  sb.tree(TreeId::kScratch) = {.root = 1ULL << 40, .records = 1, .key_words = 2, .value_size = 8};
  EXPECT_FALSE(CheckGeometry(sb).ok());
}

TEST(SuperblockTest, SupportChecks) {
  bool ro = false;
  Superblock sb = Sample(1);
  EXPECT_TRUE(CheckSupported(sb, &ro).ok());
  sb.version = 99;
  Status s = CheckSupported(sb, &ro);
  EXPECT_EQ(s.code(), EOPNOTSUPP);
  EXPECT_NE(s.message().find("version 99"), std::string::npos);
  sb = Sample(1);
  sb.incompat = 1ULL << 40;
  EXPECT_EQ(CheckSupported(sb, &ro).code(), EOPNOTSUPP);
  EXPECT_FALSE(ro);
  sb = Sample(1);
  sb.ro_compat |= 1ULL << 33;
  EXPECT_EQ(CheckSupported(sb, &ro).code(), EROFS);
  EXPECT_TRUE(ro);
}

TEST(SuperblockTest, ChunkRecords) {
  uint8_t v[kChunkValueSize];
  EncodeChunkRecord({.type = ChunkType::kData, .partner = 0}, v);
  Result<ChunkRecord> r = DecodeChunkRecord(3, v);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->type, ChunkType::kData);
  EncodeChunkRecord({.type = ChunkType::kMetadataTwin, .partner = 9}, v);
  r = DecodeChunkRecord(3, v);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->type, ChunkType::kMetadataTwin);
  EXPECT_EQ(r->partner, 9u);
  EXPECT_STREQ(ChunkTypeName(ChunkType::kMetadataTwin), "METADATA_TWIN");
  base::EncodeU32(v, 77);
  r = DecodeChunkRecord(3, v);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("chunk 3"), std::string::npos);
}

TEST(SuperblockTest, LastChunkMayBeShort) {
  Superblock sb = Sample(1);
  sb.device_size = (64ULL << 20) + (1 << 20);
  sb.chunk_count = 17;
  EXPECT_TRUE(CheckGeometry(sb).ok());
  EXPECT_EQ(sb.ChunkBlockCount(15), sb.chunk_blocks());
  EXPECT_EQ(sb.ChunkBlockCount(16), (1u << 20) / kBlockSize);
}

Superblock WithTwins(TwinTable table) {
  Superblock sb = Sample(4);
  sb.ro_compat |= feature::kRoCompatMetadup;
  sb.SetTwins(std::move(table));
  return sb;
}

TEST(SuperblockTest, TwinTableRoundTripsAtOffset640) {
  Superblock sb = WithTwins({{0, 1}, {2, 9}, {3, 15}});
  ASSERT_TRUE(CheckGeometry(sb).ok()) << CheckGeometry(sb).ToString();
  auto block = Encoded(sb, 0);
  EXPECT_EQ(base::DecodeU32(block.data() + 640), 3u);
  EXPECT_EQ(base::DecodeU32(block.data() + 648 + 8), 2u);
  EXPECT_EQ(base::DecodeU32(block.data() + 648 + 12), 9u);
  for (size_t i = 168; i < 256; ++i) EXPECT_EQ(block[i], 0) << "reserved byte " << i;
  Result<Superblock> got = DecodeSuperblock(block.data(), 0);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->twins(), sb.twins());
  EXPECT_EQ(got->TwinOf(2), 9);
  EXPECT_EQ(got->TwinOf(9), -1);
  EXPECT_TRUE(got->metadup());
  EXPECT_TRUE(CheckGeometry(*got).ok());
}

TEST(SuperblockTest, WithoutMetadupTheBlockIsAsBefore) {
  auto block = Encoded(Sample(5), 0);
  for (size_t i = 640; i < kBlockSize; ++i) ASSERT_EQ(block[i], 0) << "byte " << i;
  EXPECT_TRUE(DecodeSuperblock(block.data(), 0)->twins().empty());
}

TEST(SuperblockTest, TwinTableChecks) {
  auto refused = [](Superblock sb, const char* what) {
    Status s = CheckGeometry(sb);
    EXPECT_EQ(s.code(), EUCLEAN) << what;
    EXPECT_NE(s.message().find(what), std::string::npos) << s.message();
  };
  refused(WithTwins({{2, 3}}), "chunk 0 has no twin");
  refused(WithTwins({{0, 1}, {1, 4}}), "more than one pair");
  refused(WithTwins({{0, 1}, {4, 1}}), "more than one pair");
  refused(WithTwins({{0, 1}, {5, 5}}), "its own twin");
  refused(WithTwins({{0, 16}}), "beyond the last chunk");
  refused(WithTwins({{3, 0}, {0, 1}}), "chunk 0 is a twin");
  Superblock plain = Sample(1);
  plain.SetTwins({{0, 1}});
  refused(plain, "without the metadup feature");
  // A twin must be at least as long as its primary: the short last chunk may only be a primary.
  Superblock sb = WithTwins({{0, 16}});
  sb.device_size = (64ULL << 20) + (1 << 20);
  sb.chunk_count = 17;
  refused(sb, "shorter than its primary");
  sb.SetTwins({{0, 1}, {16, 2}});
  EXPECT_TRUE(CheckGeometry(sb).ok());
  // A count beyond the block's room is refused when decoding.
  auto block = Encoded(WithTwins({{0, 1}}), 1);
  base::EncodeU32(block.data() + 640, kMaxTwinPairs + 1);
  SealBlock(block.data());
  Result<Superblock> got = DecodeSuperblock(block.data(), 1);
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.status().message().find("twin table"), std::string::npos);
}

TEST(SuperblockTest, FullTwinTableFits) {
  Superblock sb = Sample(2);
  sb.device_size = 1ULL << 30;
  sb.chunk_size = 1 << 20;
  sb.chunk_count = 1024;
  sb.ro_compat |= feature::kRoCompatMetadup;
  TwinTable table;
  for (uint32_t i = 0; i < kMaxTwinPairs; ++i) table.push_back({i, i + kMaxTwinPairs});
  sb.SetTwins(table);
  ASSERT_TRUE(CheckGeometry(sb).ok());
  auto block = Encoded(sb, 1);
  Result<Superblock> got = DecodeSuperblock(block.data(), 1);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->twins().size(), kMaxTwinPairs);
  EXPECT_EQ(got->twins().back(), table.back());
}

}  // namespace
}  // namespace daxfs::format
