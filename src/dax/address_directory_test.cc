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

using fs::MapSegment;
using fs::SegmentKind;

uint8_t* FakeBase(uint64_t n) { return reinterpret_cast<uint8_t*>(0x100000000000ULL + n * (1ULL << 24)); }

TEST(AddressDirectory, LookupFindsSegmentAndOffsets) {
  fs::MapLayout layout = {
      {8 * fs::kPageBytes, 2 * fs::kPageBytes, SegmentKind::kData, 100 * fs::kPageBytes},
      {10 * fs::kPageBytes, 1 * fs::kPageBytes, SegmentKind::kZero, fs::kNoDevice},
      {11 * fs::kPageBytes, 1 * fs::kPageBytes, SegmentKind::kLost, 300 * fs::kPageBytes},
      {12 * fs::kPageBytes, 1 * fs::kPageBytes, SegmentKind::kLost, fs::kNoDevice},
      {13 * fs::kPageBytes, 3 * fs::kPageBytes, SegmentKind::kBeyondEof, fs::kNoDevice},
  };
  uint8_t* base = FakeBase(1);
  auto slot = AddressDirectory::Register(7, 42, base, 8 * fs::kPageBytes, 8 * fs::kPageBytes, layout);
  ASSERT_TRUE(slot.ok()) << slot.status().ToString();

  AddressInfo info;
  ASSERT_TRUE(AddressDirectory::Lookup(base + fs::kPageBytes + 17, &info));
  EXPECT_EQ(info.mapping_id, 7u);
  EXPECT_EQ(info.ino, 42u);
  EXPECT_EQ(info.page, base + fs::kPageBytes);
  EXPECT_EQ(info.file_offset, 9 * fs::kPageBytes);
  EXPECT_EQ(info.device_offset, 101 * fs::kPageBytes);
  EXPECT_EQ(info.kind, SegmentKind::kData);

  ASSERT_TRUE(AddressDirectory::Lookup(base + 2 * fs::kPageBytes, &info));
  EXPECT_EQ(info.kind, SegmentKind::kZero);
  EXPECT_EQ(info.device_offset, fs::kNoDevice);
  ASSERT_TRUE(AddressDirectory::Lookup(base + 3 * fs::kPageBytes + 4095, &info));
  EXPECT_EQ(info.kind, SegmentKind::kLost);
  EXPECT_EQ(info.device_offset, 300 * fs::kPageBytes);
  ASSERT_TRUE(AddressDirectory::Lookup(base + 4 * fs::kPageBytes, &info));
  EXPECT_EQ(info.kind, SegmentKind::kLost);
  EXPECT_EQ(info.device_offset, fs::kNoDevice);
  ASSERT_TRUE(AddressDirectory::Lookup(base + 8 * fs::kPageBytes - 1, &info));
  EXPECT_EQ(info.kind, SegmentKind::kBeyondEof);
  EXPECT_EQ(info.file_offset, 15 * fs::kPageBytes);

  EXPECT_FALSE(AddressDirectory::Lookup(base - 1, &info));
  EXPECT_FALSE(AddressDirectory::Lookup(base + 8 * fs::kPageBytes, &info));

  // The page goes bad: the layout changes to kLost, keeping its device bytes.
  fs::MapLayout fenced = layout;
  fenced[0] = {8 * fs::kPageBytes, 1 * fs::kPageBytes, SegmentKind::kData, 100 * fs::kPageBytes};
  fenced.insert(fenced.begin() + 1, MapSegment{9 * fs::kPageBytes, fs::kPageBytes, SegmentKind::kLost, 101 * fs::kPageBytes});
  AddressDirectory::UpdateLayout(*slot, fenced);
  ASSERT_TRUE(AddressDirectory::Lookup(base + fs::kPageBytes, &info));
  EXPECT_EQ(info.kind, SegmentKind::kLost);
  EXPECT_EQ(info.device_offset, 101 * fs::kPageBytes);
  ASSERT_TRUE(AddressDirectory::Lookup(base, &info));
  EXPECT_EQ(info.kind, SegmentKind::kData);

  AddressDirectory::Unregister(*slot);
  EXPECT_FALSE(AddressDirectory::Lookup(base + fs::kPageBytes, &info));
}

TEST(AddressDirectory, RejectsMalformedLayouts) {
  uint8_t* base = FakeBase(2);
  fs::MapLayout gap = {{0, fs::kPageBytes, SegmentKind::kData, 0}, {2 * fs::kPageBytes, fs::kPageBytes, SegmentKind::kZero}};
  EXPECT_EQ(AddressDirectory::Register(1, 1, base, 0, 3 * fs::kPageBytes, gap).status().code(), EINVAL);
  fs::MapLayout short_layout = {{0, fs::kPageBytes, SegmentKind::kData, 0}};
  EXPECT_EQ(AddressDirectory::Register(1, 1, base, 0, 2 * fs::kPageBytes, short_layout).status().code(),
            EINVAL);
  EXPECT_EQ(AddressDirectory::Register(1, 1, base + 1, 0, fs::kPageBytes, short_layout).status().code(),
            EINVAL);
}

TEST(AddressDirectory, SlotsAreReusedAndSeparate) {
  std::vector<size_t> slots;
  for (uint64_t i = 0; i < 100; ++i) {
    fs::MapLayout layout = {{0, fs::kPageBytes, SegmentKind::kData, i * fs::kPageBytes}};
    auto slot = AddressDirectory::Register(1000 + i, i, FakeBase(10 + i), 0, fs::kPageBytes, layout);
    ASSERT_TRUE(slot.ok());
    slots.push_back(*slot);
  }
  for (uint64_t i = 0; i < 100; ++i) {
    AddressInfo info;
    ASSERT_TRUE(AddressDirectory::Lookup(FakeBase(10 + i) + 5, &info));
    EXPECT_EQ(info.mapping_id, 1000 + i);
    EXPECT_EQ(info.device_offset, i * fs::kPageBytes);
  }
  for (size_t s : slots) AddressDirectory::Unregister(s);
  fs::MapLayout layout = {{0, fs::kPageBytes, SegmentKind::kData, 0}};
  auto again = AddressDirectory::Register(1, 1, FakeBase(10), 0, fs::kPageBytes, layout);
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
    layout.push_back({p * fs::kPageBytes, n * fs::kPageBytes, kind, (id << 32) | (p * fs::kPageBytes)});
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
      uint64_t off = rnd.Uniform(kPages * fs::kPageBytes);
      AddressInfo info;
      if (!AddressDirectory::Lookup(FakeBase(100 + b) + off, &info)) continue;
      hits.fetch_add(1);
      // Mapping ids are b + kBases * k: the id must belong to this base.
      if (info.mapping_id % kBases != b || info.file_offset != (off & ~(fs::kPageBytes - 1)) ||
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
      auto slot = AddressDirectory::Register(id_of[b], b, FakeBase(100 + b), 0, kPages * fs::kPageBytes,
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
  // The readers must have seen something: keep one mapping live until they have (no timing
  // assumption: they spin until they hit it).
  if (!live[0]) {
    id_of[0] = kBases * (++next_round);
    auto slot = AddressDirectory::Register(id_of[0], 0, FakeBase(100), 0, kPages * fs::kPageBytes,
                                           StressLayout(id_of[0], 0, kPages));
    ASSERT_TRUE(slot.ok());
    slot_of[0] = *slot;
    live[0] = true;
  }
  while (hits.load() == 0) std::this_thread::yield();
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
