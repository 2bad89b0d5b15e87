// page-rmap and extent-space against a brute-force oracle: random files whose pages share a small
// device (clones, many mappings of one block, overlapping mappings of one file), mapped and
// unmapped, their layouts changed under live mappings (the Leave/Join a mapping table would
// make), and every query answered from the live mappings' pages directly.
#include "tracking/trackers.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <thread>
#include <vector>

#include "base/random.h"

namespace daxfs::tracking {
namespace {

constexpr uint64_t kHole = ~0ULL;

struct Design {
  const char* name;
  std::unique_ptr<dax::OwnerTracker> (*make)();
};
const Design kDesigns[] = {{"page-rmap", NewPageRmapTracker},
                           {"extent-space", NewExtentSpaceTracker}};

// A file: device page of every file page (kHole for a hole).
using FileLayout = std::vector<uint64_t>;

struct LiveMapping {
  dax::TrackedMapping m;
  size_t file;
  uint64_t first_page;  // file page of m.base
  uint64_t pages;
};

// The kData segments of file pages [from, to) (contiguous device pages merged).
std::vector<fs::MapSegment> Segments(const FileLayout& file, uint64_t from, uint64_t to) {
  std::vector<fs::MapSegment> out;
  for (uint64_t p = from; p < to; ++p) {
    if (file[p] == kHole) continue;
    if (!out.empty()) {
      fs::MapSegment& last = out.back();
      if (last.file_offset + last.length == p * fs::kPageBytes &&
          last.device_offset + last.length == file[p] * fs::kPageBytes) {
        last.length += fs::kPageBytes;
        continue;
      }
    }
    out.push_back({p * fs::kPageBytes, fs::kPageBytes, fs::SegmentKind::kData, file[p] * fs::kPageBytes});
  }
  return out;
}

std::vector<Victim> Oracle(const std::vector<FileLayout>& files,
                           const std::vector<LiveMapping>& live, uint64_t offset,
                           uint64_t length) {
  std::vector<Victim> out;
  if (length == 0) return out;
  uint64_t first = offset / fs::kPageBytes, end = (offset + length + fs::kPageBytes - 1) / fs::kPageBytes;
  for (const LiveMapping& lm : live) {
    for (uint64_t i = 0; i < lm.pages; ++i) {
      uint64_t fp = lm.first_page + i;
      uint64_t dev = files[lm.file][fp];
      if (dev == kHole || dev < first || dev >= end) continue;
      out.push_back(Victim{lm.m.id, lm.m.base + i * fs::kPageBytes, fs::kPageBytes, lm.m.ino, fp * fs::kPageBytes,
                           dev * fs::kPageBytes});
    }
  }
  dax::NormalizeVictims(&out);
  return out;
}

class Model {
 public:
  Model(uint64_t seed, uint64_t device_pages) : rnd_(seed), device_pages_(device_pages) {
    for (int f = 0; f < 4; ++f) {
      files_.push_back(FileLayout(kFilePages, kHole));
      Write(f, 0, kFilePages);
    }
    for (const Design& d : kDesigns) trackers_.push_back(d.make());
  }

  void Step() {
    switch (rnd_.Uniform(8)) {
      case 0:
      case 1:
        Map();
        break;
      case 2:
        if (!live_.empty()) Unmap(rnd_.Uniform(live_.size()));
        break;
      case 3: {  // copy-on-write by write(): fresh device pages (possibly a run)
        const Range r = RandomRange();
        Relayout(r, [&] { Write(r.file, r.from, r.to); });
        break;
      }
      case 4: {  // punch
        const Range r = RandomRange();
        Relayout(r, [&] {
          for (uint64_t p = r.from; p < r.to; ++p) files_[r.file][p] = kHole;
        });
        break;
      }
      case 5: {  // clone a range of another file (or the same one) over it: shared blocks
        const Range r = RandomRange();
        size_t src = rnd_.Uniform(files_.size());
        uint64_t src_from = rnd_.Uniform(kFilePages - (r.to - r.from) + 1);
        FileLayout copy(files_[src].begin() + src_from,
                        files_[src].begin() + src_from + (r.to - r.from));
        Relayout(r, [&] {
          for (uint64_t p = r.from; p < r.to; ++p) files_[r.file][p] = copy[p - r.from];
        });
        break;
      }
      default:
        Query();
    }
  }

  void Query() {
    uint64_t offset = rnd_.Uniform(device_pages_ * fs::kPageBytes);
    uint64_t length = rnd_.Uniform(8 * fs::kPageBytes);
    if (rnd_.OneIn(8)) length = device_pages_ * fs::kPageBytes;  // everything
    Check(offset, length);
  }

  void Check(uint64_t offset, uint64_t length) {
    std::vector<Victim> want = Oracle(files_, live_, offset, length);
    for (size_t d = 0; d < trackers_.size(); ++d) {
      auto got = trackers_[d]->FindVictims(offset, length);
      ASSERT_TRUE(got.ok());
      ASSERT_EQ(*got, want) << kDesigns[d].name << " offset " << offset << " length " << length;
    }
  }

  void UnmapAll() {
    while (!live_.empty()) Unmap(live_.size() - 1);
  }

  const std::vector<std::unique_ptr<dax::OwnerTracker>>& trackers() const { return trackers_; }
  size_t live() const { return live_.size(); }

 private:
  static constexpr uint64_t kFilePages = 24;

  struct Range {
    size_t file;
    uint64_t from, to;  // file pages
  };
  Range RandomRange() {
    size_t f = rnd_.Uniform(files_.size());
    uint64_t from = rnd_.Uniform(kFilePages);
    uint64_t to = from + 1 + rnd_.Uniform(std::min<uint64_t>(6, kFilePages - from));
    return {f, from, to};
  }

  void Write(size_t f, uint64_t from, uint64_t to) {
    uint64_t dev = rnd_.Uniform(device_pages_);
    for (uint64_t p = from; p < to; ++p) {
      if (rnd_.OneIn(3)) dev = rnd_.Uniform(device_pages_);  // break the run now and then
      files_[f][p] = dev;
      dev = (dev + 1) % device_pages_;
    }
  }

  void Map() {
    size_t f = rnd_.Uniform(files_.size());
    uint64_t first = rnd_.Uniform(kFilePages);
    uint64_t pages = 1 + rnd_.Uniform(kFilePages - first);
    LiveMapping lm;
    lm.m.id = ++next_id_;
    lm.m.ino = 100 + f;
    lm.m.base = reinterpret_cast<uint8_t*>(0x200000000000ULL + lm.m.id * (1ULL << 24));
    lm.m.file_offset = first * fs::kPageBytes;
    lm.m.length = pages * fs::kPageBytes;
    lm.file = f;
    lm.first_page = first;
    lm.pages = pages;
    auto segs = Segments(files_[f], first, first + pages);
    for (auto& t : trackers_) t->Join(lm.m, segs);
    live_.push_back(lm);
  }

  void Unmap(size_t i) {
    const LiveMapping& lm = live_[i];
    auto segs = Segments(files_[lm.file], lm.first_page, lm.first_page + lm.pages);
    for (auto& t : trackers_) t->Leave(lm.m, segs);
    live_.erase(live_.begin() + static_cast<ptrdiff_t>(i));
  }

  // What a mapping table does on LayoutChanged: every live mapping of the file leaves the old
  // pages of the changed range and joins the new ones.
  template <typename Change>
  void Relayout(const Range& r, Change change) {
    const size_t f = r.file;
    const uint64_t from = r.from, to = r.to;
    std::vector<std::pair<size_t, std::vector<fs::MapSegment>>> old;
    for (size_t i = 0; i < live_.size(); ++i) {
      const LiveMapping& lm = live_[i];
      if (lm.file != f) continue;
      uint64_t a = std::max(from, lm.first_page), b = std::min(to, lm.first_page + lm.pages);
      if (a < b) old.emplace_back(i, Segments(files_[f], a, b));
    }
    change();
    for (const auto& entry : old) {
      const LiveMapping& lm = live_[entry.first];
      uint64_t a = std::max(from, lm.first_page), b = std::min(to, lm.first_page + lm.pages);
      for (auto& t : trackers_) t->Leave(lm.m, entry.second);
      auto segs = Segments(files_[f], a, b);
      for (auto& t : trackers_) t->Join(lm.m, segs);
    }
  }

  base::Random rnd_;
  uint64_t device_pages_;
  std::vector<FileLayout> files_;
  std::vector<LiveMapping> live_;
  std::vector<std::unique_ptr<dax::OwnerTracker>> trackers_;
  uint64_t next_id_ = 0;
};

TEST(Trackers, RandomJoinLeaveMatchesOracle) {
  const uint64_t seed = base::SeedFromEnv(7001);
  std::printf("seed %llu (DAXFS_SEED to replay)\n", static_cast<unsigned long long>(seed));
  for (uint64_t round = 0; round < 20; ++round) {
    SCOPED_TRACE(testing::Message() << "seed " << seed << " round " << round);
    // A small device: most blocks have many owners.
    Model model(seed * 1000 + round, round % 2 == 0 ? 16 : 64);
    for (int step = 0; step < 1500; ++step) {
      model.Step();
      if (testing::Test::HasFatalFailure()) return;
    }
    for (uint64_t off = 0; off < 64 * fs::kPageBytes; off += fs::kPageBytes) model.Check(off, fs::kPageBytes);
    model.UnmapAll();
    model.Check(0, 64 * fs::kPageBytes);
    for (const auto& t : model.trackers()) {
      EXPECT_EQ(t->TrackingBytes(), 0u) << static_cast<int>(t->design());
    }
  }
}

TEST(Trackers, ManyMappingsOfOneBlock) {
  for (const Design& d : kDesigns) {
    auto t = d.make();
    std::vector<dax::TrackedMapping> maps;
    for (uint64_t i = 0; i < 50; ++i) {
      dax::TrackedMapping m{i + 1, 7, reinterpret_cast<uint8_t*>((i + 1) << 30), i * fs::kPageBytes, fs::kPageBytes};
      fs::MapSegment s{i * fs::kPageBytes, fs::kPageBytes, fs::SegmentKind::kData, 9 * fs::kPageBytes};
      t->Join(m, {&s, 1});
      maps.push_back(m);
    }
    EXPECT_GT(t->TrackingBytes(), 0u);
    auto v = t->FindVictims(9 * fs::kPageBytes + 100, 1);
    ASSERT_TRUE(v.ok());
    ASSERT_EQ(v->size(), 50u) << d.name;
    EXPECT_EQ((*v)[3], (Victim{4, reinterpret_cast<uint8_t*>(4ULL << 30), fs::kPageBytes, 7, 3 * fs::kPageBytes,
                               9 * fs::kPageBytes}));
    EXPECT_TRUE(t->FindVictims(8 * fs::kPageBytes, fs::kPageBytes)->empty());
    EXPECT_TRUE(t->FindVictims(9 * fs::kPageBytes, 0)->empty());
    for (size_t i = 0; i < maps.size(); ++i) {
      fs::MapSegment s{i * fs::kPageBytes, fs::kPageBytes, fs::SegmentKind::kData, 9 * fs::kPageBytes};
      t->Leave(maps[i], {&s, 1});
    }
    EXPECT_TRUE(t->FindVictims(0, 100 * fs::kPageBytes)->empty());
    EXPECT_EQ(t->TrackingBytes(), 0u) << d.name;
  }
}

TEST(Trackers, VictimsAreClippedAndMerged) {
  for (const Design& d : kDesigns) {
    auto t = d.make();
    uint8_t* base = reinterpret_cast<uint8_t*>(1ULL << 40);
    dax::TrackedMapping m{5, 3, base, 8 * fs::kPageBytes, 16 * fs::kPageBytes};
    // File pages 8..15 at device 100..107; 16..23 at device 104..111 (a clone within the file).
    fs::MapSegment segs[] = {{8 * fs::kPageBytes, 8 * fs::kPageBytes, fs::SegmentKind::kData, 100 * fs::kPageBytes},
                             {16 * fs::kPageBytes, 8 * fs::kPageBytes, fs::SegmentKind::kData, 104 * fs::kPageBytes}};
    t->Join(m, segs);
    auto v = t->FindVictims(105 * fs::kPageBytes + 1, 2 * fs::kPageBytes);  // widened to pages 105..107
    ASSERT_TRUE(v.ok());
    std::vector<Victim> want = {
        {5, base + 5 * fs::kPageBytes, 3 * fs::kPageBytes, 3, 13 * fs::kPageBytes, 105 * fs::kPageBytes},
        {5, base + 9 * fs::kPageBytes, 3 * fs::kPageBytes, 3, 17 * fs::kPageBytes, 105 * fs::kPageBytes},
    };
    EXPECT_EQ(*v, want) << d.name;
    t->Leave(m, segs);
    EXPECT_EQ(t->TrackingBytes(), 0u) << d.name;
  }
}

// A mapping of part of a shared extent splits its registry; leaving merges it back, so the
// memory returns to exactly what it was (and a mapping joined in two halves costs one registry).
TEST(Trackers, SplitsMergeBack) {
  for (const Design& d : kDesigns) {
    auto t = d.make();
    uint8_t* base = reinterpret_cast<uint8_t*>(1ULL << 40);
    dax::TrackedMapping a{1, 3, base, 0, 8 * fs::kPageBytes};
    fs::MapSegment whole{0, 8 * fs::kPageBytes, fs::SegmentKind::kData, 100 * fs::kPageBytes};
    t->Join(a, {&whole, 1});
    const uint64_t one = t->TrackingBytes();
    dax::TrackedMapping b{2, 4, base + (1ULL << 30), 2 * fs::kPageBytes, 3 * fs::kPageBytes};
    fs::MapSegment part{2 * fs::kPageBytes, 3 * fs::kPageBytes, fs::SegmentKind::kData, 102 * fs::kPageBytes};
    t->Join(b, {&part, 1});
    EXPECT_GT(t->TrackingBytes(), one) << d.name;
    t->Leave(b, {&part, 1});
    EXPECT_EQ(t->TrackingBytes(), one) << d.name;
    // a leaves in two pieces and rejoins in two pieces: back to the same memory.
    fs::MapSegment lo{0, 3 * fs::kPageBytes, fs::SegmentKind::kData, 100 * fs::kPageBytes};
    fs::MapSegment hi{3 * fs::kPageBytes, 5 * fs::kPageBytes, fs::SegmentKind::kData, 103 * fs::kPageBytes};
    t->Leave(a, {&lo, 1});
    t->Leave(a, {&hi, 1});
    EXPECT_EQ(t->TrackingBytes(), 0u) << d.name;
    t->Join(a, {&hi, 1});
    t->Join(a, {&lo, 1});
    EXPECT_EQ(t->TrackingBytes(), one) << d.name;
    t->Leave(a, {&whole, 1});
    EXPECT_EQ(t->TrackingBytes(), 0u) << d.name;
  }
}

// FindVictims runs while another thread joins and leaves (under ASan/TSan this checks locking).
TEST(Trackers, FindVictimsConcurrentWithJoinLeave) {
  for (const Design& d : kDesigns) {
    auto t = d.make();
    std::atomic<bool> done{false};
    std::thread reader([&] {
      while (!done.load()) {
        auto v = t->FindVictims(0, 64 * fs::kPageBytes);
        ASSERT_TRUE(v.ok());
        for (const Victim& victim : *v) ASSERT_EQ(victim.length % fs::kPageBytes, 0u);
      }
    });
    for (uint64_t i = 0; i < 3000; ++i) {
      dax::TrackedMapping m{i % 7 + 1, 1, reinterpret_cast<uint8_t*>((i % 7 + 1) << 30), 0,
                            8 * fs::kPageBytes};
      fs::MapSegment s{0, (i % 8 + 1) * fs::kPageBytes, fs::SegmentKind::kData, (i % 13) * fs::kPageBytes};
      t->Join(m, {&s, 1});
      t->Leave(m, {&s, 1});
    }
    done.store(true);
    reader.join();
    EXPECT_EQ(t->TrackingBytes(), 0u) << d.name;
  }
}

}  // namespace
}  // namespace daxfs::tracking
