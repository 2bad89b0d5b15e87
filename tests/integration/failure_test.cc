// Media-failure routing end to end, through the public DaxFs API: randomly aged filesystems with
// clones and live mappings get random bad ranges in shared data, unshared data, free space and
// metadata; the owners and notified mappings are compared with ground truth computed from the
// extent maps (Bmap) and the mappings themselves; the three tracking designs and the full scan
// must agree on every failure; reads of lost data fail, everything else reads back as written,
// and check passes. Also: many mappings of one block, a real load trapping on a fenced page, a
// self-sent BUS_MCEERR_AR, poison surviving remount, device removal. Seeded: DAXFS_SEED=<n>.
#include <fmt/core.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "base/random.h"
#include "daxfs/dax.h"
#include "device/device.h"

namespace daxfs {
namespace {

constexpr uint64_t kBlock = 4096;

std::string ShmPath(const std::string& name) {
  return fmt::format("/dev/shm/daxfs-failure-{}-{}.img", getpid(), name);
}

struct Image {
  std::string path;
  explicit Image(const std::string& name, uint64_t size = 64 << 20,
                 const FormatOptions& fo = {.chunk_size = 1 << 20})
      : path(ShmPath(name)) {
    std::remove((path + ".badblocks").c_str());
    EXPECT_TRUE(device::CreateDeviceFile(path, size, true).ok());
    EXPECT_TRUE(Filesystem::Format(path, fo).ok());
  }
  ~Image() {
    std::remove(path.c_str());
    std::remove((path + ".badblocks").c_str());
    std::remove((path + ".events.jsonl").c_str());
  }
};

DaxOptions AllDesigns() {
  DaxOptions o;
  o.tracking = Tracking::kFsRmap;
  o.shadow_tracking = {Tracking::kPageRmap, Tracking::kExtentSpace, Tracking::kFullScan};
  return o;
}

std::string Pattern(uint64_t seed, size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((seed * 131 + i * 7 + (i >> 12)) & 0xff);
  return s;
}

Status WriteAll(Filesystem& fs, Ino ino, uint64_t off, const std::string& data) {
  auto span = std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data.data()), data.size());
  ASSIGN_OR_RETURN(size_t n, fs.Write(ino, off, span));
  if (n != data.size()) return Status::IoError("short write");
  return Status::Ok();
}

// A live mapping and what its handler heard.
struct Live {
  std::unique_ptr<Mapping> mapping;
  std::shared_ptr<std::vector<MappingNotice>> heard = std::make_shared<std::vector<MappingNotice>>();
};

Result<std::unique_ptr<Live>> MapFile(DaxFs& dax, Ino ino, uint64_t off, uint64_t len,
                                      MapProt prot = MapProt::kRead) {
  auto live = std::make_unique<Live>();
  auto heard = live->heard;
  ASSIGN_OR_RETURN(live->mapping, dax.Map(ino, off, len, prot,
                                          [heard](const MappingNotice& n) { heard->push_back(n); }));
  return live;
}

// Ground truth: the victims of device bytes [off, +len) from the extent maps (Bmap) of the
// mapped files and the mappings' own ranges, page by page, normalized like the designs do.
// Pages already lost are fenced: no design names them again.
std::vector<Victim> TrueVictims(Filesystem& fs, const std::vector<std::unique_ptr<Live>>& lives,
                                uint64_t off, uint64_t len) {
  uint64_t first = off / kBlock * kBlock, end = (off + len + kBlock - 1) / kBlock * kBlock;
  std::set<std::pair<Ino, uint64_t>> lost;
  Result<MediaErrorList> errors = fs.MediaErrors();
  EXPECT_TRUE(errors.ok());
  if (errors.ok()) {
    for (const FileRangeLoss& l : errors->lost) {
      for (uint64_t p = 0; p < l.length; p += kBlock) lost.insert({l.ino, l.file_offset + p});
    }
  }
  std::vector<Victim> out;
  std::map<Ino, std::vector<FileExtent>> bmaps;
  for (const auto& l : lives) {
    const Mapping& m = *l->mapping;
    if (!bmaps.count(m.ino())) {
      Result<std::vector<FileExtent>> b = fs.Bmap(m.ino());
      bmaps[m.ino()] = b.ok() ? *b : std::vector<FileExtent>{};
    }
    for (const FileExtent& x : bmaps[m.ino()]) {
      if (x.unwritten) continue;
      for (uint64_t p = 0; p < x.length; p += kBlock) {
        uint64_t dev = x.device_offset + p, foff = x.file_offset + p;
        if (dev < first || dev >= end) continue;
        if (foff < m.file_offset() || foff >= m.file_offset() + m.length()) continue;
        if (lost.count({m.ino(), foff})) continue;
        out.push_back({.mapping_id = m.id(), .address = m.data() + (foff - m.file_offset()),
                       .length = kBlock, .ino = m.ino(), .file_offset = foff,
                       .device_offset = dev});
      }
    }
  }
  std::sort(out.begin(), out.end(), [](const Victim& a, const Victim& b) {
    return a.mapping_id != b.mapping_id ? a.mapping_id < b.mapping_id : a.address < b.address;
  });
  std::vector<Victim> merged;
  for (const Victim& v : out) {
    if (!merged.empty() && merged.back().mapping_id == v.mapping_id &&
        merged.back().address + merged.back().length == v.address &&
        merged.back().file_offset + merged.back().length == v.file_offset &&
        merged.back().device_offset + merged.back().length == v.device_offset) {
      merged.back().length += v.length;
    } else {
      merged.push_back(v);
    }
  }
  return merged;
}

// Ground truth owners (ino, file block) of device bytes [off, +len) from every file's Bmap.
std::set<std::pair<Ino, uint64_t>> TrueOwners(Filesystem& fs, const std::vector<Ino>& files,
                                              uint64_t off, uint64_t len) {
  uint64_t first = off / kBlock * kBlock, end = (off + len + kBlock - 1) / kBlock * kBlock;
  std::set<std::pair<Ino, uint64_t>> out;
  for (Ino ino : files) {
    Result<std::vector<FileExtent>> b = fs.Bmap(ino);
    if (!b.ok()) continue;
    for (const FileExtent& x : *b) {
      for (uint64_t p = 0; p < x.length; p += kBlock) {
        if (x.device_offset + p >= first && x.device_offset + p < end) {
          out.insert({ino, (x.file_offset + p) / kBlock});
        }
      }
    }
  }
  return out;
}

std::string VictimText(const std::vector<Victim>& vs) {
  std::string s;
  for (const Victim& v : vs) {
    s += fmt::format("[m{} {:#x}+{} ino {} foff {} dev {}] ", v.mapping_id,
                     reinterpret_cast<uintptr_t>(v.address), v.length, v.ino, v.file_offset,
                     v.device_offset);
  }
  return s;
}

// Reopens an image after a metadata hit: it must mount read-only, and check must report the
// damage; `out` gets what `errors` lists (metadata damage among it).
void ReopenDamagedReadOnly(const std::string& path, MediaErrorList* out) {
  DaxOptions ro;
  ro.mount.read_only = true;
  Result<std::unique_ptr<DaxFs>> again = DaxFs::Open(path, ro);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  Result<FsCheckResult> c = (*again)->fs().Check();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_FALSE(c->ok());
  Result<MediaErrorList> e = (*again)->fs().MediaErrors();
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_FALSE(e->metadata_damage.empty());
  *out = std::move(*e);
}

uint64_t Seed() {
  const char* env = std::getenv("DAXFS_SEED");
  uint64_t seed = env ? std::strtoull(env, nullptr, 10) : 0x5eed0005ULL;
  std::printf("DAXFS_SEED=%llu\n", static_cast<unsigned long long>(seed));
  return seed;
}

// ---- The randomized test.

TEST(FailureRouting, RandomAgedFilesystemsAllDesignsAgreeWithGroundTruth) {
  uint64_t seed = Seed();
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE(fmt::format("seed {} round {}", seed, round));
    base::Random rng(seed + round);
    Image img(fmt::format("random{}", round), 64 << 20,
              {.chunk_size = 1 << 20, .metadata_dup = false});
    Result<std::unique_ptr<DaxFs>> opened = DaxFs::Open(img.path, AllDesigns());
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    DaxFs& dax = **opened;
    Filesystem& fs = dax.fs();

    // Age: files with random writes, clones, range clones, punches and truncates.
    std::vector<Ino> files;
    std::map<Ino, std::string> model;  // expected contents
    for (int i = 0; i < 6; ++i) {
      Result<Attr> a = fs.Create(kRootIno, fmt::format("f{}", i), 0644);
      ASSERT_TRUE(a.ok());
      files.push_back(a->ino);
      std::string data = Pattern(rng.Next(), (1 + rng.Uniform(24)) * kBlock);
      ASSERT_TRUE(WriteAll(fs, a->ino, 0, data).ok());
      model[a->ino] = data;
    }
    for (int step = 0; step < 60; ++step) {
      Ino a = files[rng.Uniform(files.size())], b = files[rng.Uniform(files.size())];
      std::string& ma = model[a];
      std::string& mb = model[b];
      switch (rng.Uniform(5)) {
        case 0: {  // overwrite some blocks (copy-on-write of shared ones)
          uint64_t off = rng.Uniform(ma.size() / kBlock + 1) * kBlock;
          std::string data = Pattern(rng.Next(), (1 + rng.Uniform(3)) * kBlock);
          ASSERT_TRUE(WriteAll(fs, a, off, data).ok());
          if (ma.size() < off + data.size()) ma.resize(off + data.size(), '\0');
          ma.replace(off, data.size(), data);
          break;
        }
        case 1:  // whole-file clone
          if (a != b) {
            ASSERT_TRUE(fs.Clone(a, b).ok());
            mb = ma;
          }
          break;
        case 2: {  // range clone
          if (a == b || ma.size() < kBlock) break;
          uint64_t blocks = 1 + rng.Uniform(std::min<uint64_t>(4, ma.size() / kBlock));
          uint64_t so = rng.Uniform(ma.size() / kBlock - blocks + 1) * kBlock;
          uint64_t d = rng.Uniform(mb.size() / kBlock + 1) * kBlock;
          ASSERT_TRUE(fs.CloneRange(a, so, b, d, blocks * kBlock).ok());
          if (mb.size() < d + blocks * kBlock) mb.resize(d + blocks * kBlock, '\0');
          mb.replace(d, blocks * kBlock, ma.substr(so, blocks * kBlock));
          break;
        }
        case 3: {  // punch a block
          if (ma.size() < kBlock) break;
          uint64_t off = rng.Uniform(ma.size() / kBlock) * kBlock;
          ASSERT_TRUE(fs.Fallocate(a, kFallocPunchHole | kFallocKeepSize, off, kBlock).ok());
          ma.replace(off, kBlock, std::string(kBlock, '\0'));
          break;
        }
        case 4: {  // truncate to whole blocks
          uint64_t size = rng.Uniform(ma.size() / kBlock + 2) * kBlock;
          ASSERT_TRUE(fs.Truncate(a, size).ok());
          ma.resize(size, '\0');
          break;
        }
      }
    }
    // Make sure both kinds exist whatever the aging did: a private file and a shared pair.
    for (const char* name : {"private", "pair-a", "pair-b"}) {
      Result<Attr> a = fs.Create(kRootIno, name, 0644);
      ASSERT_TRUE(a.ok());
      files.push_back(a->ino);
      if (std::string(name) == "pair-b") {
        ASSERT_TRUE(fs.Clone(files[files.size() - 2], a->ino).ok());
        model[a->ino] = model[files[files.size() - 2]];
      } else {
        std::string data = Pattern(rng.Next(), 4 * kBlock);
        ASSERT_TRUE(WriteAll(fs, a->ino, 0, data).ok());
        model[a->ino] = data;
      }
    }
    // Live mappings: several per file, some overlapping.
    std::vector<std::unique_ptr<Live>> lives;
    for (Ino ino : files) {
      uint64_t blocks = model[ino].size() / kBlock;
      if (blocks == 0) continue;
      for (int k = 0; k < 2; ++k) {
        uint64_t first = rng.Uniform(blocks), n = 1 + rng.Uniform(blocks - first);
        Result<std::unique_ptr<Live>> l = MapFile(dax, ino, first * kBlock, n * kBlock);
        ASSERT_TRUE(l.ok()) << l.status().ToString();
        lives.push_back(std::move(*l));
      }
    }
    // Candidate failures: blocks with several owners, with one owner, and free blocks.
    std::vector<FsmapRecord> records;
    {
      Result<std::vector<FsmapRecord>> r = fs.Fsmap(0, ~0ULL, std::nullopt, 0);
      ASSERT_TRUE(r.ok());
      records = *r;
    }
    std::vector<uint64_t> shared, unshared, metadata;
    std::set<uint64_t> owned;
    for (const FsmapRecord& r : records) {
      for (uint64_t p = 0; p < r.length; p += kBlock) owned.insert(r.physical + p);
      if (r.flags & kFsmapSpecialOwner) {
        if (r.owner == kOwnerMetadata) metadata.push_back(r.physical);
        continue;
      }
      (r.flags & kFsmapShared ? shared : unshared).push_back(r.physical);
    }
    std::vector<uint64_t> free_blocks;
    for (uint64_t b = 64; b < 2048 && free_blocks.size() < 8; b += 1 + rng.Uniform(37)) {
      if (!owned.count(b * kBlock)) free_blocks.push_back(b * kBlock);
    }
    ASSERT_FALSE(shared.empty());
    ASSERT_FALSE(unshared.empty());

    int injected = 0;
    for (int k = 0; k < 8; ++k) {
      std::vector<uint64_t>* pool = k % 3 == 0 ? &shared : k % 3 == 1 ? &unshared : &free_blocks;
      if (pool->empty()) continue;
      uint64_t off = (*pool)[rng.Uniform(pool->size())];
      uint64_t len = (1 + rng.Uniform(2)) * kBlock - rng.Uniform(2) * 100;  // partial blocks too
      SCOPED_TRACE(fmt::format("failure at {}+{}", off, len));
      std::vector<Victim> truth = TrueVictims(fs, lives, off, len);
      std::set<std::pair<Ino, uint64_t>> owners = TrueOwners(fs, files, off, len);
      for (Tracking t : {Tracking::kFsRmap, Tracking::kPageRmap, Tracking::kExtentSpace,
                         Tracking::kFullScan}) {
        Result<std::vector<Victim>> v = dax.FindVictims(t, off, len);
        ASSERT_TRUE(v.ok()) << TrackingName(t) << ": " << v.status().ToString();
        EXPECT_EQ(*v, truth) << TrackingName(t) << "\n got:  " << VictimText(*v)
                             << "\n want: " << VictimText(truth);
      }
      std::vector<size_t> heard_before;
      for (auto& l : lives) heard_before.push_back(l->heard->size());
      Result<FailureReport> r = dax.InjectError(off, len);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      ++injected;
      // Owners: exactly the ground truth (already-lost owners are reported again; fine).
      std::set<std::pair<Ino, uint64_t>> reported;
      for (const FileRangeLoss& o : r->media.owners) {
        for (uint64_t p = 0; p < o.length; p += kBlock) reported.insert({o.ino, (o.file_offset + p) / kBlock});
      }
      EXPECT_EQ(reported, owners);
      // Notices: exactly the victims, each heard by its own mapping's handler.
      std::vector<Victim> noticed;
      for (const MappingNotice& n : r->notices) {
        noticed.push_back({.mapping_id = n.mapping_id, .address = n.address, .length = n.length,
                           .ino = n.ino, .file_offset = n.file_offset,
                           .device_offset = n.device_offset});
      }
      EXPECT_EQ(noticed, truth) << "\n got:  " << VictimText(noticed)
                                << "\n want: " << VictimText(truth);
      for (size_t i = 0; i < lives.size(); ++i) {
        size_t expect = 0;
        for (const Victim& v : truth) expect += v.mapping_id == lives[i]->mapping->id();
        EXPECT_EQ(lives[i]->heard->size() - heard_before[i], expect) << "mapping " << i;
        for (size_t j = heard_before[i]; j < lives[i]->heard->size(); ++j) {
          EXPECT_EQ((*lives[i]->heard)[j].mapping_id, lives[i]->mapping->id());
        }
      }
      // Lost blocks read EIO; the designs now find nothing there (pages fenced and left).
      for (const auto& [ino, block] : owners) {
        uint8_t buf[16];
        Result<size_t> n = fs.Read(ino, block * kBlock, buf);
        EXPECT_FALSE(n.ok()) << "read of lost block " << block << " of inode " << ino;
        if (!n.ok()) {
          EXPECT_EQ(n.status().code(), EIO);
        }
      }
      for (Tracking t : {Tracking::kFsRmap, Tracking::kPageRmap, Tracking::kExtentSpace,
                         Tracking::kFullScan}) {
        Result<std::vector<Victim>> v = dax.FindVictims(t, off, len);
        ASSERT_TRUE(v.ok());
        EXPECT_TRUE(v->empty()) << TrackingName(t) << " still names " << VictimText(*v);
      }
    }
    EXPECT_GT(injected, 0);
    // Everything not lost reads back as the model says.
    Result<MediaErrorList> errors = fs.MediaErrors();
    ASSERT_TRUE(errors.ok());
    std::set<std::pair<Ino, uint64_t>> lost;
    for (const FileRangeLoss& l : errors->lost) {
      for (uint64_t p = 0; p < l.length; p += kBlock) lost.insert({l.ino, (l.file_offset + p) / kBlock});
    }
    for (Ino ino : files) {
      const std::string& want = model[ino];
      for (uint64_t b = 0; b * kBlock < want.size(); ++b) {
        if (lost.count({ino, b})) continue;
        std::string got(kBlock, '\0');
        Result<size_t> n = fs.Read(ino, b * kBlock, std::span<uint8_t>(
                                                         reinterpret_cast<uint8_t*>(got.data()), kBlock));
        ASSERT_TRUE(n.ok()) << "inode " << ino << " block " << b << ": " << n.status().ToString();
        EXPECT_EQ(got.substr(0, *n), want.substr(b * kBlock, *n)) << "inode " << ino << " block " << b;
      }
    }
    Result<FsCheckResult> c = fs.Check();
    ASSERT_TRUE(c.ok());
    EXPECT_TRUE(c->ok()) << (c->problems.empty() ? "" : c->problems[0]);
    EXPECT_FALSE(c->damage.empty());
    // Last, a metadata block: no mapping is told, the filesystem shuts down read-only, and the
    // image mounts read-only afterwards with check reporting the damage.
    ASSERT_FALSE(metadata.empty());
    uint64_t meta = metadata[rng.Uniform(metadata.size())];
    std::vector<size_t> heard_before;
    for (auto& l : lives) heard_before.push_back(l->heard->size());
    Result<FailureReport> m = dax.InjectError(meta, kBlock);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    std::string pieces;
    for (const RangePiece& p : m->media.pieces) {
      pieces += fmt::format("{}+{} {}; ", p.offset, p.length, RangeKindName(p.kind));
    }
    EXPECT_TRUE(m->media.metadata_hit)
        << "at " << meta << ": " << pieces << (m->actions.empty() ? "" : m->actions[0]);
    EXPECT_TRUE(m->shut_down);
    EXPECT_TRUE(m->notices.empty());
    for (size_t i = 0; i < lives.size(); ++i) EXPECT_EQ(lives[i]->heard->size(), heard_before[i]);
    EXPECT_EQ(fs.Create(kRootIno, "after", 0644).status().code(), EROFS);
    lives.clear();
    dax.Unmount().IgnoreError();
    opened->reset();
    MediaErrorList e;
    ASSERT_NO_FATAL_FAILURE(ReopenDamagedReadOnly(img.path, &e));
    // The lost ranges are still listed, unless the damaged node is one the list needs.
    if (e.incomplete.empty()) {
      EXPECT_EQ(e.lost.size(), errors->lost.size());
    }
  }
}

// ---- Focused cases.

struct Cloned {
  std::unique_ptr<DaxFs> dax;
  std::vector<Ino> copies;
};

// A 4-block file and `n` clones of it (and a range clone at another offset in the last one).
Result<Cloned> MakeClones(const std::string& path, int n, const DaxOptions& options = AllDesigns()) {
  Cloned c;
  ASSIGN_OR_RETURN(c.dax, DaxFs::Open(path, options));
  Filesystem& fs = c.dax->fs();
  ASSIGN_OR_RETURN(Attr src, fs.Create(kRootIno, "src", 0644));
  RETURN_IF_ERROR(WriteAll(fs, src.ino, 0, Pattern(1, 4 * kBlock)));
  c.copies.push_back(src.ino);
  for (int i = 0; i < n; ++i) {
    ASSIGN_OR_RETURN(Attr a, fs.Create(kRootIno, fmt::format("copy{}", i), 0644));
    RETURN_IF_ERROR(fs.Clone(src.ino, a.ino));
    c.copies.push_back(a.ino);
  }
  ASSIGN_OR_RETURN(Attr shifted, fs.Create(kRootIno, "shifted", 0644));
  RETURN_IF_ERROR(WriteAll(fs, shifted.ino, 0, Pattern(2, 8 * kBlock)));
  RETURN_IF_ERROR(fs.CloneRange(src.ino, 0, shifted.ino, 5 * kBlock, 2 * kBlock));
  c.copies.push_back(shifted.ino);
  return c;
}

uint64_t DeviceOffsetOf(Filesystem& fs, Ino ino, uint64_t file_offset) {
  Result<std::vector<FileExtent>> b = fs.Bmap(ino);
  for (const FileExtent& x : *b) {
    if (file_offset >= x.file_offset && file_offset < x.file_offset + x.length) {
      return x.device_offset + (file_offset - x.file_offset);
    }
  }
  ADD_FAILURE() << "no extent at " << file_offset;
  return 0;
}

TEST(FailureRouting, ManyMappingsOfOneSharedBlockEachGetTheirOwnAddress) {
  Image img("many");
  Result<Cloned> c = MakeClones(img.path, 5);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  DaxFs& dax = *c->dax;
  Filesystem& fs = dax.fs();
  uint64_t bad = DeviceOffsetOf(fs, c->copies[0], kBlock);  // block 1 of src: shared by all
  std::vector<std::unique_ptr<Live>> lives;
  for (Ino ino : c->copies) {
    Result<Attr> a = fs.GetAttr(ino);
    ASSERT_TRUE(a.ok());
    Result<std::unique_ptr<Live>> l = MapFile(dax, ino, 0, a->size);
    ASSERT_TRUE(l.ok()) << l.status().ToString();
    lives.push_back(std::move(*l));
  }
  // Overlapping mappings of one file, one not covering the bad block.
  for (auto [off, len] : {std::pair<uint64_t, uint64_t>{0, 2 * kBlock}, {kBlock, kBlock}, {2 * kBlock, 2 * kBlock}}) {
    Result<std::unique_ptr<Live>> l = MapFile(dax, c->copies[1], off, len);
    ASSERT_TRUE(l.ok());
    lives.push_back(std::move(*l));
  }
  Result<FailureReport> r = dax.InjectError(bad, kBlock);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->media.owners.size(), c->copies.size());  // src, 5 copies, shifted
  std::set<uint8_t*> addresses;
  for (size_t i = 0; i < lives.size(); ++i) {
    const Mapping& m = *lives[i]->mapping;
    bool covers = i != lives.size() - 1;  // the last mapping starts past the bad block
    ASSERT_EQ(lives[i]->heard->size(), covers ? 1u : 0u) << "mapping " << i;
    if (!covers) continue;
    const MappingNotice& n = (*lives[i]->heard)[0];
    uint64_t foff = m.ino() == c->copies.back() ? 6 * kBlock : kBlock;
    EXPECT_EQ(n.mapping_id, m.id());
    EXPECT_EQ(n.file_offset, foff);
    EXPECT_EQ(n.address, m.data() + (foff - m.file_offset()));
    EXPECT_EQ(n.length, kBlock);
    EXPECT_EQ(n.device_offset, bad);
    EXPECT_FALSE(n.path.empty());
    EXPECT_TRUE(addresses.insert(n.address).second) << "two mappings told the same address";
  }
  // A full-block rewrite of one copy restores it; the others stay lost.
  ASSERT_TRUE(WriteAll(fs, c->copies[2], kBlock, Pattern(9, kBlock)).ok());
  std::string got(kBlock, '\0');
  auto span = std::span<uint8_t>(reinterpret_cast<uint8_t*>(got.data()), kBlock);
  ASSERT_TRUE(fs.Read(c->copies[2], kBlock, span).ok());
  EXPECT_EQ(got, Pattern(9, kBlock));
  EXPECT_EQ(fs.Read(c->copies[3], kBlock, span).status().code(), EIO);
  lives.clear();
  Result<FsCheckResult> check = fs.Check();
  ASSERT_TRUE(check.ok());
  EXPECT_TRUE(check->ok()) << (check->problems.empty() ? "" : check->problems[0]);
}

TEST(FailureRouting, LoadFromFencedPageTrapsAndIsReportedAsActionRequired) {
  Image img("trap");
  DaxOptions o = AllDesigns();
  o.handle_signals = true;
  Result<Cloned> c = MakeClones(img.path, 1, o);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  DaxFs& dax = *c->dax;
  Result<std::unique_ptr<Live>> l = MapFile(dax, c->copies[1], 0, 4 * kBlock);
  ASSERT_TRUE(l.ok());
  Live& live = **l;
  EXPECT_EQ(live.mapping->data()[2 * kBlock], static_cast<uint8_t>(Pattern(1, 4 * kBlock)[2 * kBlock]));
  uint64_t bad = DeviceOffsetOf(dax.fs(), c->copies[1], 2 * kBlock);
  ASSERT_TRUE(dax.InjectError(bad, kBlock).ok());
  ASSERT_EQ(live.heard->size(), 1u);
  volatile uint8_t* p = live.mapping->data() + 2 * kBlock + 17;
  uint8_t sink = 0;
  Status s = GuardMediaErrors([&] { sink = *p; });
  EXPECT_EQ(s.code(), EIO) << s.ToString();
  ASSERT_TRUE(dax.WaitForSignals().ok());
  ASSERT_EQ(live.heard->size(), 2u);
  const MappingNotice& n = (*live.heard)[1];
  EXPECT_TRUE(n.consumed);
  EXPECT_TRUE(n.action_required);
  EXPECT_EQ(n.address, live.mapping->data() + 2 * kBlock);
  EXPECT_EQ(n.file_offset, 2 * kBlock);
  // The neighbouring pages still load.
  EXPECT_EQ(live.mapping->data()[kBlock], static_cast<uint8_t>(Pattern(1, 4 * kBlock)[kBlock]));
  (void)sink;
}

TEST(FailureRouting, SelfSentMceErrArSigbusIsRoutedToEveryOwner) {
  Image img("sigbus");
  DaxOptions o = AllDesigns();
  o.handle_signals = true;
  Result<Cloned> c = MakeClones(img.path, 2, o);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  DaxFs& dax = *c->dax;
  std::vector<std::unique_ptr<Live>> lives;
  for (Ino ino : {c->copies[0], c->copies[1], c->copies[2]}) {
    Result<std::unique_ptr<Live>> l = MapFile(dax, ino, 0, 4 * kBlock);
    ASSERT_TRUE(l.ok());
    lives.push_back(std::move(*l));
  }
  uint8_t* addr = lives[1]->mapping->data() + 3 * kBlock + 100;
  siginfo_t info{};
  info.si_signo = SIGBUS;
  info.si_code = BUS_MCEERR_AR;
  info.si_addr = addr;
  info.si_addr_lsb = 12;
  ASSERT_EQ(syscall(SYS_rt_tgsigqueueinfo, getpid(), syscall(SYS_gettid), SIGBUS, &info), 0);
  ASSERT_TRUE(dax.WaitForSignals().ok());
  for (size_t i = 0; i < lives.size(); ++i) {
    ASSERT_EQ(lives[i]->heard->size(), 1u) << "mapping " << i;
    const MappingNotice& n = (*lives[i]->heard)[0];
    EXPECT_EQ(n.address, lives[i]->mapping->data() + 3 * kBlock);
    EXPECT_EQ(n.file_offset, 3 * kBlock);
    EXPECT_TRUE(n.action_required);
  }
  uint8_t buf[8];
  EXPECT_EQ(dax.fs().Read(c->copies[0], 3 * kBlock, buf).status().code(), EIO);
  Status s = GuardMediaErrors([&] { buf[0] = *static_cast<volatile uint8_t*>(addr); });
  EXPECT_EQ(s.code(), EIO);
}

TEST(FailureRouting, PoisonSurvivesRemountAndMappingsOfLostRangesAreFenced) {
  Image img("remount");
  uint64_t bad = 0;
  std::vector<Ino> copies;
  {
    Result<Cloned> c = MakeClones(img.path, 2);
    ASSERT_TRUE(c.ok());
    copies = c->copies;
    bad = DeviceOffsetOf(c->dax->fs(), copies[0], 0);
    ASSERT_TRUE(c->dax->InjectError(bad, kBlock).ok());
    ASSERT_TRUE(c->dax->Unmount().ok());
  }
  DaxOptions o = AllDesigns();
  o.handle_signals = true;
  Result<std::unique_ptr<DaxFs>> again = DaxFs::Open(img.path, o);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  DaxFs& dax = **again;
  EXPECT_TRUE(dax.mount_reports().empty());  // already recorded: nothing new to route
  Result<MediaErrorList> e = dax.fs().MediaErrors();
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->lost.size(), 4u);  // src, copy0, copy1, shifted (block 0 -> file offset 5 blocks)
  uint8_t buf[8];
  for (Ino ino : {copies[0], copies[1], copies[2]}) {
    EXPECT_EQ(dax.fs().Read(ino, 0, buf).status().code(), EIO);
  }
  Result<std::unique_ptr<Live>> l = MapFile(dax, copies[1], 0, 4 * kBlock);
  ASSERT_TRUE(l.ok());
  Status s = GuardMediaErrors([&] { buf[0] = *static_cast<volatile uint8_t*>((*l)->mapping->data()); });
  EXPECT_EQ(s.code(), EIO);
  EXPECT_EQ((*l)->mapping->data()[kBlock], static_cast<uint8_t>(Pattern(1, 4 * kBlock)[kBlock]));
  // The bad block is never handed out again.
  Result<Attr> big = dax.fs().Create(kRootIno, "big", 0644);
  ASSERT_TRUE(big.ok());
  ASSERT_TRUE(WriteAll(dax.fs(), big->ino, 0, Pattern(3, 8 << 20)).ok());
  Result<std::vector<FileExtent>> b = dax.fs().Bmap(big->ino);
  ASSERT_TRUE(b.ok());
  for (const FileExtent& x : *b) {
    EXPECT_FALSE(bad >= x.device_offset && bad < x.device_offset + x.length);
  }
}

TEST(FailureRouting, FreeSpaceHitIsRetiredAndMetadataHitShutsDown) {
  Image img("kinds", 64 << 20, {.chunk_size = 1 << 20, .metadata_dup = false});
  Result<std::unique_ptr<DaxFs>> opened = DaxFs::Open(img.path, AllDesigns());
  ASSERT_TRUE(opened.ok());
  DaxFs& dax = **opened;
  Result<std::vector<FsmapRecord>> recs = dax.fs().Fsmap(0, ~0ULL, std::nullopt, 0);
  ASSERT_TRUE(recs.ok());
  uint64_t metadata = 0;
  for (const FsmapRecord& r : *recs) {
    if (r.owner == kOwnerMetadata) metadata = r.physical + r.length - kBlock;
  }
  uint64_t free_off = 40ull << 20;  // an unallocated chunk of a fresh 64 MiB image
  Result<FailureReport> f = dax.InjectError(free_off, kBlock);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  ASSERT_EQ(f->media.retired.size(), 1u);
  EXPECT_FALSE(f->shut_down);
  Result<FailureReport> m = dax.InjectError(metadata, kBlock);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_TRUE(m->media.metadata_hit);
  EXPECT_TRUE(m->shut_down);
  EXPECT_EQ(dax.fs().Create(kRootIno, "x", 0644).status().code(), EROFS);
  dax.Unmount().IgnoreError();
  opened->reset();
  // Mounts read-only afterwards, and check reports the damage.
  MediaErrorList e;
  ASSERT_NO_FATAL_FAILURE(ReopenDamagedReadOnly(img.path, &e));
  EXPECT_FALSE(e.retired.empty());
}

// With twins (the default) the same metadata hit is repaired: the node moves, the event log
// has the failure (naming the repair) and a "repair" event, and the filesystem stays writable.
TEST(FailureRouting, MetadataHitWithATwinIsRepairedAndLogged) {
  Image img("healed");
  std::string log = img.path + ".events.jsonl";
  DaxOptions o = AllDesigns();
  o.event_log = log;
  Result<std::unique_ptr<DaxFs>> opened = DaxFs::Open(img.path, o);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  DaxFs& dax = **opened;
  Result<Attr> a = dax.fs().Create(kRootIno, "a", 0644);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(WriteAll(dax.fs(), a->ino, 0, Pattern(7, 3 * kBlock)).ok());
  ASSERT_TRUE(dax.fs().Sync().ok());
  // The metadata node holding the root directory's entry: the first `metadata` block in use is
  // not known from outside, so hit every block of the first metadata run until a node moves.
  Result<std::vector<FsmapRecord>> recs = dax.fs().Fsmap(0, ~0ULL, std::nullopt, 0);
  ASSERT_TRUE(recs.ok());
  uint64_t first = 0;
  for (const FsmapRecord& r : *recs) {
    if (r.owner == kOwnerMetadata) {
      first = r.physical;
      break;
    }
  }
  ASSERT_NE(first, 0u);
  const MetadataRepair* moved = nullptr;
  Result<FailureReport> m = Status::Invalid("none");
  for (uint64_t at = first; at < first + 64 * kBlock && moved == nullptr; at += kBlock) {
    m = dax.InjectError(at, kBlock);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    EXPECT_FALSE(m->media.metadata_hit) << m->media.message;
    EXPECT_FALSE(m->shut_down);
    for (const MetadataRepair& r : m->media.repairs) {
      if (r.kind == MetadataRepair::Kind::kRelocated) moved = &r;
    }
  }
  ASSERT_NE(moved, nullptr) << "no node was hit in the first 64 metadata blocks";
  EXPECT_TRUE(moved->primary_bad);
  EXPECT_NE(moved->new_block, moved->block);
  Result<Attr> b = dax.fs().Create(kRootIno, "b", 0644);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  std::string got(3 * kBlock, '\0');
  Result<size_t> n = dax.fs().Read(a->ino, 0, {reinterpret_cast<uint8_t*>(got.data()), got.size()});
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(got, Pattern(7, 3 * kBlock));
  FILE* f = std::fopen(log.c_str(), "r");
  ASSERT_NE(f, nullptr);
  std::string text;
  char buf[4096];
  for (size_t r; (r = std::fread(buf, 1, sizeof buf, f)) > 0;) text.append(buf, r);
  std::fclose(f);
  EXPECT_NE(text.find("\"event\":\"repair\""), std::string::npos) << text;
  EXPECT_NE(text.find(fmt::format("\"new_block\":{}", moved->new_block)), std::string::npos)
      << text;
  EXPECT_NE(text.find("\"repairs\":["), std::string::npos) << text;
  ASSERT_TRUE(dax.Unmount().ok());
  opened->reset();
  Result<std::unique_ptr<DaxFs>> again = DaxFs::Open(img.path, AllDesigns());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_FALSE((*again)->fs().read_only());
  Result<FsCheckResult> check = (*again)->fs().Check();
  ASSERT_TRUE(check.ok());
  EXPECT_TRUE(check->ok()) << (check->problems.empty() ? "" : check->problems[0]);
}

TEST(FailureRouting, DeviceRemovalNotifiesEveryMapperAndUnmounts) {
  Image img("removal");
  Result<Cloned> c = MakeClones(img.path, 3);
  ASSERT_TRUE(c.ok());
  DaxFs& dax = *c->dax;
  std::vector<std::unique_ptr<Live>> lives;
  for (Ino ino : c->copies) {
    Result<std::unique_ptr<Live>> l = MapFile(dax, ino, 0, 2 * kBlock);
    ASSERT_TRUE(l.ok());
    lives.push_back(std::move(*l));
  }
  Result<FailureReport> r = dax.NotifyFailure(0, ~0ULL, kFailureRemove);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->unmounted);
  EXPECT_EQ(r->notices.size(), lives.size());
  for (auto& l : lives) {
    ASSERT_EQ(l->heard->size(), 1u);
    EXPECT_TRUE((*l->heard)[0].removal);
    EXPECT_EQ((*l->heard)[0].address, l->mapping->data());
  }
  EXPECT_EQ(dax.fs().Create(kRootIno, "late", 0644).status().code(), EIO);
  EXPECT_EQ(dax.live_mappings(), 0u);
}

TEST(FailureRouting, BadBlockListIsRoutedAtMount) {
  Image img("badlist");
  uint64_t bad = 0;
  {
    Result<Cloned> c = MakeClones(img.path, 2);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    bad = DeviceOffsetOf(c->dax->fs(), c->copies[0], 2 * kBlock);
    ASSERT_TRUE(c->dax->Unmount().ok());
  }
  {
    // The device learns of the bad range (like a scrub adding to the kernel's list), nobody routes it.
    Result<std::unique_ptr<device::Device>> dev = device::OpenDevice(img.path);
    ASSERT_TRUE(dev.ok());
    ASSERT_TRUE((*dev)->InjectPoison(bad + 100, 10).ok());
  }
  Result<std::unique_ptr<DaxFs>> dax = DaxFs::Open(img.path, AllDesigns());
  ASSERT_TRUE(dax.ok()) << dax.status().ToString();
  std::vector<FailureReport> reports = (*dax)->mount_reports();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].media.owners.size(), 3u);  // src, copy0, copy1 (shifted has blocks 0-1)
  uint8_t buf[8];
  EXPECT_EQ((*dax)->fs().Read(reports[0].media.owners[0].ino, 2 * kBlock, buf).status().code(), EIO);
  ASSERT_TRUE((*dax)->Unmount().ok());
  dax->reset();  // releases the device
  // Recorded now: the next mount has nothing new to route.
  Result<std::unique_ptr<DaxFs>> again = DaxFs::Open(img.path, AllDesigns());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE((*again)->mount_reports().empty());
}

}  // namespace
}  // namespace daxfs
