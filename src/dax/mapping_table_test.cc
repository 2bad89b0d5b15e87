// Tests of DAX mappings over a real device file in /dev/shm: what read-only and writable
// mappings show (data, holes, unwritten extents, the bytes past EOF), that writable mappings
// allocate and unshare first and persist, and what a mapping sees when the filesystem changes
// extents under it (copy-on-write by write(), punch, truncate, unlink, fences). Then the
// per-file index and the fs-rmap tracker over many mappings of shared blocks, checked against a
// brute-force answer, and every error. Every test ends with the consistency checker.
#include "dax/mapping_table.h"

#include <fmt/core.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "base/random.h"
#include "dax/interval_index.h"
#include "daxfs/media.h"
#include "device/device.h"
#include "fs/face.h"
#include "fs_fixture.h"
#include "status_assert.h"
#include "tracking/trackers.h"

namespace daxfs::dax {
namespace {

constexpr uint64_t kB = 4096;

using daxfs::testing::Bytes;
using daxfs::testing::Pattern;
std::string View(const Mapping& m, uint64_t offset, uint64_t length) {
  return std::string(reinterpret_cast<const char*>(m.data() + offset), length);
}

// A load that must trap (PROT_NONE): checked in a child process.
void Load(const uint8_t* p) {
  volatile uint8_t x = *p;
  (void)x;
}

std::atomic<int> device_counter{0};

// The shared filesystem fixture over a device file, with the mapping table and two fs-rmap
// trackers (rmap and full scan) attached.
class MappingTableTest : public daxfs::testing::FsFixture {
 protected:
  void SetUp() override {
    path_ = fmt::format("/dev/shm/daxfs-mapping-test-{}-{}", getpid(), device_counter++);
    ASSERT_OK(device::CreateDeviceFile(path_, 64 << 20, /*overwrite=*/true));
    Format({});
  }
  void TearDown() override {
    FsFixture::TearDown();
    Close();
    unlink(path_.c_str());
    unlink((path_ + ".badblocks").c_str());
  }

  void Format(const FormatOptions& options, const MountOptions& mount = {}) {
    Close();
    {
      Result<std::unique_ptr<device::Device>> dev = device::OpenDevice(path_);
      ASSERT_OK(dev);
      ASSERT_OK(Filesystem::Format(dev->get(), options));
    }
    Mount(mount);
  }
  void Mount(const MountOptions& mount = {}) {
    Result<std::unique_ptr<device::Device>> dev =
        device::OpenDevice(path_, {.read_only = mount.read_only});
    ASSERT_OK(dev);
    dev_ = std::move(*dev);
    FsFixture::Mount(mount);
    table_ = std::make_unique<MappingTable>(face());
    rmap_ = tracking::NewFsRmapTracker(face(), table_.get(), false);
    scan_ = tracking::NewFsRmapTracker(face(), table_.get(), true);
    table_->AddTracker(rmap_.get());
    table_->AddTracker(scan_.get());
  }
  // Mappings must be gone (or outlive the table on purpose).
  void Close() {
    table_.reset();
    rmap_.reset();
    scan_.reset();
    if (fs_) {
      EXPECT_OK(fs_->Unmount());
    }
    fs_.reset();
    dev_.reset();
  }
  void Remount(const MountOptions& mount = {}) {
    Close();
    Mount(mount);
  }

  // The filesystem as the DAX layer sees it (Filesystem::Open mounts an fs::FsFace).
  fs::FsFace* face() { return static_cast<fs::FsFace*>(fs_.get()); }
  void WriteAt(Ino ino, uint64_t offset, const std::string& data) { Put(ino, offset, data); }
  std::string ReadAll(Ino ino, uint64_t offset, uint64_t length) {
    return Get(ino, offset, length);
  }
  std::unique_ptr<Mapping> MapOk(Ino ino, uint64_t offset, uint64_t length, MapProt prot,
                                 MappingHandler handler = {}) {
    Result<std::unique_ptr<Mapping>> m = table_->Map(ino, offset, length, prot, std::move(handler));
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return m.ok() ? std::move(*m) : nullptr;
  }
  // File offset -> device offset of every mapped data page of `m`, from the per-file index.
  std::map<uint64_t, uint64_t> DevicePages(const Mapping& m) {
    std::map<uint64_t, uint64_t> out;
    for (const Victim& v : table_->MappedPages(m.ino(), m.file_offset(), m.length())) {
      if (v.mapping_id != m.id()) continue;
      EXPECT_EQ(v.address, m.data() + (v.file_offset - m.file_offset()));
      for (uint64_t p = 0; p < v.length; p += kB) out[v.file_offset + p] = v.device_offset + p;
    }
    return out;
  }
  // File offset -> device offset of every written block of `ino`, from Bmap.
  std::map<uint64_t, uint64_t> BmapPages(Ino ino) {
    std::map<uint64_t, uint64_t> out;
    Result<std::vector<FileExtent>> bmap = fs_->Bmap(ino);
    EXPECT_TRUE(bmap.ok());
    if (!bmap.ok()) return out;
    for (const FileExtent& x : *bmap) {
      if (x.unwritten) continue;
      for (uint64_t p = 0; p < x.length; p += kB) out[x.file_offset + p] = x.device_offset + p;
    }
    return out;
  }

  std::string path_;
  std::unique_ptr<MappingTable> table_;
  std::unique_ptr<OwnerTracker> rmap_, scan_;
};

// ---- What a mapping shows.

TEST_F(MappingTableTest, ReadOnlyMappingShowsWhatReadReturns) {
  Ino ino = NewFile("f");
  WriteAt(ino, 0, Pattern(3 * kB + 100, 1));                         // blocks 0-3
  WriteAt(ino, 8 * kB + 7, Pattern(2 * kB, 2));                      // blocks 8-10, hole 4-7
  ASSERT_OK(fs_->Fallocate(ino, kFallocKeepSize, 12 * kB, 2 * kB));  // unwritten 12-13
  WriteAt(ino, 16 * kB, Pattern(kB + 5, 3));                         // size 17 blocks + 5
  uint64_t size = 17 * kB + 5;
  std::unique_ptr<Mapping> m = MapOk(ino, 0, size, MapProt::kRead);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->length(), 18 * kB);  // whole pages
  EXPECT_FALSE(m->writable());
  EXPECT_EQ(View(*m, 0, size), ReadAll(ino, 0, size));
  EXPECT_EQ(View(*m, 4 * kB, 4 * kB), std::string(4 * kB, '\0'));                // hole
  EXPECT_EQ(View(*m, 12 * kB, 2 * kB), std::string(2 * kB, '\0'));               // unwritten
  EXPECT_EQ(View(*m, size, 18 * kB - size), std::string(18 * kB - size, '\0'));  // past EOF
  // Only the written blocks are device-backed, each where Bmap says.
  EXPECT_EQ(DevicePages(*m), BmapPages(ino));

  // A mapping of part of the file, from a block offset.
  std::unique_ptr<Mapping> part = MapOk(ino, 8 * kB, 3 * kB, MapProt::kRead);
  ASSERT_NE(part, nullptr);
  EXPECT_EQ(part->file_offset(), 8 * kB);
  EXPECT_EQ(View(*part, 0, 3 * kB), ReadAll(ino, 8 * kB, 3 * kB));
  EXPECT_EQ(table_->live_mappings(), 2u);
  part.reset();
  m.reset();
  EXPECT_EQ(table_->live_mappings(), 0u);
}

TEST_F(MappingTableTest, WritableMappingOfSparseFileAllocatesAndPersists) {
  Ino ino = NewFile("sparse");
  ASSERT_OK(fs_->Truncate(ino, 64 * kB));
  WriteAt(ino, 5 * kB, Pattern(kB, 4));
  ASSERT_OK(fs_->Fallocate(ino, kFallocKeepSize, 20 * kB, 4 * kB));
  std::string before = ReadAll(ino, 0, 64 * kB);
  std::unique_ptr<Mapping> m = MapOk(ino, 0, 64 * kB, MapProt::kReadWrite);
  ASSERT_NE(m, nullptr);
  EXPECT_TRUE(m->writable());
  EXPECT_EQ(View(*m, 0, 64 * kB), before);  // preparing changed no byte
  // Every page is a private written block now.
  std::map<uint64_t, uint64_t> pages = DevicePages(*m);
  EXPECT_EQ(pages.size(), 64u);
  EXPECT_EQ(pages, BmapPages(ino));
  Result<std::vector<FileExtent>> bmap = fs_->Bmap(ino);
  ASSERT_OK(bmap);
  for (const FileExtent& x : *bmap) {
    EXPECT_FALSE(x.unwritten);
    EXPECT_FALSE(x.shared);
  }
  std::string data = Pattern(64 * kB, 5);
  std::memcpy(m->data(), data.data(), data.size());
  ASSERT_OK(m->Persist(0, m->length()));
  EXPECT_EQ(ReadAll(ino, 0, 64 * kB), data);
  EXPECT_ERRNO(m->Persist(kB, m->length()), EINVAL);
  ASSERT_OK(m->Flush(3 * kB, 10));
  ASSERT_OK(m->Drain());
  m.reset();
  Remount();
  EXPECT_EQ(ReadAll(ino, 0, 64 * kB), data);
}

TEST_F(MappingTableTest, WritableMappingIsDurableUnderGroupCommit) {
  Remount({.durability = Durability::kGroupCommit});
  Ino ino = NewFile("g");
  ASSERT_OK(fs_->Truncate(ino, 8 * kB));
  std::unique_ptr<Mapping> m = MapOk(ino, 0, 8 * kB, MapProt::kReadWrite);
  ASSERT_NE(m, nullptr);
  std::string data = Pattern(8 * kB, 6);
  std::memcpy(m->data(), data.data(), data.size());
  ASSERT_OK(m->Persist(0, 8 * kB));
  // The preparation committed: a read-only view of the device (another mount of the same
  // image, taken from the device bytes now) finds the blocks mapped.
  std::string image(reinterpret_cast<const char*>(dev_->base()), dev_->size());
  m.reset();
  std::unique_ptr<device::Device> copy = device::NewMemoryDevice(image);
  Result<std::unique_ptr<Filesystem>> other = Filesystem::Open(copy.get(), {.read_only = true});
  ASSERT_OK(other);
  std::string got(8 * kB, '\0');
  ASSERT_OK((*other)->Read(ino, 0, {reinterpret_cast<uint8_t*>(got.data()), got.size()}));
  EXPECT_EQ(got, data);
  other->reset();
}

TEST_F(MappingTableTest, WritableMappingOfClonedFileUnshares) {
  Ino a = NewFile("a");
  std::string old = Pattern(4 * kB, 7);
  WriteAt(a, 0, old);
  Ino b = NewFile("b");
  ASSERT_OK(fs_->Clone(a, b));
  std::unique_ptr<Mapping> m = MapOk(a, 0, 4 * kB, MapProt::kReadWrite);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(View(*m, 0, 4 * kB), old);
  std::map<uint64_t, uint64_t> a_pages = DevicePages(*m), b_pages = BmapPages(b);
  for (auto& [offset, device] : a_pages) EXPECT_NE(device, b_pages[offset]);
  std::memset(m->data() + kB, 'X', kB);
  ASSERT_OK(m->Persist(kB, kB));
  EXPECT_EQ(ReadAll(b, 0, 4 * kB), old);  // the clone keeps its data
  std::string want = old;
  want.replace(kB, kB, std::string(kB, 'X'));
  EXPECT_EQ(ReadAll(a, 0, 4 * kB), want);
  // While the writable mapping lives, a's blocks may not be shared again, in either direction.
  Ino c = NewFile("c");
  EXPECT_EQ(fs_->Clone(a, c).code(), ETXTBSY);
  EXPECT_EQ(fs_->CloneRange(b, 0, a, 0, kB).code(), ETXTBSY);
  EXPECT_EQ(fs_->Dedupe(b, 0, a, 0, kB).status().code(), ETXTBSY);
  m.reset();
  EXPECT_OK(fs_->Clone(a, c));
}

// ---- What a mapping sees when extents change under it.

TEST_F(MappingTableTest, WriteUnderReadOnlyMappingIsSeenAndOldBlockIsDropped) {
  Ino ino = NewFile("cow");
  WriteAt(ino, 0, Pattern(4 * kB, 8));
  std::unique_ptr<Mapping> m = MapOk(ino, 0, 4 * kB, MapProt::kRead);
  ASSERT_NE(m, nullptr);
  std::map<uint64_t, uint64_t> before = DevicePages(*m);
  std::string fresh = Pattern(kB, 9);
  WriteAt(ino, 2 * kB, fresh);  // committed block: copy-on-write to a new one
  EXPECT_EQ(View(*m, 2 * kB, kB), fresh);
  EXPECT_EQ(View(*m, 0, 4 * kB), ReadAll(ino, 0, 4 * kB));
  std::map<uint64_t, uint64_t> after = DevicePages(*m);
  EXPECT_NE(after[2 * kB], before[2 * kB]);
  EXPECT_EQ(after, BmapPages(ino));
  // The old block is no longer named by any mapping, the new one is.
  ASSERT_OK(rmap_->FindVictims(before[2 * kB], kB).status());
  EXPECT_TRUE(rmap_->FindVictims(before[2 * kB], kB)->empty());
  Result<std::vector<Victim>> now = rmap_->FindVictims(after[2 * kB], kB);
  ASSERT_OK(now);
  ASSERT_EQ(now->size(), 1u);
  EXPECT_EQ((*now)[0].address, m->data() + 2 * kB);
}

TEST_F(MappingTableTest, WriteUnderWritableMappingMovesItToTheNewBlock) {
  Ino ino = NewFile("cow-rw");
  WriteAt(ino, 0, Pattern(2 * kB, 10));
  std::unique_ptr<Mapping> m = MapOk(ino, 0, 2 * kB, MapProt::kReadWrite);
  ASSERT_NE(m, nullptr);
  std::string fresh = Pattern(kB, 11);
  WriteAt(ino, kB, fresh);
  EXPECT_EQ(View(*m, kB, kB), fresh);
  std::memset(m->data() + kB, 'Y', 16);
  ASSERT_OK(m->Persist(kB, 16));
  EXPECT_EQ(ReadAll(ino, kB, 16), std::string(16, 'Y'));
  EXPECT_EQ(DevicePages(*m), BmapPages(ino));
}

TEST_F(MappingTableTest, PunchUnderMappingShowsZeros) {
  Ino ino = NewFile("punch");
  WriteAt(ino, 0, Pattern(6 * kB, 12));
  std::unique_ptr<Mapping> m = MapOk(ino, 0, 6 * kB, MapProt::kRead);
  ASSERT_NE(m, nullptr);
  ASSERT_OK(fs_->Fallocate(ino, kFallocPunchHole | kFallocKeepSize, 2 * kB, 2 * kB));
  EXPECT_EQ(View(*m, 2 * kB, 2 * kB), std::string(2 * kB, '\0'));
  EXPECT_EQ(View(*m, 0, 6 * kB), ReadAll(ino, 0, 6 * kB));
  std::map<uint64_t, uint64_t> pages = DevicePages(*m);
  EXPECT_EQ(pages.size(), 4u);
  EXPECT_EQ(pages.count(2 * kB) + pages.count(3 * kB), 0u);
  // Zero range: unwritten blocks read as zeros too.
  ASSERT_OK(fs_->Fallocate(ino, kFallocZeroRange | kFallocKeepSize, 4 * kB, kB));
  EXPECT_EQ(View(*m, 4 * kB, kB), std::string(kB, '\0'));
  EXPECT_EQ(DevicePages(*m), BmapPages(ino));
}

TEST_F(MappingTableTest, TruncateUnderMappingMakesPagesPastEofInaccessible) {
  Ino ino = NewFile("trunc");
  WriteAt(ino, 0, Pattern(8 * kB, 13));
  std::unique_ptr<Mapping> m = MapOk(ino, 0, 8 * kB, MapProt::kRead);
  ASSERT_NE(m, nullptr);
  ASSERT_OK(fs_->Truncate(ino, 3 * kB + 10));  // pages 0-3 stay, 4-7 go
  std::string left = ReadAll(ino, 0, 3 * kB + 10);
  EXPECT_EQ(View(*m, 0, 3 * kB + 10), left);
  EXPECT_EQ(View(*m, 3 * kB + 10, kB - 10), std::string(kB - 10, '\0'));
  EXPECT_EQ(DevicePages(*m).size(), 4u);
  const uint8_t* past = m->data() + 4 * kB;
  EXPECT_DEATH(Load(past), "");
  EXPECT_DEATH(Load(m->data() + 8 * kB - 1), "");
  // Growing the file again gives zeros there, readable.
  ASSERT_OK(fs_->Truncate(ino, 8 * kB));
  EXPECT_EQ(View(*m, 4 * kB, 4 * kB), std::string(4 * kB, '\0'));
  WriteAt(ino, 6 * kB, "hello");
  EXPECT_EQ(View(*m, 6 * kB, 5), "hello");
  EXPECT_EQ(DevicePages(*m), BmapPages(ino));
}

TEST_F(MappingTableTest, UnlinkOfMappedFileMakesItInaccessible) {
  Ino ino = NewFile("gone");
  WriteAt(ino, 0, Pattern(3 * kB, 14));
  std::unique_ptr<Mapping> m = MapOk(ino, 0, 3 * kB, MapProt::kRead);
  ASSERT_NE(m, nullptr);
  std::map<uint64_t, uint64_t> before = DevicePages(*m);
  ASSERT_OK(fs_->Unlink(kRootIno, "gone"));
  EXPECT_DEATH(Load(m->data()), "");
  EXPECT_TRUE(DevicePages(*m).empty());
  EXPECT_TRUE(rmap_->FindVictims(before[0], 3 * kB)->empty());
  // Inode numbers never come back: a new file has its own, and the old mapping stays empty.
  Ino again = NewFile("new");
  EXPECT_NE(again, ino);
  WriteAt(again, 0, Pattern(3 * kB, 15));
  EXPECT_TRUE(DevicePages(*m).empty());
  EXPECT_DEATH(Load(m->data()), "");
  EXPECT_EQ(table_->live_mappings(), 1u);  // still a live handle until destroyed
  m.reset();
  EXPECT_EQ(table_->live_mappings(), 0u);
}

TEST_F(MappingTableTest, FenceKillAllAndNotices) {
  Ino ino = NewFile("f");
  WriteAt(ino, 0, Pattern(4 * kB, 16));
  std::vector<MappingNotice> heard;
  std::unique_ptr<Mapping> m =
      MapOk(ino, 0, 4 * kB, MapProt::kRead, [&](const MappingNotice& n) { heard.push_back(n); });
  ASSERT_NE(m, nullptr);
  std::map<uint64_t, uint64_t> pages = DevicePages(*m);
  EXPECT_ERRNO(table_->Fence(m->id(), m->data() + 1, kB), EINVAL);
  EXPECT_ERRNO(table_->Fence(m->id() + 1000, m->data(), kB), ENOENT);
  ASSERT_OK(table_->Fence(m->id(), m->data() + kB, kB));
  EXPECT_DEATH(Load(m->data() + kB), "");
  EXPECT_EQ(View(*m, 0, kB), ReadAll(ino, 0, kB));
  EXPECT_EQ(DevicePages(*m).count(kB), 0u);
  EXPECT_TRUE(rmap_->FindVictims(pages[kB], kB)->empty());  // fenced pages are no victims

  MappingNotice n{.mapping_id = m->id(), .address = m->data(), .length = kB, .ino = ino};
  EXPECT_EQ(table_->Notify({n, MappingNotice{.mapping_id = 999999}}), 1u);
  ASSERT_EQ(heard.size(), 1u);
  EXPECT_EQ(heard[0].address, m->data());

  std::vector<MappingNotice> removal = table_->RemovalNotices();
  ASSERT_EQ(removal.size(), 1u);
  EXPECT_TRUE(removal[0].removal);
  EXPECT_EQ(removal[0].length, 4 * kB);
  ASSERT_EQ(table_->LiveMappings().size(), 1u);
  table_->KillAll();
  EXPECT_EQ(table_->live_mappings(), 0u);
  EXPECT_DEATH(Load(m->data()), "");
  EXPECT_ERRNO(m->Persist(0, kB), EIO);
  EXPECT_EQ(table_->Notify({n}), 0u);
}

TEST_F(MappingTableTest, MappingOutlivesTable) {
  Ino ino = NewFile("f");
  WriteAt(ino, 0, Pattern(kB, 17));
  std::unique_ptr<Mapping> m = MapOk(ino, 0, kB, MapProt::kRead);
  ASSERT_NE(m, nullptr);
  table_.reset();
  EXPECT_ERRNO(m->Persist(0, kB), EIO);
  EXPECT_DEATH(Load(m->data()), "");
  m.reset();  // releases its address range only
  // A new table on the same filesystem works.
  table_ = std::make_unique<MappingTable>(face());
  std::unique_ptr<Mapping> again = MapOk(ino, 0, kB, MapProt::kRead);
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(View(*again, 0, kB), ReadAll(ino, 0, kB));
}

// A loss recorded by the filesystem (media failure) fences the page in every mapping of every
// owner; a write of the whole block gives that owner a fresh block and the page comes back.
// Skipped where the media-failure work is not merged yet.
TEST_F(MappingTableTest, RecordedLossFencesEveryOwnersMapping) {
  Ino a = NewFile("a");
  WriteAt(a, 0, Pattern(4 * kB, 22));
  Ino b = NewFile("b");
  ASSERT_OK(fs_->Clone(a, b));
  uint64_t bad = BmapPages(a)[kB];
  std::unique_ptr<Mapping> ma = MapOk(a, 0, 4 * kB, MapProt::kRead);
  std::unique_ptr<Mapping> mb = MapOk(b, 0, 4 * kB, MapProt::kRead);
  ASSERT_TRUE(ma && mb);
  ASSERT_EQ(rmap_->FindVictims(bad, kB)->size(), 2u);
  ASSERT_OK(dev_->InjectPoison(bad, kB));
  Result<MediaFailureRecord> r = fs_->RecordMediaFailure(bad, kB, kFailureSimulated);
  ASSERT_OK(r);
  EXPECT_DEATH(Load(ma->data() + kB), "");
  EXPECT_DEATH(Load(mb->data() + kB), "");
  EXPECT_EQ(View(*ma, 0, kB), ReadAll(a, 0, kB));
  EXPECT_EQ(DevicePages(*ma).count(kB) + DevicePages(*mb).count(kB), 0u);
  EXPECT_TRUE(rmap_->FindVictims(bad, kB)->empty());
  std::string fresh = Pattern(kB, 23);
  WriteAt(a, kB, fresh);  // a whole lost block rewritten: a's loss is cleared
  EXPECT_EQ(View(*ma, kB, kB), fresh);
  EXPECT_NE(DevicePages(*ma)[kB], bad);
  EXPECT_DEATH(Load(mb->data() + kB), "");  // b's stays lost
}

// ---- Many mappings of shared blocks: the index and the trackers.

TEST_F(MappingTableTest, SharedBlockNamesEveryMappingWithItsOwnAddress) {
  Ino a = NewFile("a");
  WriteAt(a, 0, Pattern(8 * kB, 18));
  Ino b = NewFile("b"), c = NewFile("c");
  ASSERT_OK(fs_->Clone(a, b));
  ASSERT_OK(fs_->Truncate(c, 16 * kB));
  ASSERT_OK(fs_->CloneRange(a, 2 * kB, c, 10 * kB, 2 * kB));  // a[2,4) at c[10,12)
  ASSERT_OK(fs_->CloneRange(a, 2 * kB, a, 6 * kB, kB));       // a[2] also at a[6]
  uint64_t bad = BmapPages(a)[2 * kB];

  std::unique_ptr<Mapping> a_all = MapOk(a, 0, 8 * kB, MapProt::kRead);
  std::unique_ptr<Mapping> a_tail = MapOk(a, 2 * kB, 6 * kB, MapProt::kRead);  // overlaps
  std::unique_ptr<Mapping> b_all = MapOk(b, 0, 8 * kB, MapProt::kRead);
  std::unique_ptr<Mapping> c_mid = MapOk(c, 8 * kB, 4 * kB, MapProt::kRead);
  std::unique_ptr<Mapping> a_head = MapOk(a, 0, kB, MapProt::kRead);  // does not hold it
  ASSERT_TRUE(a_all && a_tail && b_all && c_mid && a_head);

  std::vector<Victim> want = {
      {a_all->id(), a_all->data() + 2 * kB, kB, a, 2 * kB, bad},
      {a_all->id(), a_all->data() + 6 * kB, kB, a, 6 * kB, bad},
      {a_tail->id(), a_tail->data(), kB, a, 2 * kB, bad},
      {a_tail->id(), a_tail->data() + 4 * kB, kB, a, 6 * kB, bad},
      {b_all->id(), b_all->data() + 2 * kB, kB, b, 2 * kB, bad},
      {c_mid->id(), c_mid->data() + 2 * kB, kB, c, 10 * kB, bad},
  };
  NormalizeVictims(&want);
  Result<std::vector<Victim>> by_rmap = rmap_->FindVictims(bad + 100, 10);  // widened to a page
  ASSERT_OK(by_rmap);
  EXPECT_EQ(*by_rmap, want);
  Result<std::vector<Victim>> by_scan = scan_->FindVictims(bad, kB);
  ASSERT_OK(by_scan);
  EXPECT_EQ(*by_scan, want);
  EXPECT_EQ(rmap_->design(), Tracking::kFsRmap);
  EXPECT_EQ(scan_->design(), Tracking::kFullScan);
  EXPECT_EQ(rmap_->TrackingBytes(), 0u);
  EXPECT_TRUE(tracking::NewNullTracker()->FindVictims(bad, kB)->empty());
}

// The index against brute force, over 10,000 mappings of four files that share blocks.
TEST_F(MappingTableTest, ManyMappingsAgreeWithBruteForce) {
  base::Random rnd(20260);
  std::vector<Ino> files;
  files.push_back(NewFile("f0"));
  WriteAt(files[0], 0, Pattern(64 * kB, 19));
  for (int i = 1; i < 4; ++i) {
    files.push_back(NewFile(fmt::format("f{}", i)));
    ASSERT_OK(fs_->Clone(files[0], files[i]));
    WriteAt(files[i], rnd.Uniform(60) * kB, Pattern(2 * kB, 20 + i));  // some private blocks
  }
  std::vector<std::unique_ptr<Mapping>> maps;
  for (int i = 0; i < 10000; ++i) {
    Ino ino = files[rnd.Uniform(files.size())];
    uint64_t first = rnd.Uniform(64), pages = 1 + rnd.Uniform(std::min<uint64_t>(8, 64 - first));
    maps.push_back(MapOk(ino, first * kB, pages * kB, MapProt::kRead));
    ASSERT_NE(maps.back(), nullptr);
  }
  EXPECT_EQ(table_->live_mappings(), 10000u);
  // Drop a third of them.
  for (size_t i = 0; i < maps.size(); i += 3) maps[i].reset();
  std::map<Ino, std::map<uint64_t, uint64_t>> bmap;
  for (Ino ino : files) bmap[ino] = BmapPages(ino);
  for (int q = 0; q < 40; ++q) {
    Ino ino = files[rnd.Uniform(files.size())];
    uint64_t from = rnd.Uniform(64) * kB, len = (1 + rnd.Uniform(4)) * kB;
    std::vector<Victim> want;
    for (const auto& m : maps) {
      if (!m || m->ino() != ino) continue;
      for (uint64_t p = std::max(from, m->file_offset());
           p < std::min(from + len, m->file_offset() + m->length()); p += kB) {
        want.push_back({m->id(), m->data() + (p - m->file_offset()), kB, ino, p, bmap[ino][p]});
      }
    }
    NormalizeVictims(&want);
    std::vector<Victim> got = table_->MappedPages(ino, from, len);
    NormalizeVictims(&got);
    EXPECT_EQ(got, want) << "query " << q;
  }
  // Device-side: one block of f0 (shared by the clones where they did not rewrite it).
  for (int q = 0; q < 10; ++q) {
    uint64_t device = bmap[files[0]][rnd.Uniform(64) * kB];
    std::vector<Victim> want;
    for (const auto& m : maps) {
      if (!m) continue;
      for (uint64_t p = m->file_offset(); p < m->file_offset() + m->length(); p += kB) {
        if (bmap[m->ino()][p] == device) {
          want.push_back({m->id(), m->data() + (p - m->file_offset()), kB, m->ino(), p, device});
        }
      }
    }
    NormalizeVictims(&want);
    Result<std::vector<Victim>> by_rmap = rmap_->FindVictims(device, kB);
    Result<std::vector<Victim>> by_scan = scan_->FindVictims(device, kB);
    ASSERT_OK(by_rmap);
    ASSERT_OK(by_scan);
    EXPECT_EQ(*by_rmap, want);
    EXPECT_EQ(*by_scan, want);
  }
  maps.clear();
  EXPECT_EQ(table_->live_mappings(), 0u);
}

TEST(IntervalIndexTest, OverlapsMatchBruteForce) {
  base::Random rnd(7);
  IntervalIndex index;
  std::map<uint64_t, std::pair<uint64_t, uint64_t>> all;  // id -> [start, end)
  for (uint64_t id = 1; id <= 3000; ++id) {
    uint64_t start = rnd.Uniform(1 << 20);
    uint64_t len = 1 + rnd.Uniform(1ULL << rnd.Uniform(20));
    index.Insert(start, start + len, id);
    all[id] = {start, start + len};
  }
  for (uint64_t id = 1; id <= 3000; id += 4) {
    EXPECT_TRUE(index.Erase(all[id].first, all[id].second, id));
    all.erase(id);
  }
  EXPECT_FALSE(index.Erase(0, 1, 1));
  EXPECT_EQ(index.size(), all.size());
  for (int q = 0; q < 500; ++q) {
    uint64_t a = rnd.Uniform(1 << 20), b = a + rnd.Uniform(1 << 12);
    std::set<uint64_t> want, got;
    for (auto& [id, r] : all) {
      if (r.first < b && r.second > a) want.insert(id);
    }
    index.ForEachOverlap(a, b, [&](uint64_t, uint64_t, uint64_t id) { got.insert(id); });
    EXPECT_EQ(got, want);
  }
  index.Insert(0, ~0ULL, 99999);  // the longest interval there is
  bool found = false;
  index.ForEachOverlap(~0ULL - 1, ~0ULL,
                       [&](uint64_t, uint64_t, uint64_t id) { found = found || id == 99999; });
  EXPECT_TRUE(found);
}

// ---- Errors.

TEST_F(MappingTableTest, Errors) {
  Ino ino = NewFile("f");
  WriteAt(ino, 0, Pattern(2 * kB + 1, 21));                               // mappable up to 3 blocks
  EXPECT_ERRNO(table_->Map(ino, 100, kB, MapProt::kRead), EINVAL);        // unaligned offset
  EXPECT_ERRNO(table_->Map(ino, 0, 0, MapProt::kRead), EINVAL);           // empty
  EXPECT_ERRNO(table_->Map(ino, 0, 3 * kB + 1, MapProt::kRead), EINVAL);  // past EOF
  EXPECT_ERRNO(table_->Map(ino, 4 * kB, kB, MapProt::kRead), EINVAL);
  EXPECT_ERRNO(table_->Map(ino, 0, ~0ULL, MapProt::kRead), EINVAL);
  EXPECT_ERRNO(table_->Map(ino, 0, kB, static_cast<MapProt>(2)), EINVAL);
  EXPECT_ERRNO(table_->Map(kRootIno, 0, kB, MapProt::kRead), EISDIR);
  EXPECT_ERRNO(table_->Map(12345, 0, kB, MapProt::kRead), ENOENT);
  Ino empty = NewFile("empty");
  EXPECT_ERRNO(table_->Map(empty, 0, kB, MapProt::kRead), EINVAL);
  ASSERT_OK(fs_->Symlink(kRootIno, "link", "f"));
  Result<Attr> link = fs_->Lookup(kRootIno, "link");
  ASSERT_OK(link);
  EXPECT_ERRNO(table_->Map(link->ino, 0, kB, MapProt::kRead), EINVAL);
  EXPECT_NE(table_->Map(ino, 0, 4 * kB, MapProt::kRead).status().message().find("past the end"),
            std::string::npos);

  table_->SetMappingLimitForTesting(3);
  std::vector<std::unique_ptr<Mapping>> maps;
  for (int i = 0; i < 3; ++i) maps.push_back(MapOk(ino, 0, kB, MapProt::kRead));
  Result<std::unique_ptr<Mapping>> over = table_->Map(ino, 0, kB, MapProt::kRead);
  EXPECT_ERRNO(over, ENOMEM);
  EXPECT_NE(over.status().message().find("3 mappings"), std::string::npos)
      << over.status().ToString();
  maps.pop_back();
  EXPECT_NE(MapOk(ino, 0, kB, MapProt::kRead), nullptr);
  maps.clear();

  // Read-only mount: read-only mappings work, writable ones are EROFS.
  std::string data = ReadAll(ino, 0, 2 * kB + 1);
  Remount({.read_only = true});
  EXPECT_ERRNO(table_->Map(ino, 0, kB, MapProt::kReadWrite), EROFS);
  std::unique_ptr<Mapping> ro = MapOk(ino, 0, 2 * kB + 1, MapProt::kRead);
  ASSERT_NE(ro, nullptr);
  EXPECT_EQ(View(*ro, 0, 2 * kB + 1), data);
}

}  // namespace
}  // namespace daxfs::dax
