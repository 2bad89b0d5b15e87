// Model-based test of the filesystem: random sequences of namespace, file and reflink operations
// (clone, clone range, dedupe, unshare, copy_file_range) on a few directories and files, compared
// after every step with a plain in-memory model (contents, sizes, holes, directory listings, link
// counts, symlink targets, error codes, and which file blocks share one device block), with the
// consistency checker after every step. Seeded and replayable: DAXFS_SEED=<n>;
// DAXFS_MODEL_STEPS=<n> for a longer run (the "long" target runs many more).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "base/random.h"
#include "daxfs/filesystem.h"
#include "device/device.h"
#include "fs_snapshot.h"

namespace daxfs {
namespace {

constexpr uint64_t kBlock = 4096;
uint64_t BlocksCovering(uint64_t bytes) { return (bytes + kBlock - 1) / kBlock; }

struct Node {
  FileType type;
  std::string data;    // files: contents; symlinks: target
  uint32_t links = 1;  // files and symlinks: names pointing here
  // Files: for each block below the size, the "physical block" it holds (0: a hole or unwritten,
  // which is never shared). File blocks holding one id must share one device block, and only
  // those.
  std::vector<uint64_t> phys;
  uint64_t rdev = 0;  // device nodes
  std::map<std::string, std::string> xattrs;  // name -> value, any inode type
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
  // Every regular file once (by node id), with one of its paths.
  std::map<int, std::string> Files() const {
    std::map<int, std::string> out;
    for (auto& [p, id] : paths_) {
      if (nodes_.at(id).type == FileType::kRegular) out.emplace(id, p);
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
      if (n.rdev != 0) text += fmt::format(" rdev={}", n.rdev);
      // As testing::DumpXattrs writes them: name:size:checksum in name order.
      const char* sep = " xattrs=";
      for (auto& [name, value] : n.xattrs) {
        text += fmt::format("{}{}:{}:{:016x}", sep, name, value.size(),
                            base::Checksum64(value.data(), value.size()));
        sep = ",";
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
    switch (rng_.Uniform(26)) {
      case 24: case 25: return DoXattr();
      case 23:
        return DoMknod();
      case 21:
        return DoRetainAndUnlink();
      case 22:
        return DoOrphanWriteOrRelease();
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
      case 16: return DoClone();
      case 17: return DoCloneRange();
      case 18: return DoDedupe();
      case 19: return DoUnshare();
      case 20: return DoCopyFileRange();
      case 15:
        if (rng_.OneIn(4)) {
          ASSERT_TRUE(fs_->Unmount().ok());  // frees the orphans: the references go with it
          fs_.reset();
          Mount();
          for (auto& o : orphans_) {
            EXPECT_EQ(fs_->GetAttr(o.first).status().code(), ENOENT) << "orphan after remount";
          }
          orphans_.clear();
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

  // A FIFO, socket or device node; a device node gets a random device number.
  void DoMknod() {
    std::string dir = RandomDir(), path = Join(dir, RandomName());
    const FileType type = static_cast<FileType>(4 + rng_.Uniform(4));
    const bool device = type == FileType::kCharDevice || type == FileType::kBlockDevice;
    const uint64_t rdev = device ? 1 + rng_.Uniform(1u << 20) : 0;
    Status s = fs_->Mknod(InoOf(dir), Base(path), type, 0640, rdev, {}).status();
    if (model_.Exists(path)) return ExpectCode(s, EEXIST, "mknod " + path);
    ASSERT_TRUE(s.ok()) << "mknod " << path << ": " << s.ToString();
    Node n{type, ""};
    n.rdev = rdev;
    model_.Add(path, n);
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
    if (n->data.size() < off + bytes.size()) Resize(n, off + bytes.size());
    n->data.replace(off, bytes.size(), bytes);
    Rewrite(n, off / kBlock, BlocksCovering(off + bytes.size()));
  }

  // ---- Physical blocks of the model.
  uint64_t FreshPhys() { return next_phys_++; }
  // New size: blocks past it go, new ones are holes.
  void Resize(Node* n, uint64_t size) {
    n->data.resize(size, '\0');
    n->phys.resize(BlocksCovering(size), 0);
  }
  // Blocks [first, end) now hold data of their own (a write, a copy).
  void Rewrite(Node* n, uint64_t first, uint64_t end) {
    for (uint64_t b = first; b < end && b < n->phys.size(); ++b) n->phys[b] = FreshPhys();
  }
  // Zeroing bytes [from, to) of a partial block: the block gets its own copy if it holds data
  // and some of those bytes are below the size (holes and unwritten blocks already read zero).
  void ZeroPartial(Node* n, uint64_t from, uint64_t to) {
    to = std::min<uint64_t>(to, n->data.size());
    uint64_t b = from / kBlock;
    if (from < to && b < n->phys.size() && n->phys[b] != 0) n->phys[b] = FreshPhys();
  }
  // Zeroing (punch or zero range) [offset, end): whole blocks lose their data, edges are zeroed.
  void ZeroRange(Node* n, uint64_t offset, uint64_t end) {
    uint64_t head_end = std::min(end, BlocksCovering(offset) * kBlock);
    uint64_t tail_begin = std::max(head_end, end / kBlock * kBlock);
    if (offset % kBlock != 0) ZeroPartial(n, offset, head_end);
    if (end % kBlock != 0) ZeroPartial(n, tail_begin, end);
    for (uint64_t b = BlocksCovering(offset); b < end / kBlock && b < n->phys.size(); ++b) {
      n->phys[b] = 0;
    }
  }

  void DoTruncate() {
    auto files = Files();
    if (files.empty()) return;
    std::string p = Pick(files);
    Node* n = model_.GetMutable(p);
    uint64_t size = rng_.Uniform(n->data.size() + 9000);
    ASSERT_TRUE(fs_->Truncate(InoOf(p), size).ok());
    if (size < n->data.size() && size % kBlock != 0) {
      ZeroPartial(n, size, BlocksCovering(size) * kBlock);
    }
    Resize(n, size);
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
    ZeroRange(n, off, off + len);
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
    if (!keep && n->data.size() < off + len) Resize(n, off + len);
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

  // ---- Reflink steps. Offsets are mostly block-aligned and lengths whole blocks or to EOF, with
  // some misaligned or out-of-range ones for the errors.

  uint64_t AlignedOffset(const Node* n, uint64_t extra_blocks) {
    uint64_t off = kBlock * rng_.Uniform(BlocksCovering(n->data.size()) + extra_blocks);
    if (rng_.OneIn(12)) off += 1 + rng_.Uniform(kBlock - 1);
    return off;
  }
  uint64_t RemapLength(const Node* src, uint64_t src_off) {
    switch (rng_.Uniform(5)) {
      case 0: return 0;
      case 1: return src_off < src->data.size() ? src->data.size() - src_off : kBlock;
      case 2: return 1 + rng_.Uniform(3 * kBlock);
      default: return kBlock * (1 + rng_.Uniform(6));
    }
  }
  static bool Overlap(uint64_t a, uint64_t b, uint64_t length) {
    return a < b + length && b < a + length;
  }
  // Copies src's bytes [so, so + len) and physical blocks [so, so + blocks) to dst at `d`.
  void ShareInto(const Node& src, Node* dst, uint64_t so, uint64_t d, uint64_t len,
                 uint64_t blocks) {
    Node from = src;  // src may be dst
    if (dst->data.size() < d + len) Resize(dst, d + len);
    dst->data.replace(d, len, from.data.substr(so, len));
    for (uint64_t i = 0; i < blocks; ++i) dst->phys[d / kBlock + i] = from.phys[so / kBlock + i];
  }

  void DoClone() {
    auto files = Files();
    if (files.empty()) return;
    std::string sp = Pick(files), dp = Pick(files);
    Status s = fs_->Clone(InoOf(sp), InoOf(dp));
    Node* src = model_.GetMutable(sp);
    Node* dst = model_.GetMutable(dp);
    if (src == dst) {
      return ExpectCode(s, src->data.empty() ? 0 : EINVAL, "clone onto itself " + sp);
    }
    ASSERT_TRUE(s.ok()) << "clone " << sp << " " << dp << ": " << s.ToString();
    dst->data = src->data;
    dst->phys = src->phys;
  }

  void DoCloneRange() {
    auto files = Files();
    if (files.empty()) return;
    std::string sp = Pick(files), dp = Pick(files);
    Node* src = model_.GetMutable(sp);
    Node* dst = model_.GetMutable(dp);
    uint64_t so = AlignedOffset(src, 1), d = AlignedOffset(dst, 3);
    uint64_t len = RemapLength(src, so);
    Status s = fs_->CloneRange(InoOf(sp), so, InoOf(dp), d, len);
    std::string what = fmt::format("clone range {}@{} -> {}@{} len {}", sp, so, dp, d, len);
    uint64_t size = src->data.size();
    if (so % kBlock != 0 || d % kBlock != 0) return ExpectCode(s, EINVAL, what);
    if (len == 0) {
      if (so == size) return ExpectCode(s, 0, what);
      if (so > size) return ExpectCode(s, EINVAL, what);
      len = size - so;
    }
    if (so >= size || len > size - so) return ExpectCode(s, EINVAL, what);
    bool partial = len % kBlock != 0;
    if (partial && so + len != size) return ExpectCode(s, EINVAL, what);
    uint64_t blocks = BlocksCovering(len);
    if (src == dst && Overlap(so, d, blocks * kBlock)) return ExpectCode(s, EINVAL, what);
    if (partial && d + len < dst->data.size()) return ExpectCode(s, EINVAL, what);
    ASSERT_TRUE(s.ok()) << what << ": " << s.ToString();
    ShareInto(*src, dst, so, d, len, blocks);
  }

  void DoDedupe() {
    auto files = Files();
    if (files.empty()) return;
    std::string sp = Pick(files), dp = Pick(files);
    Node* src = model_.GetMutable(sp);
    Node* dst = model_.GetMutable(dp);
    uint64_t so = AlignedOffset(src, 1), d = AlignedOffset(dst, 1);
    uint64_t len = RemapLength(src, so);
    // Usually first make the contents equal (an ordinary write), so that dedupe has work to do.
    if (src != dst && !rng_.OneIn(3) && !src->data.empty() && !dst->data.empty()) {
      so = kBlock * rng_.Uniform(BlocksCovering(src->data.size()));
      d = kBlock * rng_.Uniform(BlocksCovering(dst->data.size()));
      uint64_t n = std::min({kBlock * (1 + rng_.Uniform(4)), src->data.size() - so,
                             dst->data.size() - d});
      std::string bytes = src->data.substr(so, n);
      auto r = fs_->Write(InoOf(dp), d, std::span(reinterpret_cast<const uint8_t*>(bytes.data()), n));
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      dst->data.replace(d, n, bytes);
      Rewrite(dst, d / kBlock, BlocksCovering(d + n));
      len = n;
    }
    Result<DedupeResult> r = fs_->Dedupe(InoOf(sp), so, InoOf(dp), d, len);
    std::string what = fmt::format("dedupe {}@{} -> {}@{} len {}", sp, so, dp, d, len);
    if (so % kBlock != 0 || d % kBlock != 0) return ExpectCode(r.status(), EINVAL, what);
    if (len == 0) {
      ASSERT_TRUE(r.ok()) << what << ": " << r.status().ToString();
      EXPECT_EQ(r->bytes_deduped, 0u);
      return;
    }
    auto within = [&](uint64_t off, const Node* n) {
      return off < n->data.size() && len <= n->data.size() - off;
    };
    if (!within(so, src) || !within(d, dst)) return ExpectCode(r.status(), EINVAL, what);
    uint64_t count = len;
    if (!(so + len == src->data.size() && d + len == dst->data.size())) {
      count = len / kBlock * kBlock;
    }
    if (count > 0 && src == dst && Overlap(so, d, BlocksCovering(count) * kBlock)) {
      return ExpectCode(r.status(), EINVAL, what);
    }
    ASSERT_TRUE(r.ok()) << what << ": " << r.status().ToString();
    bool equal = count == 0 || src->data.compare(so, count, dst->data, d, count) == 0;
    EXPECT_EQ(r->differs, !equal) << what;
    EXPECT_EQ(r->bytes_deduped, equal ? count : 0) << what;
    if (equal && count > 0) ShareInto(*src, dst, so, d, count, BlocksCovering(count));
  }

  void DoUnshare() {
    auto files = Files();
    if (files.empty()) return;
    std::string p = Pick(files);
    Node* n = model_.GetMutable(p);
    uint64_t off = rng_.Uniform(n->data.size() + 8000), len = 1 + rng_.Uniform(20000);
    Status s = fs_->Unshare(InoOf(p), off, len);
    ASSERT_TRUE(s.ok()) << "unshare " << p << ": " << s.ToString();
    // Shared blocks get copies; relabelling the others too changes no sharing.
    for (uint64_t b = off / kBlock; b < BlocksCovering(off + len) && b < n->phys.size(); ++b) {
      if (n->phys[b] != 0) n->phys[b] = FreshPhys();
    }
  }

  void DoCopyFileRange() {
    auto files = Files();
    if (files.empty()) return;
    std::string sp = Pick(files), dp = Pick(files);
    Node* src = model_.GetMutable(sp);
    Node* dst = model_.GetMutable(dp);
    uint64_t so = rng_.Uniform(src->data.size() + 2000);
    uint64_t d = rng_.OneIn(2) ? AlignedOffset(dst, 2) + so % kBlock : rng_.Uniform(dst->data.size() + 8000);
    uint64_t len = rng_.Uniform(30000);
    Result<uint64_t> r = fs_->CopyFileRange(InoOf(sp), so, InoOf(dp), d, len);
    std::string what = fmt::format("copy_file_range {}@{} -> {}@{} len {}", sp, so, dp, d, len);
    uint64_t n = so < src->data.size() ? std::min<uint64_t>(len, src->data.size() - so) : 0;
    if (n > 0 && src == dst && Overlap(so, d, n)) return ExpectCode(r.status(), EINVAL, what);
    ASSERT_TRUE(r.ok()) << what << ": " << r.status().ToString();
    ASSERT_EQ(*r, n) << what;
    if (n == 0) return;
    Node from = *src;
    if (dst->data.size() < d + n) Resize(dst, d + n);
    dst->data.replace(d, n, from.data.substr(so, n));
    // The whole blocks in the middle are shared when the offsets agree within a block.
    uint64_t mid_begin = BlocksCovering(so) * kBlock, mid_end = (so + n) / kBlock * kBlock;
    if (so % kBlock == d % kBlock && mid_begin < mid_end) {
      if (so % kBlock != 0) Rewrite(dst, d / kBlock, d / kBlock + 1);
      if ((so + n) % kBlock != 0) {
        uint64_t tail = (d + n) / kBlock;
        Rewrite(dst, tail, tail + 1);
      }
      for (uint64_t i = 0; i < (mid_end - mid_begin) / kBlock; ++i) {
        dst->phys[(d + (mid_begin - so)) / kBlock + i] = from.phys[mid_begin / kBlock + i];
      }
    } else {
      Rewrite(dst, d / kBlock, BlocksCovering(d + n));
    }
  }

  // Which (file, block) pairs share one device block, from Bmap, must be what the model says,
  // and Bmap's shared flag must be set exactly on the blocks with two or more owners.
  void VerifySharing(int step) {
    using Place = std::pair<int, uint64_t>;  // (model node id, file block)
    std::map<uint64_t, std::vector<Place>> by_device;
    std::map<uint64_t, std::vector<Place>> by_phys;
    std::map<Place, bool> flagged;
    for (auto& [id, path] : model_.Files()) {
      const Node* n = model_.Get(path);
      for (uint64_t b = 0; b < n->phys.size(); ++b) {
        if (n->phys[b] != 0) by_phys[n->phys[b]].push_back({id, b});
      }
      auto map = fs_->Bmap(InoOf(path));
      ASSERT_TRUE(map.ok()) << map.status().ToString();
      for (const FileExtent& e : *map) {
        if (e.unwritten) continue;  // never shared; the model holds 0 for them
        for (uint64_t i = 0; i < e.length / kBlock; ++i) {
          Place place{id, e.file_offset / kBlock + i};
          by_device[e.device_offset / kBlock + i].push_back(place);
          flagged[place] = e.shared;
        }
      }
    }
    std::set<std::vector<Place>> fs_groups, model_groups;
    for (auto& [device, places] : by_device) {
      for (const Place& p : places) {
        EXPECT_EQ(flagged[p], places.size() > 1)
            << "step " << step << ": shared flag of node " << p.first << " block " << p.second;
      }
      fs_groups.insert(places);
    }
    for (auto& [phys, places] : by_phys) model_groups.insert(places);
    if (fs_groups != model_groups) {
      auto text = [](const std::set<std::vector<Place>>& groups) {
        std::string out;
        for (auto& g : groups) {
          if (g.size() < 2) continue;
          out += "{";
          for (auto& [id, b] : g) out += fmt::format(" {}:{}", id, b);
          out += " } ";
        }
        return out;
      };
      FAIL() << "step " << step << ": sharing differs (or written blocks differ)\n  fs:    "
                    << text(fs_groups) << "\n  model: " << text(model_groups)
                    << "\n  fs has " << fs_groups.size() << " groups, model " << model_groups.size();
    }
  }

  // Set (plain, create-only, replace-only), remove, get or list an extended attribute of any
  // inode; names from a small set so that they collide, values up to the 64 KiB limit and past it.
  void DoXattr() {
    auto all = model_.AllPaths();
    if (all.empty()) return;
    std::string p = Pick(all);
    Node* n = model_.GetMutable(p);
    daxfs::Ino ino = InoOf(p);
    std::string name = "user." + RandomName();
    if (rng_.OneIn(20)) name = rng_.OneIn(2) ? std::string(256, 'n') : std::string(255, 'n');
    if (rng_.OneIn(40)) name.clear();
    const bool bad_name = name.empty() || name.size() > 255;
    const int bad_code = name.empty() ? EINVAL : ERANGE;
    const bool present = n->xattrs.count(name) > 0;
    const std::string what = "xattr " + name.substr(0, 12) + " of " + p;
    switch (rng_.Uniform(5)) {
      case 0: case 1: {  // set
        const int flags = rng_.OneIn(2) ? 0 : (rng_.OneIn(2) ? kXattrCreate : kXattrReplace);
        size_t size = rng_.OneIn(3) ? 0 : rng_.Uniform(3000);
        if (rng_.OneIn(8)) size = 60000 + rng_.Uniform(5537);
        if (rng_.OneIn(30) && !bad_name) size = 65537;
        std::string value = RandomBytes(size);
        Status st = fs_->SetXattr(
            ino, name, std::span(reinterpret_cast<const uint8_t*>(value.data()), value.size()), flags);
        if (bad_name) return ExpectCode(st, bad_code, "set " + what);
        if (size > 65536) return ExpectCode(st, E2BIG, "set " + what);
        if (flags == kXattrCreate && present) return ExpectCode(st, EEXIST, "create " + what);
        if (flags == kXattrReplace && !present) return ExpectCode(st, ENODATA, "replace " + what);
        ASSERT_TRUE(st.ok()) << "set " << what << ": " << st.ToString();
        n->xattrs[name] = std::move(value);
        return;
      }
      case 2: {  // remove
        Status st = fs_->RemoveXattr(ino, name);
        if (bad_name) return ExpectCode(st, bad_code, "remove " + what);
        if (!present) return ExpectCode(st, ENODATA, "remove " + what);
        ASSERT_TRUE(st.ok()) << "remove " << what << ": " << st.ToString();
        n->xattrs.erase(name);
        return;
      }
      case 3: {  // get: the size, then the value (into a buffer too small, sometimes)
        auto size = fs_->GetXattr(ino, name, {});
        if (bad_name) return ExpectCode(size.status(), bad_code, "get " + what);
        if (!present) return ExpectCode(size.status(), ENODATA, "get " + what);
        ASSERT_TRUE(size.ok()) << "get " << what << ": " << size.status().ToString();
        const std::string& want = n->xattrs.at(name);
        ASSERT_EQ(*size, want.size()) << what;
        if (want.empty()) return;
        const bool small = rng_.OneIn(5);
        std::string buf(small ? want.size() - 1 : want.size() + rng_.Uniform(10), '\x7f');
        auto got = fs_->GetXattr(
            ino, name, std::span(reinterpret_cast<uint8_t*>(buf.data()), buf.size()));
        if (small) return ExpectCode(got.status(), ERANGE, "get into a short buffer " + what);
        ASSERT_TRUE(got.ok()) << what << ": " << got.status().ToString();
        ASSERT_EQ(*got, want.size());
        EXPECT_EQ(buf.substr(0, want.size()), want) << what;
        return;
      }
      default: {  // list
        auto names = fs_->ListXattr(ino);
        ASSERT_TRUE(names.ok()) << "list xattrs of " << p << ": " << names.status().ToString();
        std::vector<std::string> want;
        for (auto& kv : n->xattrs) want.push_back(kv.first);
        std::vector<std::string> got = *names;
        std::sort(got.begin(), got.end());
        EXPECT_EQ(got, want) << "list xattrs of " << p;
        return;
      }
    }
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

  // ---- Open-file references: a retained file's last link goes, it lives on as an orphan (by
  // number, nlink 0, its data kept and writable) until its release frees it.

  void DoRetainAndUnlink() {
    // Files with one link and no block shared with another file (the sharing checks cover
    // named files only).
    std::map<uint64_t, int> owners;
    for (auto& f : model_.Files()) {
      for (uint64_t b : model_.Get(f.second)->phys) {
        if (b != 0) ++owners[b];
      }
    }
    std::vector<std::string> single;
    for (auto& f : model_.Files()) {
      const Node* n = model_.Get(f.second);
      bool shared = std::any_of(n->phys.begin(), n->phys.end(),
                                [&](uint64_t b) { return b != 0 && owners[b] > 1; });
      if (n->links == 1 && !shared) single.push_back(f.second);
    }
    if (single.empty()) return;
    std::string p = Pick(single);
    daxfs::Ino ino = InoOf(p);
    ASSERT_TRUE(fs_->Retain(ino).ok());
    ASSERT_TRUE(fs_->Unlink(InoOf(Parent(p)), Base(p)).ok()) << "unlink retained " << p;
    orphans_.push_back({ino, model_.Get(p)->data});
    model_.Remove(p);
  }

  void DoOrphanWriteOrRelease() {
    if (orphans_.empty()) return;
    size_t i = rng_.Uniform(orphans_.size());
    daxfs::Ino ino = orphans_[i].first;
    std::string& data = orphans_[i].second;
    if (rng_.OneIn(2)) {
      uint64_t off = rng_.Uniform(data.size() + 5000);
      std::string bytes(1 + rng_.Uniform(9000), static_cast<char>('A' + rng_.Uniform(26)));
      auto w = fs_->Write(ino, off,
                          std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
      ASSERT_TRUE(w.ok()) << "write to orphan " << ino << ": " << w.status().ToString();
      if (data.size() < off + bytes.size()) data.resize(off + bytes.size(), '\0');
      data.replace(off, bytes.size(), bytes);
      return;
    }
    daxfs::Ino gone = ino;
    ASSERT_TRUE(fs_->Release(gone).ok());
    orphans_.erase(orphans_.begin() + static_cast<long>(i));
    EXPECT_EQ(fs_->GetAttr(gone).status().code(), ENOENT) << "orphan " << gone << " after release";
  }

  void VerifyOrphans(int step) {
    for (size_t i = 0; i < orphans_.size(); ++i) {
      daxfs::Ino ino = orphans_[i].first;
      const std::string& data = orphans_[i].second;
      auto a = fs_->GetAttr(ino);
      ASSERT_TRUE(a.ok()) << "orphan " << ino << " after step " << step;
      EXPECT_EQ(a->nlink, 0u);
      ASSERT_EQ(a->size, data.size());
      std::string buf(data.size(), '\x7f');
      auto r = fs_->Read(ino, 0, std::span(reinterpret_cast<uint8_t*>(buf.data()), buf.size()));
      ASSERT_TRUE(r.ok());
      EXPECT_EQ(buf, data) << "orphan " << ino << " after step " << step;
    }
  }

  void Verify(int step) {
    auto snap = testing::Snapshot(fs_.get());
    ASSERT_TRUE(snap.ok()) << snap.status().ToString();
    ASSERT_EQ(*snap, model_.Snapshot()) << "after step " << step;
    VerifyOrphans(step);
    if (::testing::Test::HasFatalFailure()) return;
    VerifySharing(step);
    if (::testing::Test::HasFatalFailure()) return;
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
  std::vector<std::pair<daxfs::Ino, std::string>> orphans_;  // retained, unlinked: id, data
  uint64_t next_phys_ = 1;
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
