// Tests for the common node header and block checksums (node.cc): every way a block can be
// wrong is reported as EUCLEAN naming the block.
#include "format/node.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <cstring>

#include "base/coding.h"

namespace daxfs::format {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kBlockno = 1234;

class NodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (size_t i = 0; i < block_.size(); ++i) block_[i] = static_cast<uint8_t>(i * 7 + 3);
    NodeHeader h;
    h.type = BlockType::kBTreeNode;
    h.blockno = kBlockno;
    h.generation = 77;
    EncodeNodeHeader(h, block_.data());
    SealBlock(block_.data());
  }
  Status Verify() { return VerifyBlock(block_.data(), BlockType::kBTreeNode, kBlockno); }

  alignas(64) std::array<uint8_t, kBlockSize> block_;
};

TEST_F(NodeTest, HeaderRoundTrip) {
  NodeHeader h = DecodeNodeHeader(block_.data());
  EXPECT_EQ(h.magic, kNodeMagic);
  EXPECT_EQ(h.type, BlockType::kBTreeNode);
  EXPECT_EQ(h.flags, 0);
  EXPECT_EQ(h.blockno, kBlockno);
  EXPECT_EQ(h.generation, 77u);
  EXPECT_EQ(h.checksum, ComputeBlockChecksum(block_.data()));
  // Byte layout as documented: magic at 0, type at 4, blockno at 16, generation at 24.
  EXPECT_EQ(base::DecodeU32(block_.data()), kNodeMagic);
  EXPECT_EQ(base::DecodeU16(block_.data() + 4), 2);
  EXPECT_EQ(base::DecodeU64(block_.data() + 16), kBlockno);
  EXPECT_EQ(base::DecodeU64(block_.data() + 24), 77u);
  EXPECT_EQ(std::memcmp(block_.data(), "DXFS", 4), 0);
}

TEST_F(NodeTest, SealedBlockVerifies) { EXPECT_TRUE(Verify().ok()) << Verify().ToString(); }

TEST_F(NodeTest, ChecksumCoversMagicSeedAndPayloadButNotItself) {
  uint64_t before = ComputeBlockChecksum(block_.data());
  block_[8] ^= 1;  // inside the checksum field: not part of the checksum
  EXPECT_EQ(ComputeBlockChecksum(block_.data()), before);
  block_[8] ^= 1;
  block_[kBlockSize - 1] ^= 1;
  EXPECT_NE(ComputeBlockChecksum(block_.data()), before);
}

// A flipped bit anywhere in the block is caught, and the error names the block.
TEST_F(NodeTest, EveryFlippedBitIsCorruption) {
  for (uint32_t byte = 0; byte < kBlockSize; ++byte) {
    for (int bit = 0; bit < 8; bit += (byte < 64 ? 1 : 3)) {
      block_[byte] ^= uint8_t(1u << bit);
      Status s = Verify();
      ASSERT_EQ(s.code(), EUCLEAN) << "byte " << byte << " bit " << bit;
      ASSERT_THAT(s.message(), HasSubstr("block 1234")) << s.message();
      block_[byte] ^= uint8_t(1u << bit);
    }
  }
  EXPECT_TRUE(Verify().ok());
}

TEST_F(NodeTest, WrongMagicIsCorruption) {
  base::EncodeU32(block_.data(), 0x12345678);
  SealBlock(block_.data());
  Status s = Verify();
  EXPECT_EQ(s.code(), EUCLEAN);
  EXPECT_THAT(s.message(), HasSubstr("block 1234"));
  EXPECT_THAT(s.message(), HasSubstr("magic"));
}

TEST_F(NodeTest, WrongTypeIsCorruption) {
  base::EncodeU16(block_.data() + 4, static_cast<uint16_t>(BlockType::kSuperblock));
  SealBlock(block_.data());
  Status s = Verify();
  EXPECT_EQ(s.code(), EUCLEAN);
  EXPECT_THAT(s.message(), HasSubstr("block 1234"));
  EXPECT_THAT(s.message(), HasSubstr("type 1"));
}

TEST_F(NodeTest, WrongBlocknoIsCorruption) {
  // A correct, sealed block read from the wrong place (a misdirected write or read).
  Status s = VerifyBlock(block_.data(), BlockType::kBTreeNode, kBlockno + 1);
  EXPECT_EQ(s.code(), EUCLEAN);
  EXPECT_THAT(s.message(), HasSubstr("block 1235"));
  EXPECT_THAT(s.message(), HasSubstr("1234"));
}

TEST_F(NodeTest, ChecksumMismatchNamesBothValues) {
  block_[100] ^= 0x10;
  Status s = Verify();
  EXPECT_EQ(s.code(), EUCLEAN);
  EXPECT_THAT(s.message(), HasSubstr("checksum mismatch"));
}

TEST_F(NodeTest, ResealAfterChangeVerifies) {
  block_[2000] ^= 0xFF;
  EXPECT_FALSE(Verify().ok());
  SealBlock(block_.data());
  EXPECT_TRUE(Verify().ok());
}

}  // namespace
}  // namespace daxfs::format
