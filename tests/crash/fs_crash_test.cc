// Crash loop over filesystem operations. A seeded workload of namespace and data operations runs
// on a CrashDevice; before every persist point the images a power cut could leave (several seeds)
// are mounted, checked and dumped. With durability on return, each image must hold exactly the
// state before or after the operation in flight; with group commit, the state after some
// operation since the last durable one. Replay one workload with DAXFS_SEED=<n>.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "base/random.h"
#include "daxfs/filesystem.h"
#include "device/crash_device.h"
#include "device/device.h"
#include "fs_snapshot.h"

namespace daxfs {
namespace {

constexpr uint64_t kDeviceSize = 8 << 20;
constexpr uint64_t kImageSeeds[] = {0, 1, 2, 3};

struct Recovered {
  size_t op;          // index of the operation in flight (states_[op] is the state before it)
  std::string where;  // persist point and image seed
  bool mounted;
  std::string snapshot;
  std::vector<std::string> problems;
};

class FsCrashRun {
 public:
  FsCrashRun(uint64_t seed, bool group) : rng_(seed), dev_(kDeviceSize), group_(group) {}

  // `ops` random operations, or with a script its steps (one operation each) in order.
  void Run(int ops, std::vector<std::function<void(Filesystem*)>> script = {}) {
    ASSERT_TRUE(Filesystem::Format(&dev_, {.chunk_size = 256 << 10}).ok());
    MountOptions o;
    if (group_) o.durability = Durability::kGroupCommit, o.group_commit_ops = 4;
    auto fs = Filesystem::Open(&dev_, o);
    ASSERT_TRUE(fs.ok()) << fs.status().ToString();
    fs_ = std::move(*fs);
    states_.push_back(Snap());
    dev_.SetPersistHook([&](uint64_t point) { Capture(point); });
    if (!script.empty()) ops = static_cast<int>(script.size());
    for (int i = 0; i < ops; ++i) {
      in_flight_ = states_.size();
      if (script.empty()) {
        DoRandomOp();
      } else {
        script[static_cast<size_t>(i)](fs_.get());
      }
      if (::testing::Test::HasFatalFailure()) return;
      if (rng_.OneIn(5)) {
        ASSERT_TRUE(fs_->Sync().ok());
        durable_ = states_.size();  // the state after this op (index states_.size()) is durable
      }
      states_.push_back(Snap());
      if (!group_) durable_ = states_.size() - 1;
    }
    in_flight_ = states_.size();
    ASSERT_TRUE(fs_->Unmount().ok());
    dev_.SetPersistHook(nullptr);
    Judge();
  }

 private:
  std::string Snap() {
    auto s = testing::Snapshot(fs_.get());
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? *s : "";
  }

  void Capture(uint64_t point) {
    for (uint64_t seed : kImageSeeds) {
      Recovered r{in_flight_, "persist point " + std::to_string(point) + " seed " + std::to_string(seed),
                  false, "", {}};
      r.op = in_flight_;
      auto mem = device::NewMemoryDevice(dev_.CrashImage(seed));
      auto fs = Filesystem::Open(mem.get(), {});
      if (fs.ok()) {
        r.mounted = true;
        auto snap = testing::Snapshot(fs->get());
        r.snapshot = snap.ok() ? *snap : "snapshot failed: " + snap.status().ToString();
        auto check = (*fs)->Check();
        if (!check.ok()) r.problems.push_back(check.status().ToString());
        else r.problems = check->problems;
      } else {
        r.problems.push_back(fs.status().ToString());
      }
      r.where += " (durable state index " + std::to_string(durable_) + ")";
      recovered_.push_back({std::move(r)});
      lowest_acceptable_.push_back(durable_);
    }
  }

  void Judge() {
    for (size_t i = 0; i < recovered_.size(); ++i) {
      const Recovered& r = recovered_[i];
      ASSERT_TRUE(r.mounted) << r.where << ": " << (r.problems.empty() ? "" : r.problems[0]);
      for (auto& p : r.problems) ADD_FAILURE() << r.where << ": " << p;
      // Acceptable: any state from the last durable one up to the one after the op in flight.
      size_t lo = lowest_acceptable_[i], hi = std::min(r.op, states_.size() - 1);
      bool ok = false;
      for (size_t s = lo; s <= hi && !ok; ++s) ok = r.snapshot == states_[s];
      EXPECT_TRUE(ok) << r.where << ", op " << r.op << ": recovered state matches no state in ["
                      << lo << ", " << hi << "]\nrecovered:\n" << r.snapshot << "expected (after op):\n"
                      << states_[hi];
    }
    std::printf("%zu crash images checked over %zu states (%d xattr sets, %d removes)\n",
                recovered_.size(), states_.size(), xattr_sets_, xattr_removes_);
  }

  std::string Name() { return std::string(1, static_cast<char>('a' + rng_.Uniform(5))); }

  std::string XattrName() { return std::string("user.") + (rng_.OneIn(2) ? "x" : "y"); }

  Ino Dir() {
    if (rng_.OneIn(2)) return kRootIno;
    auto d = fs_->Resolve("/d", true);
    return d.ok() && d->type == FileType::kDirectory ? d->ino : kRootIno;
  }

  Result<Ino> AnyFile() {
    for (int tries = 0; tries < 5; ++tries) {
      auto a = fs_->Lookup(Dir(), Name());
      if (a.ok() && a->type == FileType::kRegular) return a->ino;
    }
    return Status::NotFound("no file");
  }

  void DoRandomOp() {
    std::string bytes(1 + rng_.Uniform(9000), static_cast<char>('a' + rng_.Uniform(26)));
    auto data = std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    switch (rng_.Uniform(17)) {
      case 0: (void)fs_->Create(Dir(), Name(), 0644); return;
      case 1: (void)fs_->Mkdir(kRootIno, "d", 0755); return;
      case 2: case 3: {
        auto f = AnyFile();
        if (f.ok()) (void)fs_->Write(*f, rng_.Uniform(20000), data);
        return;
      }
      case 4: {
        auto f = AnyFile();
        if (f.ok()) (void)fs_->Truncate(*f, rng_.Uniform(12000));
        return;
      }
      case 5: {
        auto f = AnyFile();
        if (f.ok()) (void)fs_->Fallocate(*f, kFallocPunchHole | kFallocKeepSize, rng_.Uniform(8000), 1 + rng_.Uniform(9000));
        return;
      }
      case 6: (void)fs_->Rename(Dir(), Name(), Dir(), Name()); return;
      case 7: (void)fs_->Unlink(Dir(), Name()); return;
      case 8: {
        auto f = AnyFile();
        if (f.ok()) (void)fs_->Link(*f, Dir(), Name());
        return;
      }
      case 9: (void)fs_->Symlink(Dir(), Name(), "t" + Name()); return;
      case 10: {  // an open reference: a later unlink or rename over it keeps an orphan
        auto f = AnyFile();
        if (f.ok() && fs_->Retain(*f).ok()) retained_.push_back(*f);
        return;
      }
      case 12:
        (void)fs_->Rename(Dir(), Name(), Dir(), Name(), kRenameExchange);
        return;
      case 13: {  // truncate, mode and times in one operation
        auto f = AnyFile();
        SetAttrRequest r{.mode = 0600, .size = rng_.Uniform(12000), .mtime_now = true};
        if (f.ok()) (void)fs_->SetAttr(*f, r);
        return;
      }
      case 14: {  // a special file: a FIFO or a device node with its number
        const bool device = rng_.OneIn(2);
        (void)fs_->Mknod(Dir(), Name(), device ? FileType::kBlockDevice : FileType::kFifo, 0640,
                         device ? 0x800 + rng_.Uniform(64) : 0, {});
        return;
      }
      case 15: {  // an extended attribute set (a value of up to 7 parts) on any inode
        auto a = fs_->Lookup(Dir(), Name());
        if (!a.ok()) return;
        const int flags = rng_.OneIn(4) ? kXattrCreate : 0;
        const size_t size = std::min<size_t>(data.size(), rng_.Uniform(3000));
        if (fs_->SetXattr(a->ino, XattrName(), data.first(size), flags).ok()) ++xattr_sets_;
        return;
      }
      case 16: {  // and removed
        auto a = fs_->Lookup(Dir(), Name());
        if (a.ok() && fs_->RemoveXattr(a->ino, XattrName()).ok()) ++xattr_removes_;
        return;
      }
      case 11: {  // the last reference of an orphan frees it
        if (retained_.empty()) return;
        size_t i = rng_.Uniform(retained_.size());
        ASSERT_TRUE(fs_->Release(retained_[i]).ok());
        retained_.erase(retained_.begin() + static_cast<long>(i));
        return;
      }
    }
  }

  base::Random rng_;
  device::CrashDevice dev_;
  bool group_;
  std::unique_ptr<Filesystem> fs_;
  std::vector<std::string> states_;  // states_[i]: after i operations
  size_t in_flight_ = 0;
  size_t durable_ = 0;
  std::vector<Recovered> recovered_;
  std::vector<size_t> lowest_acceptable_;
  int xattr_sets_ = 0, xattr_removes_ = 0;
  std::vector<Ino> retained_;  // references held (an orphan's data is in no snapshot)
};

TEST(FsCrashTest, DurableOnReturnEveryPersistPoint) {
  uint64_t seed = base::SeedFromEnv(0);
  for (uint64_t s : seed ? std::vector<uint64_t>{seed} : std::vector<uint64_t>{11, 12, 13}) {
    SCOPED_TRACE("seed " + std::to_string(s));
    FsCrashRun run(s, false);
    run.Run(40);
  }
}

// Extended attributes at every persist point: a set, a multi-part value grown, shrunk and
// replaced, removes, attributes on a directory, and an inode deleted (last unlink, rmdir, rename
// over one) with its attributes in the same transaction.
TEST(FsCrashTest, XattrsEveryPersistPoint) {
  auto bytes = [](size_t n, char c) { return std::vector<uint8_t>(n, static_cast<uint8_t>(c)); };
  auto ino = [](Filesystem* fs, const char* path) {
    auto a = fs->Resolve(path, false);
    EXPECT_TRUE(a.ok()) << path << ": " << a.status().ToString();
    return a.ok() ? a->ino : Ino{0};
  };
  auto ok = [](const Status& s) { EXPECT_TRUE(s.ok()) << s.ToString(); };
  using Step = std::function<void(Filesystem*)>;
  std::vector<Step> script = {
      [&](Filesystem* fs) { ok(fs->Create(kRootIno, "f", 0644).status()); },
      [&](Filesystem* fs) { ok(fs->Mkdir(kRootIno, "d", 0755).status()); },
      [&](Filesystem* fs) { ok(fs->SetXattr(ino(fs, "/f"), "user.small", bytes(10, 's'), 0)); },
      [&](Filesystem* fs) { ok(fs->SetXattr(ino(fs, "/f"), "user.big", bytes(5000, 'b'), 0)); },
      [&](Filesystem* fs) { ok(fs->SetXattr(ino(fs, "/f"), "user.big", bytes(20000, 'c'), 0)); },
      [&](Filesystem* fs) {
        ok(fs->SetXattr(ino(fs, "/f"), "user.big", bytes(700, 'd'), kXattrReplace));
      },
      [&](Filesystem* fs) { ok(fs->RemoveXattr(ino(fs, "/f"), "user.small")); },
      [&](Filesystem* fs) { ok(fs->SetXattr(ino(fs, "/d"), "trusted.t", bytes(3000, 't'), 0)); },
      [&](Filesystem* fs) { ok(fs->Create(kRootIno, "g", 0644).status()); },
      [&](Filesystem* fs) { ok(fs->SetXattr(ino(fs, "/g"), "user.g", bytes(9000, 'g'), 0)); },
      [&](Filesystem* fs) { ok(fs->Rename(kRootIno, "f", kRootIno, "g")); },  // g's go
      [&](Filesystem* fs) { ok(fs->Rmdir(kRootIno, "d")); },
      [&](Filesystem* fs) { ok(fs->SetXattr(ino(fs, "/g"), "user.more", bytes(1, 'm'), 0)); },
      [&](Filesystem* fs) { ok(fs->Unlink(kRootIno, "g")); },
  };
  for (bool group : {false, true}) {
    SCOPED_TRACE(group ? "group commit" : "durable on return");
    FsCrashRun run(21, group);
    run.Run(0, script);
  }
}

// The reclaim at mount: an image with orphans (files with data, a directory, unlinked while
// retained) is mounted on a crash device; at every persist point of the mount's reclaim, each
// image a power cut could leave must mount (reclaiming again), check clean and hold the same
// namespace, without the orphans.
TEST(FsCrashTest, MountReclaimOfOrphansEveryPersistPoint) {
  std::string image;
  std::string expected;
  std::vector<Ino> orphans;
  {
    device::CrashDevice dev(kDeviceSize);
    ASSERT_TRUE(Filesystem::Format(&dev, {.chunk_size = 256 << 10}).ok());
    auto fs = Filesystem::Open(&dev, {});
    ASSERT_TRUE(fs.ok()) << fs.status().ToString();
    std::string bytes(3 * 4096 + 10, 'o');
    auto data = std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    for (int i = 0; i < 4; ++i) {
      auto f = (*fs)->Create(kRootIno, "f" + std::to_string(i), 0644);
      ASSERT_TRUE(f.ok());
      ASSERT_TRUE((*fs)->Write(f->ino, 0, data).ok());
      if (i % 2 == 0) {
        ASSERT_TRUE((*fs)->Retain(f->ino).ok());
        ASSERT_TRUE((*fs)->Unlink(kRootIno, "f" + std::to_string(i)).ok());
        orphans.push_back(f->ino);
      }
    }
    auto d = (*fs)->Mkdir(kRootIno, "d", 0755);
    ASSERT_TRUE(d.ok());
    ASSERT_TRUE((*fs)->Retain(d->ino).ok());
    ASSERT_TRUE((*fs)->Rmdir(kRootIno, "d").ok());
    orphans.push_back(d->ino);
    ASSERT_TRUE((*fs)->Sync().ok());
    auto snap = testing::Snapshot(fs->get());
    ASSERT_TRUE(snap.ok());
    expected = *snap;
    image = dev.DurableImage();  // the power cut: references gone, orphans on media
    // (Closing `fs` frees its orphans on `dev`, after the image was taken.)
  }
  device::CrashDevice dev(image);
  size_t images = 0;
  dev.SetPersistHook([&](uint64_t point) {
    for (uint64_t seed : kImageSeeds) {
      SCOPED_TRACE("persist point " + std::to_string(point) + " seed " + std::to_string(seed));
      auto mem = device::NewMemoryDevice(dev.CrashImage(seed));
      auto fs = Filesystem::Open(mem.get(), {});
      ASSERT_TRUE(fs.ok()) << fs.status().ToString();
      for (Ino o : orphans) EXPECT_FALSE((*fs)->GetAttr(o).ok()) << "orphan " << o;
      auto snap = testing::Snapshot(fs->get());
      ASSERT_TRUE(snap.ok());
      EXPECT_EQ(*snap, expected);
      auto check = (*fs)->Check();
      ASSERT_TRUE(check.ok());
      for (auto& p : check->problems) ADD_FAILURE() << p;
      ++images;
    }
  });
  auto fs = Filesystem::Open(&dev, {});
  ASSERT_TRUE(fs.ok()) << fs.status().ToString();
  dev.SetPersistHook(nullptr);
  for (Ino o : orphans) EXPECT_FALSE((*fs)->GetAttr(o).ok());
  EXPECT_GT(images, 0u);
  ASSERT_TRUE((*fs)->Unmount().ok());
}

TEST(FsCrashTest, GroupCommitEveryPersistPoint) {
  uint64_t seed = base::SeedFromEnv(21);
  FsCrashRun run(seed, true);
  run.Run(60);
}

}  // namespace
}  // namespace daxfs
