// Online scrub end to end through DaxFs (daxfs/scrub.h, docs/scrub.md): on aged images with
// data errors on the device's bad-block list that nothing has routed, scrub finds every one
// before any read and names exactly the owners a ground truth from Bmap names (reflinked
// sharers included); free bad blocks are retired; a stop between slices resumes where it
// stopped and the two halves together find the same. Seeds printed (DAXFS_SEED to repeat).
#include "daxfs/scrub.h"

#include <fmt/core.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "base/random.h"
#include "daxfs/dax.h"
#include "device/device.h"

namespace daxfs {
namespace {

constexpr uint64_t kBlock = 4096;

uint64_t Seed() {
  const char* env = std::getenv("DAXFS_SEED");
  uint64_t seed = env != nullptr ? std::strtoull(env, nullptr, 10) : std::random_device{}();
  std::cout << "seed " << seed << " (DAXFS_SEED to repeat)\n";
  return seed;
}

struct Image {
  std::string path;
  explicit Image(const std::string& name)
      : path(fmt::format("/dev/shm/daxfs-scrub-{}-{}.img", getpid(), name)) {
    Clean();
    EXPECT_TRUE(device::CreateDeviceFile(path, 64 << 20, true).ok());
    EXPECT_TRUE(Filesystem::Format(path, {.chunk_size = 1 << 20}).ok());
  }
  ~Image() { Clean(); }
  void Clean() {
    std::remove(path.c_str());
    std::remove((path + ".badblocks").c_str());
    std::remove((path + ".events.jsonl").c_str());
  }
  // Marks blocks bad on the device's list only (as the hardware would): nothing routes them.
  void AddBad(uint64_t block) {
    FILE* f = std::fopen((path + ".badblocks").c_str(), "a");
    ASSERT_NE(f, nullptr);
    std::fprintf(f, "%llu %llu\n", static_cast<unsigned long long>(block * kBlock),
                 static_cast<unsigned long long>(kBlock));
    std::fclose(f);
  }
};

DaxOptions NoScan() {
  DaxOptions o;
  o.scan_bad_blocks = false;
  return o;
}

using Owner = std::pair<Ino, uint64_t>;  // (inode, file offset of the block)

// Ages the image: files of random sizes, some rewritten in the middle, some reflinked, some
// unlinked. Returns device block -> its owners (from Bmap: the ground truth).
std::map<uint64_t, std::set<Owner>> Age(Filesystem& fs, base::Random& rng) {
  std::vector<Ino> files;
  for (int i = 0; i < 24; ++i) {
    Result<Attr> a = fs.Create(kRootIno, fmt::format("f{}", i), 0644);
    EXPECT_TRUE(a.ok());
    std::vector<uint8_t> data((1 + rng.Uniform(40)) * kBlock, static_cast<uint8_t>(i));
    EXPECT_TRUE(fs.Write(a->ino, 0, data).ok());
    if (rng.OneIn(3)) {
      std::vector<uint8_t> mid(kBlock * (1 + rng.Uniform(3)), 0xaa);
      EXPECT_TRUE(fs.Write(a->ino, rng.Uniform(data.size() / kBlock) * kBlock, mid).ok());
    }
    files.push_back(a->ino);
    if (rng.OneIn(4)) {
      Result<Attr> c = fs.Create(kRootIno, fmt::format("f{}.clone", i), 0644);
      EXPECT_TRUE(c.ok());
      EXPECT_TRUE(fs.Clone(a->ino, c->ino).ok());
      files.push_back(c->ino);
    }
  }
  for (int i = 0; i < 4; ++i) {
    std::string name = fmt::format("f{}", rng.Uniform(24));
    Result<Attr> a = fs.Lookup(kRootIno, name);
    if (!a.ok()) continue;
    EXPECT_TRUE(fs.Unlink(kRootIno, name).ok());
    files.erase(std::remove(files.begin(), files.end(), a->ino), files.end());
  }
  EXPECT_TRUE(fs.Sync().ok());
  std::map<uint64_t, std::set<Owner>> owners;
  for (Ino ino : files) {
    Result<std::vector<FileExtent>> map = fs.Bmap(ino);
    EXPECT_TRUE(map.ok());
    for (const FileExtent& x : *map) {
      if (x.device_offset == ~0ULL || x.length == 0) continue;
      for (uint64_t o = 0; o < x.length; o += kBlock) {
        owners[(x.device_offset + o) / kBlock].insert({ino, x.file_offset + o});
      }
    }
  }
  return owners;
}

// Picks `n` distinct owned blocks at random and returns the owners they should name.
std::set<Owner> Pick(const std::map<uint64_t, std::set<Owner>>& owned, base::Random& rng, int n,
                     std::vector<uint64_t>* blocks) {
  std::vector<uint64_t> all;
  for (const auto& entry : owned) all.push_back(entry.first);
  std::set<Owner> want;
  std::set<uint64_t> chosen;
  while (static_cast<int>(chosen.size()) < n) chosen.insert(all[rng.Uniform(all.size())]);
  for (uint64_t b : chosen) {
    blocks->push_back(b);
    const std::set<Owner>& o = owned.at(b);
    want.insert(o.begin(), o.end());
  }
  return want;
}

std::set<Owner> Lost(const ScrubReport& r) {
  std::set<Owner> out;
  for (const FileRangeLoss& l : r.lost) {
    EXPECT_FALSE(l.path.empty()) << "inode " << l.ino;
    for (uint64_t o = 0; o < l.length; o += kBlock) out.insert({l.ino, l.file_offset + o});
  }
  return out;
}

TEST(Scrub, FindsEveryDataErrorBeforeAnyReadAndNamesExactlyTheOwners) {
  uint64_t seed = Seed();
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE(fmt::format("seed {} round {}", seed, round));
    base::Random rng(seed + static_cast<uint64_t>(round));
    Image img(fmt::format("find{}", round));
    std::map<uint64_t, std::set<Owner>> owned;
    {
      Result<std::unique_ptr<DaxFs>> dax = DaxFs::Open(img.path, NoScan());
      ASSERT_TRUE(dax.ok()) << dax.status().ToString();
      owned = Age((*dax)->fs(), rng);
      ASSERT_TRUE((*dax)->Unmount().ok());
    }
    std::vector<uint64_t> blocks;
    std::set<Owner> want = Pick(owned, rng, 6, &blocks);
    for (uint64_t b : blocks) img.AddBad(b);
    const uint64_t free_block = (60ull << 20) / kBlock;  // an unallocated chunk near the end
    img.AddBad(free_block);

    Result<std::unique_ptr<DaxFs>> dax = DaxFs::Open(img.path, NoScan());
    ASSERT_TRUE(dax.ok()) << dax.status().ToString();
    Result<MediaErrorList> before = (*dax)->fs().MediaErrors();
    ASSERT_TRUE(before.ok());
    EXPECT_TRUE(before->lost.empty());  // nothing routed them yet
    Result<ScrubReport> r = (*dax)->Scrub({.slice_bytes = 64 << 10});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(r->clean()) << (r->index.problems.empty() ? "" : r->index.problems[0]);
    EXPECT_FALSE(r->stopped);
    EXPECT_TRUE(r->metadata.ran && r->index.ran && r->data.ran);
    EXPECT_EQ(r->data.found, blocks.size());
    EXPECT_EQ(r->data.unread_bad, 1u);
    EXPECT_EQ(Lost(*r), want);
    ASSERT_EQ(r->retired.size(), 1u);
    EXPECT_EQ(r->retired[0].offset, free_block * kBlock);
    // The losses are recorded: reads fail, check is clean, a second scrub finds nothing new.
    Result<MediaErrorList> after = (*dax)->fs().MediaErrors();
    ASSERT_TRUE(after.ok());
    std::set<Owner> recorded;
    for (const FileRangeLoss& l : after->lost) {
      for (uint64_t o = 0; o < l.length; o += kBlock) recorded.insert({l.ino, l.file_offset + o});
    }
    EXPECT_EQ(recorded, want);
    const Owner& first = *want.begin();
    uint8_t buf[16];
    EXPECT_EQ((*dax)->fs().Read(first.first, first.second, buf).status().code(), EIO);
    Result<FsCheckResult> check = (*dax)->fs().Check();
    ASSERT_TRUE(check.ok());
    EXPECT_TRUE(check->ok()) << (check->problems.empty() ? "" : check->problems[0]);
    Result<ScrubReport> again = (*dax)->Scrub({});
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->data.found + again->data.unread_bad, 0u);
    EXPECT_TRUE(again->lost.empty());
    ASSERT_TRUE((*dax)->Unmount().ok());
  }
}

// InjectLatentError marks blocks bad on the device only: nothing is routed (no losses recorded),
// a read of the block fails with EIO, and the scrub then finds and names it. Bad input changes
// nothing.
TEST(Scrub, LatentErrorsAreOnlyMarkedAndTheScrubFindsThem) {
  Image img("latent");
  Result<std::unique_ptr<DaxFs>> dax = DaxFs::Open(img.path);
  ASSERT_TRUE(dax.ok()) << dax.status().ToString();
  Filesystem& fs = (*dax)->fs();
  Result<Attr> a = fs.Create(kRootIno, "victim", 0644);
  Result<Attr> b = fs.Create(kRootIno, "bystander", 0644);
  ASSERT_TRUE(a.ok() && b.ok());
  std::vector<uint8_t> data(4 * kBlock, 0x5a);
  ASSERT_TRUE(fs.Write(a->ino, 0, data).ok());
  ASSERT_TRUE(fs.Write(b->ino, 0, data).ok());
  Result<std::vector<FileExtent>> map = fs.Bmap(a->ino);
  ASSERT_TRUE(map.ok() && !map->empty());
  uint64_t device = map->front().device_offset + kBlock;  // the victim's second block

  EXPECT_EQ((*dax)->InjectLatentError(device, 0).status().code(), EINVAL);
  EXPECT_EQ((*dax)->InjectLatentError(uint64_t{1} << 40, kBlock).status().code(), EINVAL);
  EXPECT_TRUE(fs.MediaErrors()->lost.empty());

  Result<DeviceRange> marked = (*dax)->InjectLatentError(device + 100, 10);
  ASSERT_TRUE(marked.ok()) << marked.status().ToString();
  EXPECT_EQ(marked->offset, device);
  EXPECT_EQ(marked->length, kBlock);
  EXPECT_TRUE(fs.MediaErrors()->lost.empty());  // not routed
  uint8_t buf[16];
  EXPECT_EQ(fs.Read(a->ino, kBlock, buf).status().code(), EIO);
  EXPECT_TRUE(fs.Read(a->ino, 0, buf).ok());

  Result<ScrubReport> r = (*dax)->Scrub({});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->data.found, 1u);
  ASSERT_EQ(r->lost.size(), 1u);
  EXPECT_EQ(r->lost[0].ino, a->ino);
  EXPECT_EQ(r->lost[0].path, "/victim");
  EXPECT_EQ(r->lost[0].file_offset, kBlock);
  Result<size_t> got = fs.Read(b->ino, 0, buf);
  EXPECT_TRUE(got.ok());
  ASSERT_TRUE((*dax)->Unmount().ok());
}

// The loss observer hears every owner a routing records lost, whatever routed it (here
// InjectError and the scrub), once per owner, a clone included; cleared, it hears nothing.
TEST(Scrub, TheLossObserverHearsEveryOwnerWhateverFoundTheLoss) {
  Image img("observer");
  Result<std::unique_ptr<DaxFs>> dax = DaxFs::Open(img.path);
  ASSERT_TRUE(dax.ok()) << dax.status().ToString();
  Filesystem& fs = (*dax)->fs();
  Result<Attr> a = fs.Create(kRootIno, "a", 0644);
  Result<Attr> b = fs.Create(kRootIno, "b", 0644);
  ASSERT_TRUE(a.ok() && b.ok());
  std::vector<uint8_t> data(4 * kBlock, 0x33);
  ASSERT_TRUE(fs.Write(a->ino, 0, data).ok());
  ASSERT_TRUE(fs.Write(b->ino, 0, data).ok());
  Result<Attr> clone = fs.Create(kRootIno, "clone", 0644);
  ASSERT_TRUE(clone.ok());
  ASSERT_TRUE(fs.Clone(a->ino, clone->ino).ok());
  std::mutex mu;
  std::vector<std::pair<Ino, uint64_t>> heard;  // (ino, file offset)
  (*dax)->SetLossObserver([&](const FileRangeLoss& l) {
    std::lock_guard<std::mutex> lock(mu);
    heard.emplace_back(l.ino, l.file_offset);
  });
  auto device_of = [&](Ino ino, uint64_t block) {
    Result<std::vector<FileExtent>> map = fs.Bmap(ino);
    EXPECT_TRUE(map.ok() && !map->empty());
    return map->front().device_offset + block * kBlock;
  };
  ASSERT_TRUE((*dax)->InjectError(device_of(a->ino, 1), kBlock).ok());
  std::sort(heard.begin(), heard.end());
  EXPECT_EQ(heard, (std::vector<std::pair<Ino, uint64_t>>{{a->ino, kBlock}, {clone->ino, kBlock}}));
  heard.clear();
  ASSERT_TRUE((*dax)->InjectLatentError(device_of(b->ino, 2), kBlock).ok());
  EXPECT_TRUE(heard.empty());  // marked only: nothing routed yet
  Result<ScrubReport> r = (*dax)->Scrub({});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(heard, (std::vector<std::pair<Ino, uint64_t>>{{b->ino, 2 * kBlock}}));
  heard.clear();
  (*dax)->SetLossObserver({});
  ASSERT_TRUE((*dax)->InjectError(device_of(b->ino, 3), kBlock).ok());
  EXPECT_TRUE(heard.empty());
  ASSERT_TRUE((*dax)->Unmount().ok());
}

TEST(Scrub, StopsBetweenSlicesAndResumesWhereItStopped) {
  uint64_t seed = Seed();
  base::Random rng(seed);
  Image img("resume");
  std::map<uint64_t, std::set<Owner>> owned;
  {
    Result<std::unique_ptr<DaxFs>> dax = DaxFs::Open(img.path, NoScan());
    ASSERT_TRUE(dax.ok());
    owned = Age((*dax)->fs(), rng);
    ASSERT_TRUE((*dax)->Unmount().ok());
  }
  std::vector<uint64_t> blocks;
  std::set<Owner> want = Pick(owned, rng, 8, &blocks);
  for (uint64_t b : blocks) img.AddBad(b);
  ScrubPosition resume;
  std::set<Owner> lost;
  {
    Result<std::unique_ptr<DaxFs>> dax = DaxFs::Open(img.path, NoScan());
    ASSERT_TRUE(dax.ok());
    std::atomic<bool> stop{false};
    ScrubOptions o{.slice_bytes = 16 << 10, .stop = &stop};
    o.progress = [&](const ScrubProgress& p) {
      if (p.phase == ScrubPhase::kData && p.done_bytes >= 64 * kBlock) stop.store(true);
    };
    Result<ScrubReport> r = (*dax)->Scrub(o);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_TRUE(r->stopped);
    EXPECT_EQ(r->resume.phase, ScrubPhase::kData);
    EXPECT_GT(r->resume.block, 0u);
    EXPECT_LT(r->data.checked, owned.size());
    resume = r->resume;
    lost = Lost(*r);
    ASSERT_TRUE((*dax)->Unmount().ok());
  }
  Result<std::unique_ptr<DaxFs>> dax = DaxFs::Open(img.path, NoScan());
  ASSERT_TRUE(dax.ok());
  Result<ScrubReport> r = (*dax)->Scrub({.resume = resume});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->stopped);
  EXPECT_FALSE(r->metadata.ran);  // resumed past it
  EXPECT_FALSE(r->index.ran);
  EXPECT_TRUE(r->data.ran);
  std::set<Owner> rest = Lost(*r);
  for (const Owner& o : rest) EXPECT_EQ(lost.count(o), 0u) << "reported twice";
  lost.insert(rest.begin(), rest.end());
  EXPECT_EQ(lost, want);
  Result<FsCheckResult> check = (*dax)->fs().Check();
  ASSERT_TRUE(check.ok());
  EXPECT_TRUE(check->ok()) << (check->problems.empty() ? "" : check->problems[0]);
}

}  // namespace
}  // namespace daxfs
