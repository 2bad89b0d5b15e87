// Tests of GETFSMAP (owners.cc), the reverse-map scrub (scrub/check.cc) and the offline repair
// (scrub/repair.cc): answers on fresh and written filesystems, trimming, pagination, the rmap
// answer against the full-scan baseline on randomly aged filesystems (seed printed, DAXFS_SEED
// replays), corruptions written straight through the pool, and PathOf. Every test ends with the
// checker.
#include <fmt/core.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <iostream>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "base/random.h"
#include "daxfs/filesystem.h"
#include "device/device.h"
#include "format/records.h"
#include "fs/fs_impl.h"
#include "fs_fixture.h"
#include "txn/pool.h"

namespace daxfs {
namespace {

constexpr uint64_t kB = 4096;
constexpr uint64_t kAll = std::numeric_limits<uint64_t>::max();
constexpr uint64_t kChunk = 256 << 10;

using testing::Bytes;
using testing::Joined;

std::string Text(const FsmapRecord& r) {
  return fmt::format("[{}+{} owner {:#x} offset {} flags {:#x}]", r.physical, r.length, r.owner,
                     r.offset, r.flags);
}
std::string Text(const std::vector<FsmapRecord>& rs) {
  std::string s;
  for (auto& r : rs) s += "\n  " + Text(r);
  return s;
}
bool Same(const FsmapRecord& a, const FsmapRecord& b) {
  return std::tie(a.physical, a.length, a.owner, a.offset, a.flags) ==
         std::tie(b.physical, b.length, b.owner, b.offset, b.flags);
}
bool Same(const std::vector<FsmapRecord>& a, const std::vector<FsmapRecord>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](auto& x, auto& y) { return Same(x, y); });
}
FsmapKey KeyOf(const FsmapRecord& r) { return {r.physical, r.owner, r.offset}; }

bool AnyContains(const std::vector<std::string>& lines, const std::string& what) {
  return std::any_of(lines.begin(), lines.end(),
                     [&](auto& l) { return l.find(what) != std::string::npos; });
}

class FsmapTest : public testing::FsFixture {
 public:
  void SetUp() override { Start({.chunk_size = kChunk}); }

  void Start(const FormatOptions& options, uint64_t device_size = 32 << 20,
             const MountOptions& mount = {}) {
    StartOnMemory(device_size, options, mount);
  }
  fs::FsImpl* impl() { return static_cast<fs::FsImpl*>(fs_.get()); }

  // `length` bytes of `c` at `offset`.
  void Put(Ino ino, uint64_t offset, uint64_t length, char c = 'x') {
    FsFixture::Put(ino, offset, std::string(length, c));
  }

  std::vector<FsmapRecord> Query(uint64_t start = 0, uint64_t end = kAll,
                                 std::optional<FsmapKey> after = {}, size_t max = 0) {
    Result<std::vector<FsmapRecord>> r = fs_->Fsmap(start, end, after, max);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::vector<FsmapRecord>{};
  }
  std::vector<FsmapRecord> Scan(uint64_t start = 0, uint64_t end = kAll,
                                std::optional<FsmapKey> after = {}, size_t max = 0) {
    Result<std::vector<FsmapRecord>> r = impl()->FsmapByFullScan(start, end, after, max);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::vector<FsmapRecord>{};
  }
  // The whole answer fetched `page` records at a time, resuming from the last key.
  std::vector<FsmapRecord> Paged(uint64_t start, uint64_t end, size_t page, bool by_scan = false) {
    std::vector<FsmapRecord> all;
    std::optional<FsmapKey> after;
    for (int calls = 0; calls < 100000; ++calls) {
      std::vector<FsmapRecord> got =
          by_scan ? Scan(start, end, after, page) : Query(start, end, after, page);
      EXPECT_LE(got.size(), page);
      all.insert(all.end(), got.begin(), got.end());
      if (got.empty() || (got.back().flags & kFsmapLast)) break;
      after = KeyOf(got.back());
    }
    return all;
  }
  std::vector<FsmapRecord> OwnedBy(const std::vector<FsmapRecord>& rs, uint64_t owner) {
    std::vector<FsmapRecord> out;
    for (auto& r : rs) {
      if (r.owner == owner) out.push_back(r);
    }
    return out;
  }

  // Writes straight through the pool, as a corruption would (no operation of the engine runs).
  void Corrupt(const std::function<void(btree::BTree* rmap, btree::BTree* refcount)>& fn) {
    Result<std::unique_ptr<txn::WriteTxn>> txn = impl()->pool()->BeginWrite();
    ASSERT_TRUE(txn.ok()) << txn.status().ToString();
    Result<btree::BTree*> rmap = (*txn)->Tree(fs::SpecOf(fs::FsTree::kRmap));
    Result<btree::BTree*> refcount = (*txn)->Tree(fs::SpecOf(fs::FsTree::kRefcount));
    ASSERT_TRUE(rmap.ok() && refcount.ok());
    fn(*rmap, *refcount);
    ASSERT_TRUE((*txn)->Commit().ok());
  }
  RepairReport Rebuild() {
    Result<RepairReport> r = fs_->RebuildReverseMaps();
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : RepairReport{};
  }
};

// Every answer is in strictly increasing key order, inside the query, with kFsmapLast on the
// final record only.
void ExpectWellFormed(const std::vector<FsmapRecord>& rs, uint64_t start, uint64_t end,
                      bool complete) {
  for (size_t i = 0; i < rs.size(); ++i) {
    EXPECT_GT(rs[i].length, 0u) << Text(rs[i]);
    EXPECT_GE(rs[i].physical, start / kB * kB) << Text(rs[i]);
    EXPECT_LE(rs[i].physical + rs[i].length, (end == kAll ? kAll : (end + kB - 1) / kB * kB));
    if (i > 0) {
      EXPECT_LT(std::tie(rs[i - 1].physical, rs[i - 1].owner, rs[i - 1].offset),
                std::tie(rs[i].physical, rs[i].owner, rs[i].offset))
          << Text(rs[i - 1]) << " then " << Text(rs[i]);
    }
    bool last = i + 1 == rs.size() && complete;
    EXPECT_EQ((rs[i].flags & kFsmapLast) != 0, last) << Text(rs[i]);
  }
}

// ---- Answers.

TEST_F(FsmapTest, FreshFilesystemHasSuperblockAndMetadata) {
  std::vector<FsmapRecord> rs = Query();
  ASSERT_GE(rs.size(), 2u) << Text(rs);
  EXPECT_TRUE(Same(rs[0], {.physical = 0,
                           .length = 2 * kB,
                           .owner = kOwnerSuperblock,
                           .offset = 0,
                           .flags = kFsmapSpecialOwner}))
      << Text(rs[0]);
  EXPECT_EQ(rs[1].physical, 2 * kB);
  EXPECT_EQ(rs[1].owner, kOwnerMetadata);
  EXPECT_EQ(rs[1].length, kChunk - 2 * kB) << "chunk 0 after the superblock slots";
  for (auto& r : rs) {
    EXPECT_TRUE(r.flags & kFsmapSpecialOwner) << "no file data yet: " << Text(r);
    EXPECT_EQ(r.offset, 0u);
  }
  ExpectWellFormed(rs, 0, kAll, true);
  EXPECT_TRUE(Same(rs, Scan())) << "rmap:" << Text(rs) << "\nscan:" << Text(Scan());
}

TEST_F(FsmapTest, FilesAppearWithOwnersAndOffsets) {
  Ino a = NewFile("a"), b = NewFile("b"), c = NewFile("c");
  Put(a, 0, 3 * kB, 'a');
  Put(b, 10 * kB, 2 * kB, 'b');
  ASSERT_TRUE(fs_->Fallocate(c, 0, 0, 4 * kB).ok());
  std::vector<FsmapRecord> rs = Query();
  ExpectWellFormed(rs, 0, kAll, true);
  for (auto [ino, expected_flags] : {std::pair{a, 0u}, {b, 0u}, {c, uint32_t{kFsmapUnwritten}}}) {
    std::vector<FileExtent> map = Map(ino);
    std::vector<FsmapRecord> mine = OwnedBy(rs, ino);
    ASSERT_EQ(mine.size(), map.size()) << "inode " << ino << Text(rs);
    for (size_t i = 0; i < map.size(); ++i) {
      EXPECT_EQ(mine[i].physical, map[i].device_offset);
      EXPECT_EQ(mine[i].length, map[i].length);
      EXPECT_EQ(mine[i].offset, map[i].file_offset);
      EXPECT_EQ(mine[i].flags & ~kFsmapLast, expected_flags) << Text(mine[i]);
    }
  }
  EXPECT_EQ(OwnedBy(rs, b).at(0).offset, 10 * kB);
  EXPECT_TRUE(Same(rs, Scan())) << "rmap:" << Text(rs) << "\nscan:" << Text(Scan());
}

TEST_F(FsmapTest, RecordsAreTrimmedToTheQuery) {
  Ino a = NewFile("a");
  Put(a, 0, 8 * kB);
  std::vector<FileExtent> map = Map(a);
  ASSERT_EQ(map.size(), 1u);
  uint64_t base = map[0].device_offset;
  // Blocks 2..4 of the extent; an unaligned query widens to whole blocks.
  std::vector<FsmapRecord> rs = Query(base + 2 * kB + 100, base + 4 * kB + 1);
  ASSERT_EQ(rs.size(), 1u) << Text(rs);
  EXPECT_TRUE(Same(rs[0], {.physical = base + 2 * kB,
                           .length = 3 * kB,
                           .owner = a,
                           .offset = 2 * kB,
                           .flags = kFsmapLast}))
      << Text(rs[0]);
  EXPECT_TRUE(Same(rs, Scan(base + 2 * kB + 100, base + 4 * kB + 1)));
  // A special-owner record keeps offset 0 when trimmed.
  rs = Query(kB, 3 * kB);
  ASSERT_EQ(rs.size(), 2u) << Text(rs);
  EXPECT_TRUE(Same(rs[0], {kB, kB, kOwnerSuperblock, 0, kFsmapSpecialOwner})) << Text(rs[0]);
  EXPECT_TRUE(Same(rs[1], {2 * kB, kB, kOwnerMetadata, 0, kFsmapSpecialOwner | kFsmapLast}))
      << Text(rs[1]);
}

TEST_F(FsmapTest, QueryBounds) {
  EXPECT_EQ(fs_->Fsmap(10, 5, std::nullopt, 0).status().code(), EINVAL);
  EXPECT_TRUE(Query(5 * kB, 5 * kB).empty()) << "an empty range has no records";
  EXPECT_TRUE(Query(100, 100).empty()) << "an empty range has no records";
  EXPECT_TRUE(Scan(5 * kB, 5 * kB).empty());
  EXPECT_TRUE(Scan(100, 100).empty());
  uint64_t size = dev_->size();
  EXPECT_TRUE(Query(size, kAll).empty()) << "past the device";
  std::vector<FsmapRecord> rs = Query(0, kAll);
  ASSERT_FALSE(rs.empty());
  EXPECT_LE(rs.back().physical + rs.back().length, size);
  // Resuming after the last key of the whole answer gives nothing.
  EXPECT_TRUE(Query(0, kAll, KeyOf(rs.back()), 0).empty());
}

TEST_F(FsmapTest, NoFreeSpaceRecords) {
  Ino a = NewFile("a");
  Put(a, 0, 5 * kB);
  for (auto& r : Query()) EXPECT_NE(r.owner, kOwnerFree) << Text(r);
}

// In group-commit mode a query sees the open transaction (its records and its new chunks).
TEST_F(FsmapTest, GroupCommitQueriesSeeTheOpenTransaction) {
  Start({.chunk_size = kChunk}, 32 << 20, {.durability = Durability::kGroupCommit});
  Ino a = NewFile("a"), b = NewFile("b");
  Put(a, 0, 70 * kB);  // more than a chunk: a second DATA chunk
  ASSERT_TRUE(fs_->Clone(a, b).ok());
  // File records: the same from the rmap as from the scan. (A METADATA chunk typed by the open
  // transaction gets its rmap record only at commit, so special owners are compared after Sync.)
  auto files = [](const std::vector<FsmapRecord>& rs) {
    std::vector<FsmapRecord> out;
    for (FsmapRecord r : rs) {
      r.flags &= ~kFsmapLast;
      if (!(r.flags & kFsmapSpecialOwner)) out.push_back(r);
    }
    return out;
  };
  std::vector<FsmapRecord> rs = Query();
  EXPECT_TRUE(Same(files(rs), files(Scan()))) << "rmap:" << Text(rs) << "\nscan:" << Text(Scan());
  EXPECT_EQ(OwnedBy(rs, b).size(), OwnedBy(rs, a).size());
  EXPECT_FALSE(OwnedBy(rs, a).empty());
  for (auto& r : OwnedBy(rs, b)) EXPECT_TRUE(r.flags & kFsmapShared) << Text(r);
  ASSERT_TRUE(fs_->Sync().ok());
  EXPECT_TRUE(Same(files(Query()), files(rs)));
  EXPECT_TRUE(Same(Query(), Scan())) << "rmap:" << Text(Query()) << "\nscan:" << Text(Scan());
}

// ---- Pagination.

TEST_F(FsmapTest, TinyPagesGiveExactlyTheWholeAnswer) {
  std::vector<Ino> files;
  for (int i = 0; i < 6; ++i) files.push_back(NewFile("f" + std::to_string(i)));
  // Interleaved writes make many small extents.
  for (int round = 0; round < 5; ++round) {
    for (size_t i = 0; i < files.size(); ++i) Put(files[i], round * 2 * kB, kB, 'a' + i);
  }
  ASSERT_TRUE(fs_->Fallocate(files[0], kFallocKeepSize, 40 * kB, 3 * kB).ok());
  std::vector<uint64_t> edges = {0, 3 * kB, kChunk - kB, kChunk + 7 * kB + 5, 2 * kChunk, kAll};
  std::vector<FsmapRecord> all = Query();
  for (size_t i = 0; i < all.size(); i += 3) edges.push_back(all[i].physical + all[i].length / 2);
  for (uint64_t start : edges) {
    for (uint64_t end : edges) {
      if (start > end) continue;
      SCOPED_TRACE(fmt::format("[{}, {})", start, end));
      std::vector<FsmapRecord> whole = Query(start, end);
      ExpectWellFormed(whole, start, end, true);
      EXPECT_TRUE(Same(whole, Scan(start, end)));
      for (size_t page : {1, 2, 3}) {
        std::vector<FsmapRecord> paged = Paged(start, end, page);
        EXPECT_TRUE(Same(paged, whole))
            << "page " << page << ":" << Text(paged) << "\nwhole:" << Text(whole);
        EXPECT_TRUE(Same(Paged(start, end, page, true), whole)) << "scan, page " << page;
      }
    }
  }
}

// ---- Sharing (needs reflink.cc).

TEST_F(FsmapTest, ClonedBlocksHaveOneRecordPerOwner) {
  Ino a = NewFile("a"), b = NewFile("b");
  Put(a, 0, 4 * kB, 'a');
  ASSERT_TRUE(fs_->Clone(a, b).ok());
  std::vector<FsmapRecord> rs = Query();
  ExpectWellFormed(rs, 0, kAll, true);
  std::vector<FsmapRecord> ra = OwnedBy(rs, a), rb = OwnedBy(rs, b);
  ASSERT_EQ(ra.size(), 1u) << Text(rs);
  ASSERT_EQ(rb.size(), 1u) << Text(rs);
  EXPECT_EQ(ra[0].physical, rb[0].physical);
  EXPECT_EQ(ra[0].length, 4 * kB);
  EXPECT_EQ(rb[0].length, 4 * kB);
  EXPECT_TRUE(ra[0].flags & kFsmapShared);
  EXPECT_TRUE(rb[0].flags & kFsmapShared);
  // Owner order within one physical start: a (the smaller inode) first.
  auto ia = std::find_if(rs.begin(), rs.end(), [&](auto& r) { return r.owner == a; });
  auto ib = std::find_if(rs.begin(), rs.end(), [&](auto& r) { return r.owner == b; });
  EXPECT_LT(ia, ib);
  EXPECT_TRUE(Same(rs, Scan())) << "rmap:" << Text(rs) << "\nscan:" << Text(Scan());
  // Overwriting one block of b unshares that block only: a's record stays one record, shared
  // in part.
  Put(b, kB, kB, 'B');
  rs = Query();
  EXPECT_TRUE(Same(rs, Scan())) << "rmap:" << Text(rs) << "\nscan:" << Text(Scan());
  ra = OwnedBy(rs, a);
  ASSERT_EQ(ra.size(), 1u);
  EXPECT_TRUE(ra[0].flags & kFsmapShared);
  // A query over the block only a owns now: not shared.
  std::vector<FsmapRecord> one = Query(ra[0].physical + kB, ra[0].physical + 2 * kB);
  ASSERT_EQ(one.size(), 1u) << Text(one);
  EXPECT_EQ(one[0].owner, a);
  EXPECT_FALSE(one[0].flags & kFsmapShared) << Text(one[0]);
  for (size_t page : {1, 2}) EXPECT_TRUE(Same(Paged(0, kAll, page), rs));
}

TEST_F(FsmapTest, CloneWithinOneFile) {
  Ino a = NewFile("a");
  Put(a, 0, 4 * kB, 'a');
  ASSERT_TRUE(fs_->CloneRange(a, 0, a, 8 * kB, 4 * kB).ok());
  std::vector<FsmapRecord> rs = OwnedBy(Query(), a);
  ASSERT_EQ(rs.size(), 2u) << Text(rs);
  EXPECT_EQ(rs[0].physical, rs[1].physical);
  EXPECT_EQ(rs[0].offset, 0u);
  EXPECT_EQ(rs[1].offset, 8 * kB);
  EXPECT_TRUE(rs[0].flags & rs[1].flags & kFsmapShared);
  // Trimmed at the same start, the records of one owner order by their advanced offsets.
  std::vector<FsmapRecord> mid = Query(rs[0].physical + kB, rs[0].physical + 3 * kB);
  ASSERT_EQ(mid.size(), 2u) << Text(mid);
  EXPECT_EQ(mid[0].offset, kB);
  EXPECT_EQ(mid[1].offset, 9 * kB);
  EXPECT_TRUE(Same(Paged(rs[0].physical + kB, rs[0].physical + 3 * kB, 1), mid));
  EXPECT_TRUE(Same(Query(), Scan()));
}

// ---- The rmap answer against the full-scan baseline.

// Random creates, writes, truncates, punches, preallocations, unlinks and (when reflink works)
// clones.
void Age(Filesystem* fs, base::Random* rnd, int steps, std::vector<Ino>* files) {
  bool reflink = true;
  for (int step = 0; step < steps; ++step) {
    if (files->size() < 3 || (files->size() < 12 && rnd->OneIn(12))) {
      Result<Attr> a = fs->Create(kRootIno, "f" + std::to_string(rnd->Next() % 100000), 0644);
      if (a.ok()) files->push_back(a->ino);
      continue;
    }
    Ino f = (*files)[rnd->Uniform(files->size())];
    uint64_t off = rnd->Uniform(64) * kB + (rnd->OneIn(4) ? rnd->Uniform(kB) : 0);
    uint64_t len = 1 + rnd->Uniform(rnd->OneIn(3) ? 16 * kB : 2 * kB);
    switch (rnd->Uniform(10)) {
      case 0:
      case 1:
      case 2:
        ASSERT_TRUE(fs->Write(f, off, Bytes(std::string(len, 'a' + step % 26))).ok());
        break;
      case 3:
        ASSERT_TRUE(fs->Truncate(f, off).ok());
        break;
      case 4:
        ASSERT_TRUE(fs->Fallocate(f, kFallocPunchHole | kFallocKeepSize, off, len).ok());
        break;
      case 5:
        ASSERT_TRUE(
            fs->Fallocate(f, rnd->OneIn(2) ? uint32_t{kFallocKeepSize} : 0u, off, len).ok());
        break;
      case 6:
        if (files->size() > 3) {
          Result<std::string> path = fs->PathOf(f);
          ASSERT_TRUE(path.ok()) << path.status().ToString();
          ASSERT_TRUE(fs->Unlink(kRootIno, path->substr(1)).ok());
          files->erase(std::find(files->begin(), files->end(), f));
        }
        break;
      default: {
        if (!reflink) break;
        Ino g = (*files)[rnd->Uniform(files->size())];
        uint64_t src_size = fs->GetAttr(f)->size;
        if (src_size == 0) break;
        uint64_t src = rnd->Uniform((src_size + kB - 1) / kB) * kB;
        uint64_t blocks = 1 + rnd->Uniform(8);
        uint64_t dst = rnd->Uniform(64) * kB;
        uint64_t length = std::min(blocks * kB, src_size - src);  // aligned, or to src's EOF
        Status s = rnd->OneIn(4) ? fs->Clone(f, g) : fs->CloneRange(f, src, g, dst, length);
        if (s.code() == EOPNOTSUPP) reflink = false;  // until reflink.cc lands
        // EINVAL: past EOF or overlapping ranges within one file; both are fine to skip.
        if (!s.ok() && s.code() != EINVAL && s.code() != EOPNOTSUPP) {
          ADD_FAILURE() << "clone: " << s.ToString();
        }
      }
    }
  }
}

// Random queries, most of them over the part of the device in use.
void CompareRandomRanges(FsmapTest* t, fs::FsImpl* impl, base::Random* rnd, uint64_t device_size) {
  std::vector<FsmapRecord> whole = t->Query();
  uint64_t span =
      whole.empty() ? device_size : whole.back().physical + whole.back().length + kChunk;
  for (int q = 0; q < 60; ++q) {
    uint64_t start = rnd->OneIn(8) ? 0 : rnd->Uniform(rnd->OneIn(8) ? device_size : span);
    uint64_t end = rnd->OneIn(8) ? kAll : start + rnd->Uniform(rnd->OneIn(2) ? 64 * kB : span);
    SCOPED_TRACE(fmt::format("[{}, {})", start, end));
    Result<std::vector<FsmapRecord>> a = impl->Fsmap(start, end, std::nullopt, 0);
    Result<std::vector<FsmapRecord>> b = impl->FsmapByFullScan(start, end, std::nullopt, 0);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_TRUE(Same(*a, *b)) << "rmap:" << Text(*a) << "\nscan:" << Text(*b);
    ExpectWellFormed(*a, start, end, true);
    if (q % 8 == 0) {
      size_t page = 1 + rnd->Uniform(4);
      EXPECT_TRUE(Same(t->Paged(start, end, page), *a)) << "page " << page;
    }
  }
}

class FsmapAgedTest : public FsmapTest, public ::testing::WithParamInterface<int> {};

// The live reverse map (kept by every operation) answers like the scan.
TEST_P(FsmapAgedTest, RmapAnswersLikeTheScan) {
  const uint64_t seed = base::SeedFromEnv(0xf5a9 + GetParam());
  std::cout << "seed " << seed << " (replay with DAXFS_SEED=" << seed << ")\n";
  base::Random rnd(seed);
  std::vector<Ino> files;
  size_t most_file_records = 0, most_shared = 0;
  for (int round = 0; round < 4; ++round) {
    SCOPED_TRACE(fmt::format("round {} seed {}", round, seed));
    Age(fs_.get(), &rnd, 250, &files);
    CompareRandomRanges(this, impl(), &rnd, dev_->size());
    ExpectConsistent();
    size_t file_records = 0, shared = 0;
    for (auto& r : Query()) {
      file_records += !(r.flags & kFsmapSpecialOwner);
      shared += (r.flags & kFsmapShared) != 0;
    }
    most_file_records = std::max(most_file_records, file_records);
    most_shared = std::max(most_shared, shared);
  }
  std::cout << "at most " << most_file_records << " file records, " << most_shared << " shared\n";
  EXPECT_GT(most_file_records, 10u) << "the workload should leave many extents";
  EXPECT_GT(most_shared, 0u) << "the workload should share blocks";
  // The rebuilt reverse maps are the same as the kept ones.
  RepairReport report = Rebuild();
  EXPECT_TRUE(report.fixed.empty()) << Joined(report.fixed);
}

// The repair's reverse maps answer like the scan too (whatever kept them before).
TEST_P(FsmapAgedTest, RebuiltRmapAnswersLikeTheScan) {
  const uint64_t seed = base::SeedFromEnv(0x4eb1 + GetParam());
  std::cout << "seed " << seed << " (replay with DAXFS_SEED=" << seed << ")\n";
  base::Random rnd(seed);
  std::vector<Ino> files;
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE(fmt::format("round {} seed {}", round, seed));
    Age(fs_.get(), &rnd, 150, &files);
    Rebuild();
    ExpectConsistent();
    CompareRandomRanges(this, impl(), &rnd, dev_->size());
    RepairReport again = Rebuild();
    EXPECT_TRUE(again.fixed.empty()) << "a second rebuild changes nothing:" << Joined(again.fixed);
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, FsmapAgedTest, ::testing::Values(0, 1, 2));

// The same workload on a filesystem without the rmap gives the same file records.
TEST_F(FsmapTest, WithoutRmapTheScanGivesTheSameOwners) {
  auto file_records = [](const std::vector<FsmapRecord>& rs) {
    std::vector<std::tuple<uint64_t, uint64_t, uint64_t, uint32_t>> out;
    for (auto& r : rs) {
      if (!(r.flags & kFsmapSpecialOwner)) {
        out.push_back({r.owner, r.offset, r.length, r.flags & (kFsmapUnwritten | kFsmapShared)});
      }
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  std::vector<FsmapRecord> with[2];
  for (bool rmap : {true, false}) {
    Start({.chunk_size = kChunk, .rmap = rmap, .reflink = false});
    EXPECT_EQ(impl()->has_rmap(), rmap);
    base::Random rnd(77);
    std::vector<Ino> files;
    Age(fs_.get(), &rnd, 300, &files);
    with[rmap] = Query();
    EXPECT_TRUE(Same(with[rmap], Scan()));
    ExpectWellFormed(with[rmap], 0, kAll, true);
    CompareRandomRanges(this, impl(), &rnd, dev_->size());
    ExpectConsistent();
  }
  EXPECT_EQ(file_records(with[0]), file_records(with[1]));
  EXPECT_FALSE(file_records(with[0]).empty());
  // Without the rmap, repair only rebuilds the metadata twins (on by default) ...
  auto repaired = fs_->RebuildReverseMaps();
  ASSERT_TRUE(repaired.ok()) << repaired.status().ToString();
  EXPECT_TRUE(repaired->twins_rebuilt);
  EXPECT_EQ(repaired->rmap_records, 0u);
  // ... and without twins either there is nothing to rebuild.
  Start({.chunk_size = kChunk, .rmap = false, .reflink = false, .metadata_dup = false});
  EXPECT_EQ(fs_->RebuildReverseMaps().status().code(), EOPNOTSUPP);
}

// ---- Scrub and repair.

TEST_F(FsmapTest, MissingRmapRecordIsReportedAndRepaired) {
  Ino a = NewFile("a");
  Put(a, 0, 3 * kB);
  Rebuild();  // a known-good starting point whatever keeps the rmap
  ExpectConsistent();
  uint64_t block = Map(a).at(0).device_offset / kB;
  Corrupt([&](btree::BTree* rmap, btree::BTree*) {
    ASSERT_TRUE(rmap->Delete(btree::Key{{block, a, 0}}).ok());
  });
  FsCheckResult r = CheckResult();
  std::string expected = fmt::format(
      "rmap: no record for inode {} file block 0 at device blocks {}..{}", a, block, block + 2);
  EXPECT_TRUE(AnyContains(r.problems, expected)) << expected << " not in:" << Joined(r.problems);
  RepairReport report = Rebuild();
  EXPECT_TRUE(AnyContains(report.fixed, expected)) << Joined(report.fixed);
  EXPECT_EQ(report.fixed.size(), 1u) << Joined(report.fixed);
  EXPECT_GE(report.rmap_records, 3u);  // superblock, metadata, the file
  ExpectConsistent();
  EXPECT_EQ(OwnedBy(Query(), a).size(), 1u);
}

TEST_F(FsmapTest, AlteredAndStrayRmapRecordsAreReportedAndRepaired) {
  Ino a = NewFile("a"), b = NewFile("b");
  Put(a, 0, 3 * kB);
  Put(b, 0, 2 * kB);
  Rebuild();
  uint64_t ablock = Map(a).at(0).device_offset / kB;
  uint64_t bblock = Map(b).at(0).device_offset / kB;
  Corrupt([&](btree::BTree* rmap, btree::BTree*) {
    uint8_t v[format::kRmapValueSize];
    format::EncodeRmapValue({.blocks = 2, .flags = format::kRmapUnwritten}, v);
    ASSERT_TRUE(rmap->Update(btree::Key{{ablock, a, 0}}, v).ok());
    // b's record claims a different file block, and a record for a missing inode.
    ASSERT_TRUE(rmap->Delete(btree::Key{{bblock, b, 0}}).ok());
    format::EncodeRmapValue({.blocks = 2}, v);
    ASSERT_TRUE(rmap->Insert(btree::Key{{bblock, b, 7}}, v).ok());
    ASSERT_TRUE(rmap->Insert(btree::Key{{bblock + 100, 999, 0}}, v).ok());
  });
  FsCheckResult r = CheckResult();
  std::vector<std::string> expected = {
      fmt::format("rmap: record for inode {} file block 0 at device blocks {}..{} says 2 blocks, "
                  "unwritten but the extent says 3 blocks",
                  a, ablock, ablock + 1),
      fmt::format("rmap: no record for inode {} file block 0 at device blocks {}..{}", b, bblock,
                  bblock + 1),
      fmt::format(
          "rmap: record for inode {} file block 7 at device blocks {}..{} matches no extent", b,
          bblock, bblock + 1),
      fmt::format(
          "rmap: record for inode 999 file block 0 at device blocks {}..{} matches no extent",
          bblock + 100, bblock + 101),
  };
  for (auto& e : expected)
    EXPECT_TRUE(AnyContains(r.problems, e)) << e << " not in:" << Joined(r.problems);
  RepairReport report = Rebuild();
  for (auto& e : expected)
    EXPECT_TRUE(AnyContains(report.fixed, e)) << e << " not in:" << Joined(report.fixed);
  ExpectConsistent();
}

// The offline flow: a damaged rmap on media, mounted (free space comes from the rmap), checked,
// repaired; afterwards the allocator agrees with the extent maps too.
TEST_F(FsmapTest, OfflineRepairAfterRemount) {
  Ino a = NewFile("a"), b = NewFile("b");
  Put(a, 0, 4 * kB);
  Put(b, 0, 2 * kB);
  Rebuild();
  uint64_t ablock = Map(a).at(0).device_offset / kB;
  uint64_t bblock = Map(b).at(0).device_offset / kB;
  uint64_t stray = bblock / (kChunk / kB) * (kChunk / kB) + 50;  // free, in b's DATA chunk
  ASSERT_GT(stray, bblock + 2);
  Corrupt([&](btree::BTree* rmap, btree::BTree*) {
    ASSERT_TRUE(rmap->Delete(btree::Key{{ablock, a, 0}}).ok());
    uint8_t v[format::kRmapValueSize];
    format::EncodeRmapValue({.blocks = 3}, v);
    ASSERT_TRUE(rmap->Insert(btree::Key{{stray, b, 50}}, v).ok());
  });
  Remount();
  FsCheckResult r = CheckResult();
  std::vector<std::string> expected = {
      fmt::format("rmap: no record for inode {} file block 0 at device blocks {}..{}", a, ablock,
                  ablock + 3),
      fmt::format(
          "rmap: record for inode {} file block 50 at device blocks {}..{} matches no extent", b,
          stray, stray + 2)};
  for (auto& e : expected)
    EXPECT_TRUE(AnyContains(r.problems, e)) << e << " not in:" << Joined(r.problems);
  RepairReport report = Rebuild();
  EXPECT_EQ(report.fixed.size(), 2u) << Joined(report.fixed);
  for (auto& e : expected)
    EXPECT_TRUE(AnyContains(report.fixed, e)) << e << " not in:" << Joined(report.fixed);
  ExpectConsistent();
  // New data never lands on a's blocks, and the stray blocks are usable again.
  Ino c = NewFile("c");
  Put(c, 0, 100 * kB);
  for (const FileExtent& e : Map(c)) {
    uint64_t first = e.device_offset / kB, end = first + e.length / kB;
    EXPECT_TRUE(end <= ablock || first >= ablock + 4)
        << "c got a's blocks: " << first << ".." << end;
  }
  Remount();
  ExpectConsistent();
}

// A rebuild of trees several levels deep: the reservation covers it and the result is exact.
TEST_F(FsmapTest, RebuildOfManyRecords) {
  Start({.chunk_size = kChunk}, 64 << 20);
  Ino a = NewFile("a"), b = NewFile("b");
  constexpr int kEach = 1500;
  for (int i = 0; i < kEach; ++i) {  // interleaved: no two neighbours merge
    Put(a, i * kB, kB, 'a');
    Put(b, i * kB, kB, 'b');
  }
  ASSERT_TRUE(fs_->CloneRange(a, 0, b, 0, 100 * kB).ok());
  std::vector<FsmapRecord> before = Query();
  RepairReport report = Rebuild();
  EXPECT_TRUE(report.fixed.empty()) << Joined(report.fixed);
  EXPECT_EQ(report.rmap_records, before.size());
  EXPECT_EQ(report.refcount_records, 100u) << "blocks of a alternate with blocks of b";
  EXPECT_TRUE(Same(Query(), before));
  std::vector<FileExtent> map = Map(a);
  Corrupt([&](btree::BTree* rmap, btree::BTree*) {
    for (size_t i = 200; i < map.size(); i += 100) {
      ASSERT_TRUE(
          rmap->Delete(btree::Key{{map[i].device_offset / kB, a, map[i].file_offset / kB}}).ok());
    }
  });
  FsCheckResult r = CheckResult();
  EXPECT_EQ(r.problems.size(), (map.size() - 200 + 99) / 100) << Joined(r.problems);
  report = Rebuild();
  EXPECT_EQ(report.fixed.size(), (map.size() - 200 + 99) / 100);
  EXPECT_TRUE(Same(Query(), before));
  Remount();
  EXPECT_TRUE(Same(Query(), Scan()));
}

TEST_F(FsmapTest, MissingMetadataOwnerIsReportedAndRepaired) {
  Rebuild();
  Corrupt([&](btree::BTree* rmap, btree::BTree*) {
    ASSERT_TRUE(rmap->Delete(btree::Key{{2, format::kOwnerMetadata, 0}}).ok());
  });
  FsCheckResult r = CheckResult();
  std::string expected =
      fmt::format("rmap: no record for 'metadata' space at device blocks 2..{}", kChunk / kB - 1);
  EXPECT_TRUE(AnyContains(r.problems, expected)) << Joined(r.problems);
  EXPECT_TRUE(AnyContains(Rebuild().fixed, expected));
  ExpectConsistent();
}

TEST_F(FsmapTest, StrayRefcountRecordIsReportedAndRepaired) {
  Ino a = NewFile("a");
  Put(a, 0, 3 * kB);
  Rebuild();
  uint64_t block = Map(a).at(0).device_offset / kB;
  Corrupt([&](btree::BTree*, btree::BTree* refcount) {
    uint8_t v[format::kRefcountValueSize];
    format::EncodeRefcountValue({.blocks = 2, .refcount = 2}, v);
    ASSERT_TRUE(refcount->Insert(btree::Key{{block + 1}}, v).ok());
  });
  FsCheckResult r = CheckResult();
  std::string expected = fmt::format(
      "refcount: device blocks {}..{}: 1 owner (inode {} file block 1) but the refcount tree says "
      "2",
      block + 1, block + 2, a);
  EXPECT_TRUE(AnyContains(r.problems, expected)) << expected << " not in:" << Joined(r.problems);
  RepairReport report = Rebuild();
  EXPECT_EQ(report.fixed.size(), 1u) << Joined(report.fixed);
  EXPECT_TRUE(AnyContains(report.fixed, expected)) << Joined(report.fixed);
  EXPECT_EQ(report.refcount_records, 0u);
  ExpectConsistent();
}

TEST_F(FsmapTest, RefcountRecordsMustBeMergedAndNotOverlap) {
  Ino a = NewFile("a");
  Put(a, 0, 8 * kB);
  Rebuild();
  uint64_t block = Map(a).at(0).device_offset / kB;
  Corrupt([&](btree::BTree*, btree::BTree* refcount) {
    uint8_t v[format::kRefcountValueSize];
    format::EncodeRefcountValue({.blocks = 2, .refcount = 3}, v);
    ASSERT_TRUE(refcount->Insert(btree::Key{{block}}, v).ok());
    ASSERT_TRUE(refcount->Insert(btree::Key{{block + 2}}, v).ok());
    format::EncodeRefcountValue({.blocks = 2, .refcount = 2}, v);
    ASSERT_TRUE(refcount->Insert(btree::Key{{block + 4}}, v).ok());
    ASSERT_TRUE(refcount->Insert(btree::Key{{block + 5}}, v).ok());
    format::EncodeRefcountValue({.blocks = 1, .refcount = 1}, v);  // count 1: never stored
    ASSERT_TRUE(refcount->Insert(btree::Key{{block + 7}}, v).ok());
  });
  FsCheckResult r = CheckResult();
  for (std::string e :
       {fmt::format(
            "refcount: records at device blocks {} and {} are adjacent with the same count 3",
            block, block + 2),
        fmt::format("refcount: records at device blocks {} (2 blocks) and {} overlap", block + 4,
                    block + 5),
        fmt::format("refcount record at device block {}: malformed", block + 7)}) {
    EXPECT_TRUE(AnyContains(r.problems, e)) << e << " not in:" << Joined(r.problems);
  }
  RepairReport report = Rebuild();
  EXPECT_FALSE(report.fixed.empty());
  ExpectConsistent();
}

TEST_F(FsmapTest, AlteredRefcountOfSharedBlocksIsReportedAndRepaired) {
  Ino a = NewFile("a"), b = NewFile("b");
  Put(a, 0, 4 * kB);
  ASSERT_TRUE(fs_->Clone(a, b).ok());
  ExpectConsistent();
  uint64_t block = Map(a).at(0).device_offset / kB;
  Corrupt([&](btree::BTree*, btree::BTree* refcount) {
    uint8_t v[format::kRefcountValueSize];
    format::EncodeRefcountValue({.blocks = 4, .refcount = 3}, v);
    ASSERT_TRUE(refcount->Update(btree::Key{{block}}, v).ok());
  });
  FsCheckResult r = CheckResult();
  std::string expected = fmt::format(
      "refcount: device blocks {}..{}: 2 owners (inode {} file block 0, inode {} file block 0) but "
      "the refcount tree says 3",
      block, block + 3, a, b);
  EXPECT_TRUE(AnyContains(r.problems, expected)) << expected << " not in:" << Joined(r.problems);
  RepairReport report = Rebuild();
  EXPECT_EQ(report.fixed.size(), 1u) << Joined(report.fixed);
  EXPECT_EQ(report.refcount_records, 1u);
  ExpectConsistent();
  Corrupt([&](btree::BTree*, btree::BTree* refcount) {
    ASSERT_TRUE(refcount->Delete(btree::Key{{block}}).ok());
  });
  r = CheckResult();
  EXPECT_TRUE(AnyContains(
      r.problems, fmt::format("refcount: device blocks {}..{}: 2 owners", block, block + 3)))
      << Joined(r.problems);
  EXPECT_TRUE(AnyContains(r.problems, "but the refcount tree has no record")) << Joined(r.problems);
  Rebuild();
}

TEST_F(FsmapTest, FilesystemWithoutRmapMustHaveEmptyTrees) {
  Start({.chunk_size = kChunk, .rmap = false, .reflink = false});
  Ino a = NewFile("a");
  Put(a, 0, kB);
  ExpectConsistent();
  Corrupt([&](btree::BTree* rmap, btree::BTree*) {
    uint8_t v[format::kRmapValueSize];
    format::EncodeRmapValue({.blocks = 1}, v);
    ASSERT_TRUE(rmap->Insert(btree::Key{{500, a, 0}}, v).ok());
  });
  FsCheckResult r = CheckResult();
  EXPECT_TRUE(
      AnyContains(r.problems, "rmap: the filesystem has no rmap tree but it holds 1 records"))
      << Joined(r.problems);
  Corrupt([&](btree::BTree* rmap, btree::BTree*) {
    ASSERT_TRUE(rmap->Delete(btree::Key{{500, a, 0}}).ok());
  });
}

TEST_F(FsmapTest, RmapWithoutReflink) {
  Start({.chunk_size = kChunk, .rmap = true, .reflink = false});
  EXPECT_TRUE(impl()->has_rmap());
  EXPECT_FALSE(impl()->has_reflink());
  Ino a = NewFile("a");
  Put(a, 0, 2 * kB);
  RepairReport report = Rebuild();
  EXPECT_EQ(report.refcount_records, 0u);
  ExpectConsistent();
  EXPECT_TRUE(Same(Query(), Scan()));
}

// ---- Paths.

TEST_F(FsmapTest, PathOfFilesDirectoriesAndLinks) {
  Ino d1 = NewDir("d1");
  Ino d2 = NewDir("d2", d1);
  Ino f = NewFile("f", d2);
  Ino g = NewFile("g");
  EXPECT_EQ(*fs_->PathOf(kRootIno), "/");
  EXPECT_EQ(*fs_->PathOf(d1), "/d1");
  EXPECT_EQ(*fs_->PathOf(d2), "/d1/d2");
  EXPECT_EQ(*fs_->PathOf(f), "/d1/d2/f");
  EXPECT_EQ(*fs_->PathOf(g), "/g");
  ASSERT_TRUE(fs_->Link(f, d1, "hard").ok());
  std::string p = *fs_->PathOf(f);
  EXPECT_TRUE(p == "/d1/d2/f" || p == "/d1/hard") << p;
  ASSERT_TRUE(fs_->Unlink(d2, "f").ok());
  EXPECT_EQ(*fs_->PathOf(f), "/d1/hard");
  ASSERT_TRUE(fs_->Rename(d1, "d2", kRootIno, "moved").ok());
  EXPECT_EQ(*fs_->PathOf(d2), "/moved");
  Result<Attr> s = fs_->Symlink(d2, "link", "/g");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(*fs_->PathOf(s->ino), "/moved/link");
  EXPECT_EQ(fs_->PathOf(12345).status().code(), ENOENT);
  ASSERT_TRUE(fs_->Unlink(kRootIno, "g").ok());
  EXPECT_EQ(fs_->PathOf(g).status().code(), ENOENT);
}

}  // namespace
}  // namespace daxfs
