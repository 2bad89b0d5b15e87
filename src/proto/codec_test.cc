// Round trips of every protocol message and every kind of malformed input (truncated, oversize,
// bad magic, version, flags, type, lengths and counts past the body, bad enum values).
#include <gtest/gtest.h>

#include <cstring>

#include "base/coding.h"
#include "proto/message.h"
#include "status_assert.h"

namespace daxfs::proto {
namespace {

std::vector<Segment> SomeSegments(size_t n) {
  std::vector<Segment> out;
  for (size_t i = 0; i < n; ++i) {
    const auto kind = static_cast<SegmentKind>(1 + i % 4);
    out.push_back({i * 8192, 8192, kind == SegmentKind::kData ? i * 4096 : kNoDevice, kind});
  }
  return out;
}

// One filled-in example of every message type.
std::vector<Body> Samples() {
  return {
      Hello{1, 1, 4242, "probe"},
      HelloReply{1, kHelloDevicePmem | kHelloDeviceWritable, 4096, 1 << 30, 77, 5, 1024, 4096,
                 5000},
      ErrorReply{ENOENT, "/a/b: No such file or directory"},
      OkReply{},
      Open{kOpenRead | kOpenWrite, "/data/file"},
      OpenReply{3, 17, 65536, 0100644, 1000, 1000},
      Close{3},
      Map{3, 4096, 65536, kProtReadWrite},
      MapReply{9, 4096, 65536, kProtRead, 7, SomeSegments(7)},
      LayoutMore{9, 0, SomeSegments(3)},
      MapAck{9, 0x7f0000001000},
      Unmap{9},
      LayoutRecall{9, 2, 8192, 16384, 2, SomeSegments(2)},
      RecallAck{9, 2, 0},
      FailureNotice{9, 4096, 4096, 8192, 1 << 20, kNoticeActionRequired | kNoticeConsumed},
      ReportFault{9, 4100, 7, 4, kFaultFenceTrap, 12},
      InjectError{kInjectPath, 4096, 4096, "/data/original"},
      InjectReply{
          1 << 20,
          4096,
          kInjectShutDown,
          4,
          {{17, 4096, 4096, 1 << 20, true, "/data/copy1"}, {18, 0, 4096, 1 << 20, true, ""}},
          {{1 << 21, 4096}},
          {"recorded", "fenced 4 mappings"},
          "ok"},
      Errors{},
      ErrorsReply{{{17, 4096, 4096, 1 << 20, false, "/x"}},
                  {{8192, 4096}},
                  {{0, 4096, 1}},
                  {{8192, 4096}, {1 << 20, 4096}},
                  ""},
      StatusRequest{},
      StatusReply{
          77, kStatusPmem, 1 << 30, 5, 1, 9, {{1, 100, 0, 0, 2, 3}, {2, 101, 1000, 1000, 0, 0}}},
  };
}

TEST(Codec, EveryTypeRoundTrips) {
  const auto samples = Samples();
  ASSERT_EQ(samples.size(), std::variant_size_v<Body>);
  for (const Body& body : samples) {
    SCOPED_TRACE(MessageTypeName(TypeOf(body)));
    const std::vector<uint8_t> wire = Encode(body, 1234);
    auto decoded = Decode(wire);
    ASSERT_OK(decoded);
    EXPECT_EQ(decoded->header.type, TypeOf(body));
    EXPECT_EQ(decoded->header.request_id, 1234u);
    EXPECT_EQ(decoded->header.body_length, wire.size() - kHeaderSize);
    EXPECT_TRUE(decoded->body == body);
    EXPECT_EQ(Encode(decoded->body, 1234), wire);
  }
}

TEST(Codec, EveryTypeHasAName) {
  for (uint16_t t = 1; t <= 22; ++t) {
    EXPECT_TRUE(IsKnownType(t));
    EXPECT_STRNE(MessageTypeName(static_cast<MessageType>(t)), "unknown");
  }
  EXPECT_FALSE(IsKnownType(0));
  EXPECT_FALSE(IsKnownType(23));
}

TEST(Codec, ReportFaultEncodesWithoutAllocating) {
  ReportFault fault{5, 8192 + 17, 11, 2, kFaultFenceTrap, 12};
  uint8_t buf[128];
  EXPECT_EQ(EncodeReportFault(fault, buf, 10), 0u);
  const size_t n = EncodeReportFault(fault, buf, sizeof buf);
  ASSERT_GT(n, 0u);
  std::vector<uint8_t> expect = Encode(fault);
  ASSERT_EQ(n, expect.size());
  EXPECT_EQ(std::memcmp(buf, expect.data(), n), 0);
}

TEST(Codec, EveryTruncationIsAnErrorNeverACrash) {
  for (const Body& body : Samples()) {
    SCOPED_TRACE(MessageTypeName(TypeOf(body)));
    const std::vector<uint8_t> wire = Encode(body, 1);
    for (size_t n = 0; n < wire.size(); ++n) {
      std::vector<uint8_t> cut(wire.begin(), wire.begin() + n);
      EXPECT_ERRNO(Decode(cut), EPROTO) << n;
      // The same prefix with a header that claims exactly the bytes present: a short body.
      if (n >= kHeaderSize) {
        base::EncodeU32(cut.data() + 12, static_cast<uint32_t>(n - kHeaderSize));
        auto r = Decode(cut);
        if (n - kHeaderSize == 0 &&
            (TypeOf(body) == MessageType::kOk || TypeOf(body) == MessageType::kErrors ||
             TypeOf(body) == MessageType::kStatus)) {
          EXPECT_OK(r);
        } else {
          EXPECT_ERRNO(r, EPROTO) << n;
        }
      }
    }
  }
}

TEST(Codec, TrailingBytesAreRefused) {
  std::vector<uint8_t> wire = Encode(Close{3});
  wire.push_back(0);
  base::EncodeU32(wire.data() + 12, static_cast<uint32_t>(wire.size() - kHeaderSize));
  auto r = Decode(wire);
  EXPECT_ERRNO(r, EPROTO);
  EXPECT_NE(r.status().message().find("left over"), std::string::npos) << r.status().ToString();
}

TEST(Codec, HeaderErrors) {
  const std::vector<uint8_t> good = Encode(Unmap{4}, 9);
  auto with = [&](size_t at, uint16_t v) {
    std::vector<uint8_t> w = good;
    base::EncodeU16(w.data() + at, v);
    return w;
  };
  std::vector<uint8_t> magic = good;
  magic[0] ^= 1;
  EXPECT_ERRNO(Decode(magic), EPROTO);
  EXPECT_NE(Decode(magic).status().message().find("magic"), std::string::npos);
  EXPECT_ERRNO(Decode(with(4, 0)), EPROTO);
  auto v2 = Decode(with(4, kMaxVersion + 1));
  EXPECT_ERRNO(v2, EPROTO);
  EXPECT_NE(v2.status().message().find("version"), std::string::npos);
  // A Hello's body is frozen: it decodes under any header version, so it can be answered.
  std::vector<uint8_t> future_hello = Encode(Hello{3, 4, 0, "future"}, 1);
  base::EncodeU16(future_hello.data() + 4, kMaxVersion + 2);
  ASSERT_OK(Decode(future_hello));
  EXPECT_EQ(Decode(future_hello)->header.version, kMaxVersion + 2);
  base::EncodeU16(future_hello.data() + 4, 0);
  EXPECT_ERRNO(Decode(future_hello), EPROTO);
  EXPECT_ERRNO(Decode(with(8, 1)), EPROTO);   // flags
  EXPECT_ERRNO(Decode(with(10, 1)), EPROTO);  // reserved
  std::vector<uint8_t> longer = good;
  base::EncodeU32(longer.data() + 12, 9);  // claims one byte more than sent
  EXPECT_ERRNO(Decode(longer), EPROTO);
  std::vector<uint8_t> huge(kMaxMessage + 1, 0);
  std::memcpy(huge.data(), good.data(), kHeaderSize);
  EXPECT_ERRNO(Decode(huge), EMSGSIZE);
  EXPECT_ERRNO(Decode(std::vector<uint8_t>{}), EPROTO);
}

TEST(Codec, UnknownTypeDecodesItsHeaderOnly) {
  std::vector<uint8_t> w = Encode(Unmap{4}, 9);
  base::EncodeU16(w.data() + 6, 999);
  auto h = DecodeHeader(w);
  ASSERT_OK(h);
  EXPECT_EQ(h->request_id, 9u);
  EXPECT_FALSE(IsKnownType(static_cast<uint16_t>(h->type)));
  auto m = Decode(w);
  EXPECT_ERRNO(m, EOPNOTSUPP);
  EXPECT_NE(m.status().message().find("999"), std::string::npos);
}

// Sets the bytes at `at` of the body of `body`'s encoding and decodes it.
template <typename Fn>
Status Mutated(const Body& body, Fn&& mutate) {
  std::vector<uint8_t> w = Encode(body, 1);
  mutate(w);
  base::EncodeU32(w.data() + 12, static_cast<uint32_t>(w.size() - kHeaderSize));
  return Decode(w).status();
}

TEST(Codec, StringsAndListsPastTheBody) {
  // Open: flags u32, then path length u16 at body offset 4.
  EXPECT_ERRNO(
      Mutated(Open{kOpenRead, "/a"}, [](auto& w) { base::EncodeU16(w.data() + 28, 60000); }),
      EPROTO);
  // A string over kMaxString, even when the bytes are there.
  EXPECT_ERRNO(Mutated(Open{kOpenRead, "/a"},
                       [](auto& w) {
                         base::EncodeU16(w.data() + 28, kMaxString + 1);
                         w.resize(kHeaderSize + 6 + kMaxString + 1, 'x');
                       }),
               EPROTO);
  // MapReply: segment count u32 at body offset 29 + 4 claims more than the body holds.
  const Body reply = MapReply{9, 0, 8192, kProtRead, 1, SomeSegments(1)};
  EXPECT_ERRNO(Mutated(reply, [](auto& w) { base::EncodeU32(w.data() + kHeaderSize + 29, 1000); }),
               EPROTO);
  EXPECT_ERRNO(Mutated(reply, [](auto& w) { base::EncodeU32(w.data() + kHeaderSize + 29, ~0u); }),
               EPROTO);
  // total_segments smaller than the segments carried.
  EXPECT_ERRNO(Mutated(reply, [](auto& w) { base::EncodeU32(w.data() + kHeaderSize + 25, 0); }),
               EPROTO);
  // More segments in one message than allowed (even with the bytes present).
  MapReply many{
      9, 0, 8192, kProtRead, kMaxSegmentsPerMessage + 1, SomeSegments(kMaxSegmentsPerMessage + 1)};
  EXPECT_ERRNO(Decode(Encode(many)), EPROTO);
  // ErrorsReply: a list count of 2^32-1.
  EXPECT_ERRNO(
      Mutated(ErrorsReply{}, [](auto& w) { base::EncodeU32(w.data() + kHeaderSize, ~0u); }),
      EPROTO);
}

TEST(Codec, BadEnumValues) {
  auto seg_kind = [](uint8_t k) {
    return Mutated(MapReply{9, 0, 8192, kProtRead, 1, SomeSegments(1)},
                   [k](auto& w) { w[kHeaderSize + 33 + 24] = k; });
  };
  EXPECT_ERRNO(seg_kind(0), EPROTO);
  EXPECT_ERRNO(seg_kind(5), EPROTO);
  EXPECT_OK(seg_kind(2));
  EXPECT_ERRNO(Decode(Encode(Map{1, 0, 4096, 2})), EPROTO);           // prot
  EXPECT_ERRNO(Decode(Encode(Open{0, "/a"})), EPROTO);                // no access
  EXPECT_ERRNO(Decode(Encode(Open{8, "/a"})), EPROTO);                // unknown bit
  EXPECT_ERRNO(Decode(Encode(InjectError{3, 0, 4096, ""})), EPROTO);  // mode
  EXPECT_ERRNO(Decode(Encode(InjectError{kInjectPath, 0, 4096, ""})), EPROTO);
  EXPECT_ERRNO(Decode(Encode(InjectError{kInjectDevice, 0, 4096, "/a"})), EPROTO);
  EXPECT_ERRNO(Decode(Encode(Hello{2, 1, 0, ""})), EPROTO);                  // empty version range
  EXPECT_ERRNO(Decode(Encode(ErrorReply{0, "x"})), EPROTO);                  // not an errno
  EXPECT_ERRNO(Decode(Encode(LayoutRecall{1, 0, 0, 4096, 0, {}})), EPROTO);  // sequence 0
  EXPECT_ERRNO(Decode(Encode(LayoutMore{1, 0, {}})), EPROTO);                // no segments
  EXPECT_ERRNO(Decode(Encode(FailureNotice{1, 0, 4096, 0, 0, 8})), EPROTO);
  EXPECT_ERRNO(Decode(Encode(ReportFault{1, 0, 7, 4, 2, 12})), EPROTO);
  EXPECT_ERRNO(Decode(Encode(HelloReply{1, 8, 4096, 1, 1, 1, 1, 1, 1})), EPROTO);
}

TEST(Codec, LongStringsAreCutToTheLimit) {
  Open open{kOpenRead, std::string(kMaxString + 100, 'a')};
  auto m = Decode(Encode(open));
  ASSERT_OK(m);
  EXPECT_EQ(std::get<Open>(m->body).path.size(), kMaxString);
}

TEST(Codec, LargestLegalMessageFits) {
  MapReply reply{1,
                 0,
                 kMaxSegmentsPerMessage * 8192ull,
                 kProtRead,
                 kMaxSegmentsPerMessage,
                 SomeSegments(kMaxSegmentsPerMessage)};
  auto wire = Encode(reply);
  EXPECT_LE(wire.size(), kMaxMessage);
  EXPECT_OK(Decode(wire));
}

}  // namespace
}  // namespace daxfs::proto
