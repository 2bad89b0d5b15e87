#include "base/coding.h"

#include <gtest/gtest.h>

#include "base/checksum.h"

namespace daxfs::base {
namespace {

TEST(CodingTest, FixedRoundTripIsLittleEndian) {
  uint8_t buf[8];
  EncodeU32(buf, 0x01020304);
  EXPECT_EQ(buf[0], 0x04);
  EXPECT_EQ(DecodeU32(buf), 0x01020304u);
  EncodeU64(buf, 0x1122334455667788ULL);
  EXPECT_EQ(buf[0], 0x88);
  EXPECT_EQ(DecodeU64(buf), 0x1122334455667788ULL);
}

TEST(CodingTest, EncoderStopsAtEnd) {
  uint8_t buf[10] = {};
  Encoder e(buf, sizeof buf);
  e.PutU64(7);
  EXPECT_TRUE(e.ok());
  e.PutU32(9);  // does not fit
  EXPECT_FALSE(e.ok());
  EXPECT_EQ(e.pos(), 8u);
}

TEST(CodingTest, DecoderReportsOverrun) {
  uint8_t buf[12] = {};
  Encoder e(buf, sizeof buf);
  e.PutU64(42);
  e.PutU16(5);
  Decoder d(buf, sizeof buf);
  EXPECT_EQ(d.GetU64(), 42u);
  EXPECT_EQ(d.GetU16(), 5u);
  EXPECT_TRUE(d.ok());
  EXPECT_EQ(d.GetU32(), 0u);  // only 2 bytes left
  EXPECT_FALSE(d.ok());
}

TEST(ChecksumTest, DetectsSingleBitFlip) {
  uint8_t block[4096] = {};
  uint64_t a = Checksum64(block, sizeof block);
  block[1234] ^= 0x10;
  EXPECT_NE(a, Checksum64(block, sizeof block));
  EXPECT_NE(Checksum64(block, sizeof block, 1), Checksum64(block, sizeof block, 2));
}

}  // namespace
}  // namespace daxfs::base
