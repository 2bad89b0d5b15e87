// AddressDirectory: lookups of registered ranges, layout updates, slot reuse, and a concurrent
// writer/reader stress (run under ASan, a reader touching a freed layout copy is caught).
#include "dax/address_directory.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <thread>
#include <vector>

#include "base/random.h"

namespace daxfs::dax {
namespace {

constexpr uint64_t kPage = 4096;
using fs::MapSegment;
using fs::SegmentKind;

uint8_t* FakeBase(uint64_t n) { return reinterpret_cast<uint8_t*>(0x100000000000ULL + n * (1ULL << 24)); }

TEST(AddressDirectory, LookupFindsSegmentAndOffsets) {
  fs::MapLayout layout = {
      {8 * kPage, 2 * kPage, SegmentKind::kData, 100 * kPage},
      {10 * kPage, 1 * kPage, SegmentKind::kZero, fs::kNoDevice},
      {11 * kPage, 1 * kPage, SegmentKind::kLost, 300 * kPage},
      {12 * kPage, 1 * kPage, SegmentKind::kLost, fs::kNoDevice},
      {13 * kPage, 3 * kPage, SegmentKind::kBeyondEof, fs::kNoDevice},
  };
  uint8_t* base = FakeBase(1);
  auto slot = AddressDirectory::Register(7, 42, base, 8 * kPage, 8 * kPage, layout);
  ASSERT_TRUE(slot.ok()) << slot.status().ToString();

  AddressInfo info;
  ASSERT_TRUE(AddressDirectory::Lookup(base + kPage + 17, &info));
  EXPECT_EQ(info.mapping_id, 7u);
  EXPECT_EQ(info.ino, 42u);
  EXPECT_EQ(info.page, base + kPage);
  EXPECT_EQ(info.file_offset, 9 * kPage);
  EXPECT_EQ(info.device_offset, 101 * kPage);
  EXPECT_EQ(info.kind, SegmentKind::kData);

  ASSERT_TRUE(AddressDirectory::Lookup(base + 2 * kPage, &info));
  EXPECT_EQ(info.kind, SegmentKind::kZero);
  EXPECT_EQ(info.device_offset, fs::kNoDevice);
  ASSERT_TRUE(AddressDirectory::Lookup(base + 3 * kPage + 4095, &info));
  EXPECT_EQ(info.kind, SegmentKind::kLost);
  EXPECT_EQ(info.device_offset, 300 * kPage);
  ASSERT_TRUE(AddressDirectory::Lookup(base + 4 * kPage, &info));
  EXPECT_EQ(info.kind, SegmentKind::kLost);
  EXPECT_EQ(info.device_offset, fs::kNoDevice);
  ASSERT_TRUE(AddressDirectory::Lookup(base + 8 * kPage - 1, &info));
  EXPECT_EQ(info.kind, SegmentKind::kBeyondEof);
  EXPECT_EQ(info.file_offset, 15 * kPage);

  EXPECT_FALSE(AddressDirectory::Lookup(base - 1, &info));
  EXPECT_FALSE(AddressDirectory::Lookup(base + 8 * kPage, &info));

  // The page goes bad: the layout changes to kLost, keeping its device bytes.
  fs::MapLayout fenced = layout;
  fenced[0] = {8 * kPage, 1 * kPage, SegmentKind::kData, 100 * kPage};
  fenced.insert(fenced.begin() + 1, MapSegment{9 * kPage, kPage, SegmentKind::kLost, 101 * kPage});
  AddressDirectory::UpdateLayout(*slot, fenced);
  ASSERT_TRUE(AddressDirectory::Lookup(base + kPage, &info));
  EXPECT_EQ(info.kind, SegmentKind::kLost);
  EXPECT_EQ(info.device_offset, 101 * kPage);
  ASSERT_TRUE(AddressDirectory::Lookup(base, &info));
  EXPECT_EQ(info.kind, SegmentKind::kData);

  AddressDirectory::Unregister(*slot);
  EXPECT_FALSE(AddressDirectory::Lookup(base + kPage, &info));
}

TEST(AddressDirectory, RejectsMalformedLayouts) {
  uint8_t* base = FakeBase(2);
  fs::MapLayout gap = {{0, kPage, SegmentKind::kData, 0}, {2 * kPage, kPage, SegmentKind::kZero}};
  EXPECT_EQ(AddressDirectory::Register(1, 1, base, 0, 3 * kPage, gap).status().code(), EINVAL);
  fs::MapLayout short_layout = {{0, kPage, SegmentKind::kData, 0}};
  EXPECT_EQ(AddressDirectory::Register(1, 1, base, 0, 2 * kPage, short_layout).status().code(),
            EINVAL);
  EXPECT_EQ(AddressDirectory::Register(1, 1, base + 1, 0, kPage, short_layout).status().code(),
            EINVAL);
}

TEST(AddressDirectory, SlotsAreReusedAndSeparate) {
  std::vector<size_t> slots;
  for (uint64_t i = 0; i < 100; ++i) {
    fs::MapLayout layout = {{0, kPage, SegmentKind::kData, i * kPage}};
    auto slot = AddressDirectory::Register(1000 + i, i, FakeBase(10 + i), 0, kPage, layout);
    ASSERT_TRUE(slot.ok());
    slots.push_back(*slot);
  }
  for (uint64_t i = 0; i < 100; ++i) {
    AddressInfo info;
    ASSERT_TRUE(AddressDirectory::Lookup(FakeBase(10 + i) + 5, &info));
    EXPECT_EQ(info.mapping_id, 1000 + i);
    EXPECT_EQ(info.device_offset, i * kPage);
  }
  for (size_t s : slots) AddressDirectory::Unregister(s);
  fs::MapLayout layout = {{0, kPage, SegmentKind::kData, 0}};
  auto again = AddressDirectory::Register(1, 1, FakeBase(10), 0, kPage, layout);
  ASSERT_TRUE(again.ok());
  EXPECT_LE(*again, slots.back());  // a freed slot, not a new one
  AddressDirectory::Unregister(*again);
}

// A layout for (mapping id, generation) whose every byte can be checked from the outside:
// device offset = id << 32 | file offset; the kinds change with the generation.
fs::MapLayout StressLayout(uint64_t id, uint64_t generation, uint64_t pages) {
  fs::MapLayout layout;
  for (uint64_t p = 0; p < pages;) {
    uint64_t n = std::min<uint64_t>(1 + (p + generation) % 3, pages - p);
    SegmentKind kind = (p / 2 + generation) % 3 == 0 ? SegmentKind::kLost : SegmentKind::kData;
    layout.push_back({p * kPage, n * kPage, kind, (id << 32) | (p * kPage)});
    p += n;
  }
  return layout;
}

TEST(AddressDirectory, ConcurrentWritersAndReadersStress) {
  const uint64_t seed = base::SeedFromEnv(20250605);
  std::printf("seed %llu\n", static_cast<unsigned long long>(seed));
  constexpr uint64_t kBases = 16;
  constexpr uint64_t kPages = 12;
  constexpr int kWriterSteps = 20000;
  std::atomic<bool> done{false};
  std::atomic<uint64_t> hits{0};
  std::atomic<uint64_t> bad{0};

  auto reader = [&](uint64_t reader_seed) {
    base::Random rnd(reader_seed);
    while (!done.load()) {
      uint64_t b = rnd.Uniform(kBases);
      uint64_t off = rnd.Uniform(kPages * kPage);
      AddressInfo info;
      if (!AddressDirectory::Lookup(FakeBase(100 + b) + off, &info)) continue;
      hits.fetch_add(1);
      // Mapping ids are b + kBases * k: the id must belong to this base.
      if (info.mapping_id % kBases != b || info.file_offset != (off & ~(kPage - 1)) ||
          info.device_offset != ((info.mapping_id << 32) | info.file_offset) ||
          (info.kind != SegmentKind::kData && info.kind != SegmentKind::kLost)) {
        bad.fetch_add(1);
      }
    }
  };
  std::thread r1(reader, seed + 1), r2(reader, seed + 2);

  base::Random rnd(seed);
  size_t slot_of[kBases];
  uint64_t id_of[kBases];
  bool live[kBases] = {};
  uint64_t next_round = 0;
  for (int step = 0; step < kWriterSteps; ++step) {
    uint64_t b = rnd.Uniform(kBases);
    if (!live[b]) {
      id_of[b] = b + kBases * (++next_round);
      auto slot = AddressDirectory::Register(id_of[b], b, FakeBase(100 + b), 0, kPages * kPage,
                                             StressLayout(id_of[b], 0, kPages));
      ASSERT_TRUE(slot.ok());
      slot_of[b] = *slot;
      live[b] = true;
    } else if (rnd.OneIn(4)) {
      AddressDirectory::Unregister(slot_of[b]);
      live[b] = false;
    } else {
      AddressDirectory::UpdateLayout(slot_of[b], StressLayout(id_of[b], step, kPages));
    }
  }
  done.store(true);
  r1.join();
  r2.join();
  for (uint64_t b = 0; b < kBases; ++b) {
    if (live[b]) AddressDirectory::Unregister(slot_of[b]);
  }
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_GT(hits.load(), 0u);
}

}  // namespace
}  // namespace daxfs::dax
