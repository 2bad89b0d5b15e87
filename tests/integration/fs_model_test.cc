// Model-based test of the filesystem: random sequences of namespace and file operations on a few
// directories and files, compared after every step with a plain in-memory model (contents, sizes,
// holes, directory listings, link counts, symlink targets, error codes), with the consistency
// checker after every step. Seeded and replayable: DAXFS_SEED=<n>; DAXFS_MODEL_STEPS=<n> for a
// longer run (the "long" target runs many more).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/random.h"
#include "daxfs/filesystem.h"
#include "device/device.h"
#include "fs_snapshot.h"

namespace daxfs {
namespace {

struct Node {
  FileType type;
  std::string data;    // files: contents; symlinks: target
  uint32_t links = 1;  // files and symlinks: names pointing here
};

class Model {
 public:
  Model() { nodes_[0] = {FileType::kDirectory, "", 0}; paths_["/"] = 0; }

  bool Exists(const std::string& p) const { return paths_.count(p) > 0; }
  const Node* Get(const std::string& p) const {
    auto it = paths_.find(p);
    return it == paths_.end() ? nullptr : &nodes_.at(it->second);
  }
  Node* GetMutable(const std::string& p) {
    auto it = paths_.find(p);
    return it == paths_.end() ? nullptr : &nodes_.at(it->second);
  }
  int Id(const std::string& p) const { return paths_.at(p); }
  std::vector<std::string> Children(const std::string& dir) const {
    std::vector<std::string> out;
    std::string prefix = dir == "/" ? "/" : dir + "/";
    for (auto& [p, id] : paths_) {
      if (p.size() > prefix.size() && p.compare(0, prefix.size(), prefix) == 0 &&
          p.find('/', prefix.size()) == std::string::npos) {
        out.push_back(p);
      }
    }
    return out;
  }
  std::vector<std::string> Paths(FileType type) const {
    std::vector<std::string> out;
    for (auto& [p, id] : paths_) {
      if (nodes_.at(id).type == type) out.push_back(p);
    }
    return out;
  }
  std::vector<std::string> AllPaths() const {
    std::vector<std::string> out;
    for (auto& [p, id] : paths_) {
      if (p != "/") out.push_back(p);
    }
    return out;
  }
  void Add(const std::string& p, Node n) {
    int id = next_id_++;
    nodes_[id] = std::move(n);
    paths_[p] = id;
  }
  void AddLink(const std::string& p, int id) {
    paths_[p] = id;
    ++nodes_[id].links;
  }
  void Remove(const std::string& p) {
    int id = paths_.at(p);
    paths_.erase(p);
    if (--nodes_[id].links == 0) nodes_.erase(id);
  }
  // Moves `from` (and, for a directory, everything below it) to `to`.
  void Move(const std::string& from, const std::string& to) {
    std::map<std::string, int> moved;
    for (auto it = paths_.begin(); it != paths_.end();) {
      if (it->first == from || it->first.rfind(from + "/", 0) == 0) {
        moved[to + it->first.substr(from.size())] = it->second;
        it = paths_.erase(it);
      } else {
        ++it;
      }
    }
    paths_.insert(moved.begin(), moved.end());
  }

  std::string Snapshot() const {
    std::string text;
    for (auto& [p, id] : paths_) {
      if (p == "/") continue;
      const Node& n = nodes_.at(id);
      uint64_t nlink = n.links, size = n.data.size();
      if (n.type == FileType::kDirectory) {
        auto kids = Children(p);
        size = kids.size();
        nlink = 2;
        for (auto& k : kids) nlink += Get(k)->type == FileType::kDirectory;
      }
      text += fmt::format("{} type={} nlink={} size={}", p, static_cast<int>(n.type), nlink, size);
      if (n.type == FileType::kRegular) {
        text += fmt::format(" data={:016x}", base::Checksum64(n.data.data(), n.data.size()));
      } else if (n.type == FileType::kSymlink) {
        text += " -> " + n.data;
      }
      text += "\n";
    }
    return text;
  }

 private:
  std::map<std::string, int> paths_;
  std::map<int, Node> nodes_;
  int next_id_ = 1;
};

std::string Parent(const std::string& p) {
  size_t slash = p.rfind('/');
  return slash == 0 ? "/" : p.substr(0, slash);
}
std::string Base(const std::string& p) { return p.substr(p.rfind('/') + 1); }
std::string Join(const std::string& dir, const std::string& name) {
  return dir == "/" ? "/" + name : dir + "/" + name;
}

class FsModelRun {
 public:
  FsModelRun(uint64_t seed, bool group_commit)
      : rng_(seed), dev_(device::NewMemoryDevice(64 << 20)), group_(group_commit) {
    EXPECT_TRUE(Filesystem::Format(dev_.get(), {.chunk_size = 1 << 20}).ok());
    Mount();
  }

  void Mount() {
    MountOptions o;
    if (group_) o.durability = Durability::kGroupCommit, o.group_commit_ops = 7;
    auto fs = Filesystem::Open(dev_.get(), o);
    ASSERT_TRUE(fs.ok()) << fs.status().ToString();
    fs_ = std::move(*fs);
  }

  daxfs::Ino InoOf(const std::string& p) {
    auto a = fs_->Resolve(p, false);
    EXPECT_TRUE(a.ok()) << p << ": " << a.status().ToString();
    return a.ok() ? a->ino : 0;
  }

  std::string RandomName() { return std::string(1, static_cast<char>('a' + rng_.Uniform(6))); }
  template <typename T>
  const T& Pick(const std::vector<T>& v) { return v[rng_.Uniform(v.size())]; }
  std::string RandomDir() { return Pick(model_.Paths(FileType::kDirectory)); }

  std::string RandomBytes(size_t n) {
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>('A' + rng_.Uniform(26));
    return s;
  }

  void ExpectCode(const Status& s, int code, const std::string& what) {
    EXPECT_EQ(s.code(), code) << what << ": got " << s.ToString();
  }

  void Step() {
    switch (rng_.Uniform(16)) {
      case 0: case 1: return DoCreate(FileType::kRegular);
      case 2: return DoCreate(FileType::kDirectory);
      case 3: case 4: case 5: return DoWrite();
      case 6: return DoTruncate();
      case 7: return DoPunchOrZero();
      case 8: return DoUnlink();
      case 9: return DoRename();
      case 10: return DoLink();
      case 11: return DoCreate(FileType::kSymlink);
      case 12: return DoFallocate();
      case 13: return DoRmdir();
      case 14: return DoReadCompare();
      case 15:
        if (rng_.OneIn(4)) {
          ASSERT_TRUE(fs_->Unmount().ok());
          fs_.reset();
          Mount();
        } else {
          ASSERT_TRUE(fs_->Sync().ok());
        }
        return;
    }
  }

  void DoCreate(FileType type) {
    std::string dir = RandomDir(), path = Join(dir, RandomName());
    Status s;
    if (type == FileType::kRegular) s = fs_->Create(InoOf(dir), Base(path), 0644).status();
    else if (type == FileType::kDirectory) s = fs_->Mkdir(InoOf(dir), Base(path), 0755).status();
    else s = fs_->Symlink(InoOf(dir), Base(path), "target/" + RandomName()).status();
    if (model_.Exists(path)) return ExpectCode(s, EEXIST, "create " + path);
    ASSERT_TRUE(s.ok()) << "create " << path << ": " << s.ToString();
    if (type == FileType::kSymlink) {
      auto link = fs_->Resolve(path, false);
      ASSERT_TRUE(link.ok());
      auto target = fs_->ReadLink(link->ino);
      ASSERT_TRUE(target.ok());
      model_.Add(path, {type, *target});
    } else {
      model_.Add(path, {type, ""});
    }
  }

  std::vector<std::string> Files() { return model_.Paths(FileType::kRegular); }

  void DoWrite() {
    auto files = Files();
    if (files.empty()) return;
    std::string p = Pick(files);
    Node* n = model_.GetMutable(p);
    uint64_t off = rng_.Uniform(n->data.size() + 12000);
    std::string bytes = RandomBytes(1 + rng_.Uniform(rng_.OneIn(4) ? 40000 : 5000));
    auto r = fs_->Write(InoOf(p), off, std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
    ASSERT_TRUE(r.ok()) << "write " << p << ": " << r.status().ToString();
    ASSERT_EQ(*r, bytes.size());
    if (n->data.size() < off + bytes.size()) n->data.resize(off + bytes.size(), '\0');
    n->data.replace(off, bytes.size(), bytes);
  }

  void DoTruncate() {
    auto files = Files();
    if (files.empty()) return;
    std::string p = Pick(files);
    Node* n = model_.GetMutable(p);
    uint64_t size = rng_.Uniform(n->data.size() + 9000);
    ASSERT_TRUE(fs_->Truncate(InoOf(p), size).ok());
    n->data.resize(size, '\0');
  }

  void DoPunchOrZero() {
    auto files = Files();
    if (files.empty()) return;
    std::string p = Pick(files);
    Node* n = model_.GetMutable(p);
    if (n->data.empty()) return;
    uint64_t off = rng_.Uniform(n->data.size());
    uint64_t len = 1 + rng_.Uniform(n->data.size() - off + 5000);
    bool punch = rng_.OneIn(2);
    uint32_t mode = punch ? (kFallocPunchHole | kFallocKeepSize) : kFallocZeroRange | kFallocKeepSize;
    Status s = fs_->Fallocate(InoOf(p), mode, off, len);
    ASSERT_TRUE(s.ok()) << (punch ? "punch " : "zero ") << p << ": " << s.ToString();
    uint64_t end = std::min<uint64_t>(n->data.size(), off + len);
    if (end > off) n->data.replace(off, end - off, std::string(end - off, '\0'));
  }

  void DoFallocate() {
    auto files = Files();
    if (files.empty()) return;
    std::string p = Pick(files);
    Node* n = model_.GetMutable(p);
    uint64_t off = rng_.Uniform(n->data.size() + 8000), len = 1 + rng_.Uniform(16000);
    bool keep = rng_.OneIn(2);
    ASSERT_TRUE(fs_->Fallocate(InoOf(p), keep ? kFallocKeepSize : 0, off, len).ok());
    if (!keep && n->data.size() < off + len) n->data.resize(off + len, '\0');
  }

  void DoUnlink() {
    auto all = model_.AllPaths();
    if (all.empty()) return;
    std::string p = Pick(all);
    Status s = fs_->Unlink(InoOf(Parent(p)), Base(p));
    if (model_.Get(p)->type == FileType::kDirectory) return ExpectCode(s, EISDIR, "unlink " + p);
    ASSERT_TRUE(s.ok()) << "unlink " << p << ": " << s.ToString();
    model_.Remove(p);
  }

  void DoRmdir() {
    auto dirs = model_.Paths(FileType::kDirectory);
    std::string p = Pick(dirs);
    if (p == "/") return;
    Status s = fs_->Rmdir(InoOf(Parent(p)), Base(p));
    if (!model_.Children(p).empty()) return ExpectCode(s, ENOTEMPTY, "rmdir " + p);
    ASSERT_TRUE(s.ok()) << "rmdir " << p << ": " << s.ToString();
    model_.Remove(p);
  }

  void DoLink() {
    auto files = Files();
    if (files.empty()) return;
    std::string p = Pick(files), to = Join(RandomDir(), RandomName());
    Status s = fs_->Link(InoOf(p), InoOf(Parent(to)), Base(to)).status();
    if (model_.Exists(to)) return ExpectCode(s, EEXIST, "link " + to);
    ASSERT_TRUE(s.ok()) << "link " << p << " " << to << ": " << s.ToString();
    model_.AddLink(to, model_.Id(p));
  }

  void DoRename() {
    auto all = model_.AllPaths();
    if (all.empty()) return;
    std::string from = Pick(all), to = Join(RandomDir(), RandomName());
    Status s = fs_->Rename(InoOf(Parent(from)), Base(from), InoOf(Parent(to)), Base(to));
    const Node* src = model_.Get(from);
    bool src_dir = src->type == FileType::kDirectory;
    if (src_dir && (to == from || to.rfind(from + "/", 0) == 0)) {
      if (to == from) {
        EXPECT_TRUE(s.ok()) << "rename onto itself: " << s.ToString();
        return;
      }
      return ExpectCode(s, EINVAL, "rename " + from + " into itself at " + to);
    }
    if (const Node* dst = model_.Get(to)) {
      if (model_.Id(to) == model_.Id(from)) {
        ASSERT_TRUE(s.ok()) << "rename between links of one file: " << s.ToString();
        return;
      }
      bool dst_dir = dst->type == FileType::kDirectory;
      if (src_dir && !dst_dir) return ExpectCode(s, ENOTDIR, "rename dir over file " + to);
      if (!src_dir && dst_dir) return ExpectCode(s, EISDIR, "rename file over dir " + to);
      if (dst_dir && !model_.Children(to).empty()) return ExpectCode(s, ENOTEMPTY, "rename over " + to);
      ASSERT_TRUE(s.ok()) << "rename " << from << " over " << to << ": " << s.ToString();
      model_.Remove(to);
    } else {
      ASSERT_TRUE(s.ok()) << "rename " << from << " to " << to << ": " << s.ToString();
    }
    model_.Move(from, to);
  }

  void DoReadCompare() {
    auto files = Files();
    if (files.empty()) return;
    std::string p = Pick(files);
    const Node* n = model_.Get(p);
    uint64_t off = rng_.Uniform(n->data.size() + 100), len = rng_.Uniform(30000);
    std::string buf(len, '\x7f');
    auto r = fs_->Read(InoOf(p), off, std::span(reinterpret_cast<uint8_t*>(buf.data()), len));
    ASSERT_TRUE(r.ok());
    uint64_t expect = off >= n->data.size() ? 0 : std::min<uint64_t>(len, n->data.size() - off);
    ASSERT_EQ(*r, expect);
    if (expect > 0) {
      EXPECT_EQ(buf.substr(0, expect), n->data.substr(off, expect)) << "read " << p << " at " << off;
    }
  }

  void Verify(int step) {
    auto snap = testing::Snapshot(fs_.get());
    ASSERT_TRUE(snap.ok()) << snap.status().ToString();
    ASSERT_EQ(*snap, model_.Snapshot()) << "after step " << step;
    auto check = fs_->Check();
    ASSERT_TRUE(check.ok()) << check.status().ToString();
    for (auto& p : check->problems) ADD_FAILURE() << "step " << step << ": " << p;
    ASSERT_TRUE(check->ok());
  }

  void Run(int steps) {
    for (int i = 0; i < steps; ++i) {
      Step();
      if (::testing::Test::HasFatalFailure()) return;
      Verify(i);
      if (::testing::Test::HasFatalFailure()) return;
    }
  }

 private:
  base::Random rng_;
  std::unique_ptr<device::Device> dev_;
  bool group_;
  std::unique_ptr<Filesystem> fs_;
  Model model_;
};

int Steps(int fallback) {
  const char* s = std::getenv("DAXFS_MODEL_STEPS");
  return s ? std::atoi(s) : fallback;
}

TEST(FsModelTest, DurableOnReturn) {
  uint64_t seed = base::SeedFromEnv(1001);
  std::printf("seed %llu (replay with DAXFS_SEED=%llu)\n", (unsigned long long)seed, (unsigned long long)seed);
  FsModelRun run(seed, false);
  run.Run(Steps(400));
}

TEST(FsModelTest, GroupCommit) {
  uint64_t seed = base::SeedFromEnv(2002);
  std::printf("seed %llu (replay with DAXFS_SEED=%llu)\n", (unsigned long long)seed, (unsigned long long)seed);
  FsModelRun run(seed, true);
  run.Run(Steps(400));
}

}  // namespace
}  // namespace daxfs
