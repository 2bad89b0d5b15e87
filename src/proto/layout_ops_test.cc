// Layout validation, splicing and chunking for the protocol.
#include "proto/layout_ops.h"

#include <gtest/gtest.h>

#include "status_assert.h"

namespace daxfs::proto {
namespace {

constexpr uint64_t P = kPageSize;

TEST(LayoutOps, ValidateAcceptsAnExactCover) {
  std::vector<Segment> l = {{0, 2 * P, 10 * P, SegmentKind::kData},
                            {2 * P, P, kNoDevice, SegmentKind::kZero},
                            {3 * P, P, kNoDevice, SegmentKind::kBeyondEof}};
  EXPECT_OK(ValidateLayout(0, 4 * P, l, 100 * P));
}

TEST(LayoutOps, ValidateRefusesEveryBadShape) {
  const uint64_t dev = 100 * P;
  EXPECT_ERRNO(ValidateLayout(0, 0, {}, dev), EPROTO);
  EXPECT_ERRNO(ValidateLayout(1, P, {{1, P, 0, SegmentKind::kData}}, dev), EPROTO);
  EXPECT_ERRNO(ValidateLayout(0, 2 * P, {{0, P, 0, SegmentKind::kData}}, dev), EPROTO);  // short
  EXPECT_ERRNO(ValidateLayout(0, P, {{0, 2 * P, 0, SegmentKind::kData}}, dev), EPROTO);  // long
  EXPECT_ERRNO(
      ValidateLayout(0, 2 * P, {{0, P, 0, SegmentKind::kZero}, {2 * P, P, 0, SegmentKind::kZero}},
                     dev),
      EPROTO);  // gap
  EXPECT_ERRNO(ValidateLayout(0, P, {{0, 100, 0, SegmentKind::kZero}}, dev), EPROTO);
  EXPECT_ERRNO(ValidateLayout(0, P, {{0, P, kNoDevice, SegmentKind::kData}}, dev), EPROTO);
  EXPECT_ERRNO(ValidateLayout(0, P, {{0, P, 5, SegmentKind::kData}}, dev), EPROTO);
  EXPECT_ERRNO(ValidateLayout(0, P, {{0, P, dev, SegmentKind::kData}}, dev), EPROTO);
  EXPECT_ERRNO(ValidateLayout(0, 2 * P, {{0, 2 * P, dev - P, SegmentKind::kData}}, dev), EPROTO);
  EXPECT_ERRNO(ValidateLayout(0, P, {{0, P, ~0ULL - P + 1, SegmentKind::kData}}, dev), EPROTO);
  EXPECT_ERRNO(ValidateLayout(~0ULL - P + 1, P * 2, {}, dev), EPROTO);  // range wraps
}

TEST(LayoutOps, SpliceCutsAtBothEnds) {
  std::vector<Segment> l = {{0, 4 * P, 100 * P, SegmentKind::kData},
                            {4 * P, 4 * P, 200 * P, SegmentKind::kData}};
  SpliceLayout(
      &l, 2 * P, 4 * P,
      {{2 * P, P, kNoDevice, SegmentKind::kZero}, {3 * P, 3 * P, 50 * P, SegmentKind::kData}});
  std::vector<Segment> want = {{0, 2 * P, 100 * P, SegmentKind::kData},
                               {2 * P, P, kNoDevice, SegmentKind::kZero},
                               {3 * P, 3 * P, 50 * P, SegmentKind::kData},
                               {6 * P, 2 * P, 202 * P, SegmentKind::kData}};
  EXPECT_EQ(l, want);
  EXPECT_OK(ValidateLayout(0, 8 * P, l, 1000 * P));
}

TEST(LayoutOps, SpliceClipsAChangeWiderThanTheLayout) {
  std::vector<Segment> l = {{4 * P, 2 * P, 10 * P, SegmentKind::kData}};
  SpliceLayout(&l, 0, 100 * P, {{0, 100 * P, kNoDevice, SegmentKind::kBeyondEof}});
  EXPECT_EQ(l, (std::vector<Segment>{{4 * P, 2 * P, kNoDevice, SegmentKind::kBeyondEof}}));
  SpliceLayout(&l, 50 * P, P, {{50 * P, P, 0, SegmentKind::kData}});  // outside: no change
  EXPECT_EQ(l.size(), 1u);
}

TEST(LayoutOps, SliceAndChunk) {
  std::vector<Segment> l = {{0, 4 * P, 100 * P, SegmentKind::kData},
                            {4 * P, 4 * P, kNoDevice, SegmentKind::kZero}};
  EXPECT_EQ(SliceLayout(l, 3 * P, 2 * P),
            (std::vector<Segment>{{3 * P, P, 103 * P, SegmentKind::kData},
                                  {4 * P, P, kNoDevice, SegmentKind::kZero}}));
  std::vector<Segment> many(kMaxSegmentsPerMessage * 2 + 1);
  auto chunks = ChunkSegments(many);
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[2].size(), 1u);
  EXPECT_EQ(ChunkSegments({}).size(), 1u);
}

}  // namespace
}  // namespace daxfs::proto
