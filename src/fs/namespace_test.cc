// Tests of the namespace operations (namespace.cc) through the public Filesystem API, on a memory
// device; a few white-box tests patch records through the pool to reach limits (link counts,
// name-hash collisions) that the API cannot reach cheaply. Every test ends with the checker.
#include <gtest/gtest.h>
#include <sys/sysmacros.h>

#include <chrono>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "daxfs/filesystem.h"
#include "device/device.h"
#include "format/records.h"
#include "fs/fs_impl.h"
#include "status_assert.h"
#include "txn/pool.h"

namespace daxfs {
namespace {

template <typename T>
T Must(Result<T> r) {
  if (!r.ok()) {
    ADD_FAILURE() << r.status().ToString();
    return T{};
  }
  return std::move(*r);
}

int64_t Now() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Runs the consistency checker (check.cc) and expects no problems.
void ExpectConsistent(Filesystem* fs) {
  Result<FsCheckResult> r = fs->Check();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::string all;
  for (const std::string& p : r->problems) all += p + "\n";
  EXPECT_TRUE(r->ok()) << all;
}

class NamespaceTest : public ::testing::Test {
 protected:
  void SetUp() override { FormatAndMount(64 << 20); }
  void TearDown() override {
    if (fs_ && !skip_final_check_) ExpectConsistent(fs_.get());
  }

  void FormatAndMount(uint64_t size, MountOptions options = {}) {
    fs_.reset();
    dev_ = device::NewMemoryDevice(size);
    ASSERT_OK(Filesystem::Format(dev_.get(), {}));
    Mount(options);
  }
  void Mount(MountOptions options = {}) {
    Result<std::unique_ptr<Filesystem>> fs = Filesystem::Open(dev_.get(), options);
    ASSERT_TRUE(fs.ok()) << fs.status().ToString();
    fs_ = std::move(*fs);
  }
  void Remount() {
    ASSERT_OK(fs_->Unmount());
    fs_.reset();
    Mount();
  }

  Ino File(Ino dir, const std::string& name) { return Must(fs_->Create(dir, name, 0644)).ino; }
  Ino Dir(Ino dir, const std::string& name) { return Must(fs_->Mkdir(dir, name, 0755)).ino; }
  Ino Link(Ino dir, const std::string& name, const std::string& target) {
    return Must(fs_->Symlink(dir, name, target)).ino;
  }
  Attr Stat(Ino ino) { return Must(fs_->GetAttr(ino)); }
  Ino PathIno(const std::string& path, bool follow = true) {
    return Must(fs_->Resolve(path, follow)).ino;
  }

  // Every entry of `dir` from `cookie` on, "." and ".." included when cookie is 0.
  std::vector<DirEntry> List(Ino dir, uint64_t cookie = 0) {
    std::vector<DirEntry> out;
    EXPECT_OK(fs_->ReadDir(dir, cookie, [&](const DirEntry& e) {
      out.push_back(e);
      return true;
    }));
    return out;
  }
  std::set<std::string> Names(Ino dir) {
    std::set<std::string> out;
    for (const DirEntry& e : List(dir, 2)) out.insert(e.name);
    return out;
  }

  // The whole tree as text: one line per path with what a user could observe.
  std::string Snapshot() {
    std::ostringstream out;
    std::function<void(Ino, const std::string&)> walk = [&](Ino dir, const std::string& path) {
      for (const DirEntry& e : List(dir, 2)) {
        Attr a = Stat(e.ino);
        out << path << "/" << e.name << " ino=" << a.ino << " type=" << int(a.type)
            << " mode=" << a.mode << " nlink=" << a.nlink << " size=" << a.size << " uid=" << a.uid
            << " gid=" << a.gid << " mtime=" << a.mtime_ns << " ctime=" << a.ctime_ns;
        if (a.type == FileType::kSymlink) out << " -> " << Must(fs_->ReadLink(a.ino));
        out << "\n";
        if (a.type == FileType::kDirectory) walk(e.ino, path + "/" + e.name);
      }
    };
    Attr root = Stat(kRootIno);
    out << "/ nlink=" << root.nlink << " size=" << root.size << " mtime=" << root.mtime_ns << "\n";
    walk(kRootIno, "");
    return out.str();
  }

  // ---- White-box access (tests only): records changed through the pool, between operations.
  txn::Pool* pool() { return static_cast<fs::FsImpl*>(fs_.get())->pool(); }

  void PatchInode(Ino ino, const std::function<void(format::Inode*)>& fn) {
    Result<std::unique_ptr<txn::WriteTxn>> txn = pool()->BeginWrite();
    ASSERT_TRUE(txn.ok()) << txn.status().ToString();
    ASSERT_OK((*txn)->EnsureNodes(64));
    Result<btree::BTree*> tree = (*txn)->Tree(fs::SpecOf(fs::FsTree::kInodes));
    ASSERT_TRUE(tree.ok());
    uint8_t value[format::kInodeValueSize];
    ASSERT_TRUE(Must((*tree)->Get(btree::Key{{ino}}, value)));
    format::Inode n = Must(format::DecodeInode(ino, value));
    fn(&n);
    format::EncodeInode(n, value);
    ASSERT_OK((*tree)->Update(btree::Key{{ino}}, value));
    ASSERT_OK((*txn)->Commit());
  }

  void PatchHeader(const std::function<void(format::InodeTableHeader*)>& fn) {
    Result<std::unique_ptr<txn::WriteTxn>> txn = pool()->BeginWrite();
    ASSERT_TRUE(txn.ok()) << txn.status().ToString();
    ASSERT_OK((*txn)->EnsureNodes(64));
    Result<btree::BTree*> tree = (*txn)->Tree(fs::SpecOf(fs::FsTree::kInodes));
    ASSERT_TRUE(tree.ok());
    uint8_t value[format::kInodeValueSize];
    ASSERT_TRUE(Must((*tree)->Get(btree::Key{{format::kInodeTableHeaderIno}}, value)));
    format::InodeTableHeader h = Must(format::DecodeInodeTableHeader(value));
    fn(&h);
    format::EncodeInodeTableHeader(h, value);
    ASSERT_OK((*tree)->Update(btree::Key{{format::kInodeTableHeaderIno}}, value));
    ASSERT_OK((*txn)->Commit());
  }
  // As an image made before the header (which also lacks the posix feature bit).
  void DeleteHeader() {
    Result<std::unique_ptr<txn::WriteTxn>> txn = pool()->BeginWrite();
    ASSERT_TRUE(txn.ok()) << txn.status().ToString();
    ASSERT_OK((*txn)->EnsureNodes(64));
    Result<btree::BTree*> tree = (*txn)->Tree(fs::SpecOf(fs::FsTree::kInodes));
    ASSERT_TRUE(tree.ok());
    ASSERT_OK((*tree)->Delete(btree::Key{{format::kInodeTableHeaderIno}}));
    ASSERT_OK((*txn)->Commit());
  }

  void PatchOrphan(Ino ino, bool present) {
    Result<std::unique_ptr<txn::WriteTxn>> txn = pool()->BeginWrite();
    ASSERT_TRUE(txn.ok()) << txn.status().ToString();
    ASSERT_OK((*txn)->EnsureNodes(64));
    Result<btree::BTree*> tree = (*txn)->Tree(fs::SpecOf(fs::FsTree::kOrphans));
    ASSERT_TRUE(tree.ok());
    uint8_t value[format::kOrphanValueSize] = {};
    if (present) {
      ASSERT_OK((*tree)->Insert(btree::Key{{ino}}, value));
    } else {
      ASSERT_OK((*tree)->Delete(btree::Key{{ino}}));
    }
    ASSERT_OK((*txn)->Commit());
  }

  // Puts (or, with ino 0, deletes) raw directory entries at the given slots.
  void PatchEntries(Ino dir, const std::vector<uint64_t>& slots, Ino ino) {
    Result<std::unique_ptr<txn::WriteTxn>> txn = pool()->BeginWrite();
    ASSERT_TRUE(txn.ok()) << txn.status().ToString();
    ASSERT_OK((*txn)->EnsureNodes(1024));
    Result<btree::BTree*> tree = (*txn)->Tree(fs::SpecOf(fs::FsTree::kDirents));
    ASSERT_TRUE(tree.ok());
    for (uint64_t slot : slots) {
      if (ino == 0) {
        ASSERT_OK((*tree)->Delete(btree::Key{{dir, slot}}));
        continue;
      }
      uint8_t value[format::kDirentValueSize];
      format::EncodeDirent({.ino = ino,
                            .type = format::FileType::kRegular,
                            .name = "fake" + std::to_string(slot & 0xff)},
                           value);
      ASSERT_OK((*tree)->Put(btree::Key{{dir, slot}}, value));
    }
    ASSERT_OK((*txn)->Commit());
  }

  std::unique_ptr<device::Device> dev_;
  std::unique_ptr<Filesystem> fs_;
  bool skip_final_check_ = false;
};

// ---- Create, Lookup, GetAttr.

TEST_F(NamespaceTest, CreateLookupGetAttr) {
  ASSERT_OK(fs_->SetAttr(kRootIno, {.mtime_ns = 1}));
  int64_t t0 = Now();
  Attr a = Must(fs_->Create(kRootIno, "hello", 0100644));
  EXPECT_NE(a.ino, kRootIno);
  EXPECT_EQ(a.type, FileType::kRegular);
  EXPECT_EQ(a.mode, 0644u);  // masked to 07777
  EXPECT_EQ(a.nlink, 1u);
  EXPECT_EQ(a.size, 0u);
  EXPECT_EQ(a.uid, 0u);
  EXPECT_EQ(a.gid, 0u);
  EXPECT_GE(a.btime_ns, t0);
  EXPECT_EQ(a.mtime_ns, a.ctime_ns);

  Attr found = Must(fs_->Lookup(kRootIno, "hello"));
  EXPECT_EQ(found.ino, a.ino);
  EXPECT_EQ(Stat(a.ino).mode, 0644u);
  Attr root = Stat(kRootIno);
  EXPECT_EQ(root.size, 1u);
  EXPECT_EQ(root.nlink, 2u);
  EXPECT_GE(root.mtime_ns, t0);
  EXPECT_GE(root.ctime_ns, t0);

  EXPECT_EQ(Must(fs_->Create(kRootIno, "suid", 04755 | 0170000)).mode, 04755u);
  EXPECT_ERRNO(fs_->Create(kRootIno, "hello", 0644), EEXIST);
  EXPECT_ERRNO(fs_->Mkdir(kRootIno, "hello", 0755), EEXIST);
  EXPECT_ERRNO(fs_->Symlink(kRootIno, "hello", "x"), EEXIST);
  EXPECT_ERRNO(fs_->Lookup(kRootIno, "nope"), ENOENT);
  EXPECT_ERRNO(fs_->Lookup(a.ino, "x"), ENOTDIR);
  EXPECT_ERRNO(fs_->Lookup(9999, "x"), ENOENT);
  EXPECT_ERRNO(fs_->GetAttr(9999), ENOENT);
  EXPECT_ERRNO(fs_->Create(9999, "x", 0644), ENOENT);
  EXPECT_ERRNO(fs_->Create(a.ino, "x", 0644), ENOTDIR);
  EXPECT_ERRNO(fs_->Mkdir(a.ino, "x", 0755), ENOTDIR);
  EXPECT_EQ(Stat(kRootIno).size, 2u);
}

TEST_F(NamespaceTest, NewInodesTakeDistinctNumbers) {
  std::set<Ino> seen{kRootIno};
  for (int i = 0; i < 20; ++i) {
    EXPECT_TRUE(seen.insert(File(kRootIno, "f" + std::to_string(i))).second);
  }
  EXPECT_TRUE(seen.insert(Dir(kRootIno, "d")).second);
  EXPECT_TRUE(seen.insert(Link(kRootIno, "l", "d")).second);
}

TEST_F(NamespaceTest, InodeNumbersNeverComeBack) {
  Ino a = File(kRootIno, "a");
  Ino b = Dir(kRootIno, "b");
  ASSERT_OK(fs_->Unlink(kRootIno, "a"));
  ASSERT_OK(fs_->Rmdir(kRootIno, "b"));
  Ino c = File(kRootIno, "c");  // the newest numbers are free, but not taken again
  EXPECT_GT(c, b);
  EXPECT_GT(b, a);
  Remount();
  Ino d = File(kRootIno, "d");
  EXPECT_GT(d, c);
  // StatFs counts by type from the table's header, and Check agrees with it.
  Link(kRootIno, "l", "d");
  Dir(kRootIno, "e");
  FsStats st = Must(fs_->StatFs());
  EXPECT_EQ(st.inodes, 5u);
  EXPECT_EQ(st.files, 2u);
  EXPECT_EQ(st.directories, 2u);
  EXPECT_EQ(st.symlinks, 1u);
  EXPECT_EQ(st.special, 0u);
}

TEST_F(NamespaceTest, CheckFindsAWrongInodeTableHeader) {
  File(kRootIno, "a");
  Ino b = File(kRootIno, "b");
  // The header claims b's number is still free and counts one file too many.
  PatchHeader([&](format::InodeTableHeader* h) {
    h->next_ino = b;
    ++h->counts[static_cast<size_t>(format::FileType::kRegular)];
  });
  Result<FsCheckResult> r = fs_->Check();
  ASSERT_OK(r.status());
  std::string all;
  for (const std::string& p : r->problems) all += p + "\n";
  EXPECT_NE(all.find("the next inode is " + std::to_string(b)), std::string::npos) << all;
  EXPECT_NE(all.find("counts 3 inodes of type 1 (file) but there are 2"), std::string::npos) << all;
  // A create refuses rather than reuse a number.
  EXPECT_ERRNO(fs_->Create(kRootIno, "c", 0644), EUCLEAN);
  skip_final_check_ = true;
}

TEST_F(NamespaceTest, AMissingInodeTableHeaderIsDerivedAtAWritableMount) {
  File(kRootIno, "a");
  Ino b = File(kRootIno, "b");
  DeleteHeader();
  Remount();
  EXPECT_EQ(Must(fs_->StatFs()).files, 2u);
  EXPECT_GT(File(kRootIno, "c"), b);
}

TEST_F(NamespaceTest, NameValidation) {
  Ino d = Dir(kRootIno, "d");
  Ino f = File(d, "f");
  std::string before = Snapshot();

  EXPECT_ERRNO(fs_->Create(d, "", 0644), EINVAL);
  EXPECT_ERRNO(fs_->Create(d, "a/b", 0644), EINVAL);
  EXPECT_ERRNO(fs_->Create(d, std::string("a\0b", 3), 0644), EINVAL);
  EXPECT_ERRNO(fs_->Create(d, std::string(256, 'x'), 0644), ENAMETOOLONG);
  EXPECT_ERRNO(fs_->Lookup(d, std::string(256, 'x')), ENAMETOOLONG);
  EXPECT_ERRNO(fs_->Lookup(d, ""), EINVAL);
  EXPECT_ERRNO(fs_->Lookup(d, "a/b"), EINVAL);
  // "." and "..": creating them says they exist; removing or renaming them is refused.
  for (const char* dot : {".", ".."}) {
    EXPECT_ERRNO(fs_->Create(d, dot, 0644), EEXIST);
    EXPECT_ERRNO(fs_->Mkdir(d, dot, 0755), EEXIST);
    EXPECT_ERRNO(fs_->Symlink(d, dot, "x"), EEXIST);
    EXPECT_ERRNO(fs_->Link(f, d, dot), EEXIST);
    EXPECT_ERRNO(fs_->Unlink(d, dot), EISDIR);
    EXPECT_ERRNO(fs_->Rmdir(d, dot), EINVAL);
    EXPECT_ERRNO(fs_->Rename(d, "f", d, dot), EINVAL);
    EXPECT_ERRNO(fs_->Rename(kRootIno, dot, kRootIno, "z"), EINVAL);
  }
  EXPECT_ERRNO(fs_->Rename(d, "f", d, std::string(256, 'y')), ENAMETOOLONG);
  EXPECT_ERRNO(fs_->Rename(d, "f", d, "a/b"), EINVAL);
  EXPECT_ERRNO(fs_->Link(f, d, ""), EINVAL);
  EXPECT_EQ(Snapshot(), before);  // every refused operation changed nothing

  // Lookup accepts "." and ".." as path components.
  EXPECT_EQ(Must(fs_->Lookup(d, ".")).ino, d);
  EXPECT_EQ(Must(fs_->Lookup(d, "..")).ino, kRootIno);
  EXPECT_EQ(Must(fs_->Lookup(kRootIno, "..")).ino, kRootIno);

  // 255 bytes is fine, any byte but '/' and NUL.
  std::string longest(255, 'n');
  Ino l = File(d, longest);
  EXPECT_EQ(Must(fs_->Lookup(d, longest)).ino, l);
  std::string odd = "\x01\xff spaces\ttab\xc3\xa9";
  Ino o = File(d, odd);
  EXPECT_EQ(Must(fs_->Lookup(d, odd)).ino, o);
  EXPECT_TRUE(Names(d).count(longest));
  EXPECT_TRUE(Names(d).count(odd));
}

// ---- Directories and link counts.

TEST_F(NamespaceTest, MkdirRmdirLinkCounts) {
  Attr a = Must(fs_->Mkdir(kRootIno, "a", 041777));
  EXPECT_EQ(a.type, FileType::kDirectory);
  EXPECT_EQ(a.mode, 01777u);
  EXPECT_EQ(a.nlink, 2u);
  EXPECT_EQ(a.size, 0u);
  EXPECT_EQ(Stat(kRootIno).nlink, 3u);
  Ino b = Dir(a.ino, "b");
  Ino c = Dir(a.ino, "c");
  File(a.ino, "f");
  EXPECT_EQ(Stat(a.ino).nlink, 4u);
  EXPECT_EQ(Stat(a.ino).size, 3u);
  EXPECT_EQ(Must(fs_->Lookup(b, "..")).ino, a.ino);
  EXPECT_EQ(PathIno("/a/b/.."), a.ino);

  EXPECT_ERRNO(fs_->Rmdir(kRootIno, "a"), ENOTEMPTY);
  EXPECT_ERRNO(fs_->Rmdir(a.ino, "f"), ENOTDIR);
  EXPECT_ERRNO(fs_->Rmdir(a.ino, "missing"), ENOENT);
  EXPECT_ERRNO(fs_->Rmdir(b, "x"), ENOENT);
  EXPECT_ERRNO(fs_->Rmdir(9999, "x"), ENOENT);
  EXPECT_ERRNO(fs_->Rmdir(Must(fs_->Lookup(a.ino, "f")).ino, "x"), ENOTDIR);
  EXPECT_ERRNO(fs_->Unlink(a.ino, "b"), EISDIR);

  ASSERT_OK(fs_->SetAttr(a.ino, {.mtime_ns = 1}));
  int64_t t0 = Now();
  ASSERT_OK(fs_->Rmdir(a.ino, "b"));
  EXPECT_ERRNO(fs_->GetAttr(b), ENOENT);
  EXPECT_EQ(Stat(a.ino).nlink, 3u);
  EXPECT_EQ(Stat(a.ino).size, 2u);
  EXPECT_GE(Stat(a.ino).mtime_ns, t0);
  ASSERT_OK(fs_->Rmdir(a.ino, "c"));
  EXPECT_ERRNO(fs_->GetAttr(c), ENOENT);
  ASSERT_OK(fs_->Unlink(a.ino, "f"));
  ASSERT_OK(fs_->Rmdir(kRootIno, "a"));
  EXPECT_EQ(Stat(kRootIno).nlink, 2u);
  EXPECT_EQ(Stat(kRootIno).size, 0u);
  EXPECT_EQ(Names(kRootIno).size(), 0u);
}

TEST_F(NamespaceTest, MkdirRefusesPastTheLinkLimit) {
  Ino d = Dir(kRootIno, "d");
  PatchInode(d, [](format::Inode* n) { n->nlink = 65000; });
  EXPECT_ERRNO(fs_->Mkdir(d, "sub", 0755), EMLINK);
  EXPECT_OK(fs_->Create(d, "file", 0644));  // files do not count
  PatchInode(d, [](format::Inode* n) { n->nlink = 2; });
  EXPECT_OK(fs_->Mkdir(d, "sub", 0755));
}

// ---- Unlink and hard links.

TEST_F(NamespaceTest, UnlinkFreesAtTheLastLink) {
  Ino d = Dir(kRootIno, "d");
  Ino f = File(d, "f");
  ASSERT_OK(fs_->SetAttr(d, {.mtime_ns = 1}));
  int64_t t0 = Now();
  ASSERT_OK(fs_->Unlink(d, "f"));
  EXPECT_ERRNO(fs_->GetAttr(f), ENOENT);
  EXPECT_ERRNO(fs_->Lookup(d, "f"), ENOENT);
  EXPECT_EQ(Stat(d).size, 0u);
  EXPECT_GE(Stat(d).mtime_ns, t0);
  EXPECT_GE(Stat(d).ctime_ns, t0);
  EXPECT_ERRNO(fs_->Unlink(d, "f"), ENOENT);
  EXPECT_ERRNO(fs_->Unlink(9999, "f"), ENOENT);
  EXPECT_ERRNO(fs_->Unlink(kRootIno, "d"), EISDIR);

  // A symlink goes, its target stays.
  Ino target = File(kRootIno, "target");
  Ino l = Link(kRootIno, "l", "target");
  ASSERT_OK(fs_->Unlink(kRootIno, "l"));
  EXPECT_ERRNO(fs_->GetAttr(l), ENOENT);
  EXPECT_EQ(Stat(target).nlink, 1u);
  EXPECT_ERRNO(fs_->Unlink(target, "x"), ENOTDIR);
}

// ---- Open-file references and orphans.

TEST_F(NamespaceTest, RetainedFileOutlivesItsLastLink) {
  Ino f = File(kRootIno, "f");
  std::vector<uint8_t> data(3 * 4096 + 100, 7);
  ASSERT_EQ(Must(fs_->Write(f, 0, data)), data.size());
  uint64_t free_before = Must(fs_->StatFs()).free_blocks;
  EXPECT_ERRNO(fs_->Retain(9999), ENOENT);
  EXPECT_ERRNO(fs_->Release(f), EINVAL);
  ASSERT_OK(fs_->Retain(f));
  ASSERT_OK(fs_->Retain(f));  // references nest
  int64_t t0 = Now();
  ASSERT_OK(fs_->Unlink(kRootIno, "f"));
  EXPECT_ERRNO(fs_->Lookup(kRootIno, "f"), ENOENT);
  Attr a = Stat(f);
  EXPECT_EQ(a.nlink, 0u);
  EXPECT_GE(a.ctime_ns, t0);
  EXPECT_EQ(Must(fs_->StatFs()).files, 1u);  // still there, blocks included
  EXPECT_EQ(Must(fs_->StatFs()).free_blocks, free_before);
  ExpectConsistent(fs_.get());  // nlink 0 with an orphan record
  // Still usable by number.
  std::vector<uint8_t> back(data.size());
  EXPECT_EQ(Must(fs_->Read(f, 0, back)), data.size());
  EXPECT_EQ(back, data);
  EXPECT_EQ(Must(fs_->Write(f, data.size(), data)), data.size());
  ASSERT_OK(fs_->Truncate(f, 5000));
  ASSERT_OK(fs_->SetAttr(f, {.mode = 0600}));
  EXPECT_EQ(Stat(f).size, 5000u);
  EXPECT_ERRNO(fs_->Link(f, kRootIno, "again"), ENOENT);  // no new name for it
  ExpectConsistent(fs_.get());
  ASSERT_OK(fs_->Release(f));
  EXPECT_EQ(Stat(f).nlink, 0u);  // one reference left
  ASSERT_OK(fs_->Release(f));    // the last: freed, data and all
  EXPECT_ERRNO(fs_->GetAttr(f), ENOENT);
  EXPECT_ERRNO(fs_->Release(f), EINVAL);
  FsStats st = Must(fs_->StatFs());
  EXPECT_EQ(st.files, 0u);
  EXPECT_GT(st.free_blocks, free_before);
}

TEST_F(NamespaceTest, RetainedButLinkedFilesAreFreedAsUsual) {
  Ino f = File(kRootIno, "f");
  ASSERT_OK(fs_->Retain(f));
  ASSERT_OK(fs_->Release(f));  // no orphan: nothing happens
  ASSERT_OK(fs_->Unlink(kRootIno, "f"));
  EXPECT_ERRNO(fs_->GetAttr(f), ENOENT);  // not retained any more: freed at the last unlink
  Ino g = File(kRootIno, "g");
  ASSERT_OK(fs_->Link(g, kRootIno, "h"));
  ASSERT_OK(fs_->Retain(g));
  ASSERT_OK(fs_->Unlink(kRootIno, "g"));  // not the last link
  EXPECT_EQ(Stat(g).nlink, 1u);
  ASSERT_OK(fs_->Release(g));
  EXPECT_EQ(Stat(g).nlink, 1u);
}

TEST_F(NamespaceTest, RetainedDirectoryOutlivesRmdir) {
  Ino d = Dir(kRootIno, "d");
  Ino c = Dir(d, "c");
  ASSERT_OK(fs_->Retain(c));
  ASSERT_OK(fs_->Rmdir(d, "c"));
  EXPECT_EQ(Stat(c).nlink, 0u);
  EXPECT_EQ(Stat(d).nlink, 2u);
  EXPECT_ERRNO(fs_->Create(c, "new", 0644), ENOENT);
  EXPECT_ERRNO(fs_->Mkdir(c, "new", 0755), ENOENT);
  Ino f = File(kRootIno, "f");
  EXPECT_ERRNO(fs_->Rename(kRootIno, "f", c, "f"), ENOENT);
  EXPECT_ERRNO(fs_->Link(f, c, "f"), ENOENT);
  EXPECT_EQ(List(c, 2).size(), 0u);
  ExpectConsistent(fs_.get());
  ASSERT_OK(fs_->Release(c));
  EXPECT_ERRNO(fs_->GetAttr(c), ENOENT);
}

TEST_F(NamespaceTest, RenameOverARetainedFileOrDirectoryKeepsIt) {
  Ino a = File(kRootIno, "a");
  Ino b = File(kRootIno, "b");
  std::vector<uint8_t> data(9000, 3);
  ASSERT_EQ(Must(fs_->Write(b, 0, data)), data.size());
  ASSERT_OK(fs_->Retain(b));
  ASSERT_OK(fs_->Rename(kRootIno, "a", kRootIno, "b"));
  EXPECT_EQ(Must(fs_->Lookup(kRootIno, "b")).ino, a);
  EXPECT_EQ(Stat(b).nlink, 0u);
  std::vector<uint8_t> back(data.size());
  EXPECT_EQ(Must(fs_->Read(b, 0, back)), data.size());
  EXPECT_EQ(back, data);
  Ino x = Dir(kRootIno, "x");
  Ino y = Dir(kRootIno, "y");
  ASSERT_OK(fs_->Retain(y));
  ASSERT_OK(fs_->Rename(kRootIno, "x", kRootIno, "y"));
  EXPECT_EQ(Stat(y).nlink, 0u);
  EXPECT_EQ(Stat(kRootIno).nlink, 3u);
  ExpectConsistent(fs_.get());
  ASSERT_OK(fs_->Release(b));
  ASSERT_OK(fs_->Release(y));
  EXPECT_ERRNO(fs_->GetAttr(b), ENOENT);
  EXPECT_ERRNO(fs_->GetAttr(y), ENOENT);
  EXPECT_EQ(Stat(x).nlink, 2u);
}

TEST_F(NamespaceTest, MountFreesTheOrphansACrashLeft) {
  Ino f = File(kRootIno, "f");
  std::vector<uint8_t> data(5 * 4096, 9);
  ASSERT_EQ(Must(fs_->Write(f, 0, data)), data.size());
  Ino d = Dir(kRootIno, "d");
  uint64_t free_with_files = Must(fs_->StatFs()).free_blocks;
  ASSERT_OK(fs_->Retain(f));
  ASSERT_OK(fs_->Retain(d));
  ASSERT_OK(fs_->Unlink(kRootIno, "f"));
  ASSERT_OK(fs_->Rmdir(kRootIno, "d"));
  ASSERT_OK(fs_->Sync());
  // A power cut now: the image as it is, the references gone with the process.
  std::string image(reinterpret_cast<const char*>(dev_->base()), dev_->size());
  fs_.reset();  // (its own unmount frees the orphans on the old device)
  dev_ = device::NewMemoryDevice(image);
  Mount();
  EXPECT_ERRNO(fs_->GetAttr(f), ENOENT);
  EXPECT_ERRNO(fs_->GetAttr(d), ENOENT);
  FsStats st = Must(fs_->StatFs());
  EXPECT_EQ(st.inodes, 1u);
  EXPECT_GT(st.free_blocks, free_with_files);
  EXPECT_GT(File(kRootIno, "g"), d);  // the numbers still do not come back
}

TEST_F(NamespaceTest, ACrashImageWithOrphansReadOnlyIsConsistent) {
  Ino f = File(kRootIno, "f");
  ASSERT_OK(fs_->Retain(f));
  ASSERT_OK(fs_->Unlink(kRootIno, "f"));
  ASSERT_OK(fs_->Sync());
  std::string image(reinterpret_cast<const char*>(dev_->base()), dev_->size());
  fs_.reset();
  dev_ = device::NewMemoryDevice(image);
  Mount({.read_only = true});
  EXPECT_EQ(Stat(f).nlink, 0u);  // a read-only mount leaves the orphan to the next writable one
  ExpectConsistent(fs_.get());
  fs_.reset();
  Mount();
  EXPECT_ERRNO(fs_->GetAttr(f), ENOENT);
}

TEST_F(NamespaceTest, UnmountFreesRetainedOrphans) {
  Ino f = File(kRootIno, "f");
  ASSERT_OK(fs_->Retain(f));
  ASSERT_OK(fs_->Unlink(kRootIno, "f"));
  Remount();
  EXPECT_ERRNO(fs_->GetAttr(f), ENOENT);
  EXPECT_EQ(Must(fs_->StatFs()).inodes, 1u);
}

TEST_F(NamespaceTest, CheckFindsOrphanRecordsThatDoNotFit) {
  Ino f = File(kRootIno, "f");
  Ino g = File(kRootIno, "g");
  PatchInode(g, [](format::Inode* n) { n->nlink = 0; });  // unlinked, no record, but named
  PatchOrphan(f, true);                                   // a record for a linked file
  PatchOrphan(12345, true);                               // and for no inode
  Result<FsCheckResult> r = fs_->Check();
  ASSERT_OK(r.status());
  std::string all;
  for (const std::string& p : r->problems) all += p + "\n";
  EXPECT_NE(all.find("orphan record of inode " + std::to_string(f) + ", which has 1 links"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("orphan record of inode 12345, which does not exist"), std::string::npos)
      << all;
  EXPECT_NE(all.find("inode " + std::to_string(g) + " (file) has no link and no orphan record"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("orphan " + std::to_string(g) + " is named by 1 entries"), std::string::npos)
      << all;
  skip_final_check_ = true;
}

TEST_F(NamespaceTest, HardLinks) {
  Ino d1 = Dir(kRootIno, "d1");
  Ino d2 = Dir(kRootIno, "d2");
  Ino f = File(d1, "f");
  int64_t t0 = Now();
  Attr a = Must(fs_->Link(f, d2, "g"));
  EXPECT_EQ(a.ino, f);
  EXPECT_EQ(a.nlink, 2u);
  EXPECT_GE(a.ctime_ns, t0);
  EXPECT_EQ(Must(fs_->Lookup(d2, "g")).ino, f);
  EXPECT_EQ(Stat(d2).size, 1u);
  EXPECT_EQ(Stat(d2).nlink, 2u);  // files do not add to a directory's link count
  ASSERT_OK(fs_->Link(f, d1, "f2"));
  EXPECT_EQ(Stat(f).nlink, 3u);

  EXPECT_ERRNO(fs_->Link(d1, d2, "dirlink"), EPERM);
  EXPECT_ERRNO(fs_->Link(f, d2, "g"), EEXIST);
  EXPECT_ERRNO(fs_->Link(9999, d2, "h"), ENOENT);
  EXPECT_ERRNO(fs_->Link(f, f, "h"), ENOTDIR);
  EXPECT_ERRNO(fs_->Link(f, 9999, "h"), ENOENT);

  ASSERT_OK(fs_->Unlink(d1, "f"));
  EXPECT_EQ(Stat(f).nlink, 2u);
  ASSERT_OK(fs_->Unlink(d1, "f2"));
  EXPECT_EQ(Stat(f).nlink, 1u);
  EXPECT_EQ(Must(fs_->Lookup(d2, "g")).ino, f);
  ASSERT_OK(fs_->Unlink(d2, "g"));
  EXPECT_ERRNO(fs_->GetAttr(f), ENOENT);

  // Symlinks can be hard-linked too.
  Ino l = Link(d1, "l", "somewhere");
  ASSERT_OK(fs_->Link(l, d2, "l2"));
  EXPECT_EQ(Must(fs_->ReadLink(Must(fs_->Lookup(d2, "l2")).ino)), "somewhere");
}

TEST_F(NamespaceTest, LinkRefusesPastTheLinkLimit) {
  Ino f = File(kRootIno, "f");
  ASSERT_OK(fs_->Link(f, kRootIno, "g"));
  PatchInode(f, [](format::Inode* n) { n->nlink = 65000; });
  EXPECT_ERRNO(fs_->Link(f, kRootIno, "h"), EMLINK);
  PatchInode(f, [](format::Inode* n) { n->nlink = 64999; });
  EXPECT_OK(fs_->Link(f, kRootIno, "h"));
  EXPECT_EQ(Stat(f).nlink, 65000u);
  PatchInode(f, [](format::Inode* n) { n->nlink = 3; });
}

TEST_F(NamespaceTest, LastLinkFreesFileData) {
  auto used = [&] { return Must(fs_->StatFs()).data_blocks_used; };
  const uint64_t base = used();
  Ino f = File(kRootIno, "f");
  std::vector<uint8_t> data(3 * 4096 + 100, 0xab);
  ASSERT_EQ(Must(fs_->Write(f, 0, data)), data.size());
  const uint64_t with_f = used();
  EXPECT_GE(with_f, base + 4);
  ASSERT_OK(fs_->Link(f, kRootIno, "g"));
  ASSERT_OK(fs_->Unlink(kRootIno, "f"));
  EXPECT_EQ(used(), with_f);  // still linked as "g"
  std::vector<uint8_t> back(data.size());
  EXPECT_EQ(Must(fs_->Read(f, 0, back)), data.size());
  EXPECT_EQ(back, data);
  ASSERT_OK(fs_->Unlink(kRootIno, "g"));
  EXPECT_EQ(used(), base);
  ExpectConsistent(fs_.get());

  // Renaming over the last link of a file frees its data too.
  Ino a = File(kRootIno, "a");
  Ino b = File(kRootIno, "b");
  ASSERT_EQ(Must(fs_->Write(a, 0, data)), data.size());
  const uint64_t with_a = used();
  ASSERT_EQ(Must(fs_->Write(b, 4096 * 10, data)), data.size());
  EXPECT_GT(used(), with_a);
  ASSERT_OK(fs_->Rename(kRootIno, "a", kRootIno, "b"));
  EXPECT_EQ(used(), with_a);
  EXPECT_ERRNO(fs_->GetAttr(b), ENOENT);

  // A symlink's target is its data: it survives a remount and is freed with the symlink.
  std::string target(4000, 't');
  Link(kRootIno, "l", target);
  EXPECT_GT(used(), with_a);
  Remount();
  EXPECT_EQ(Must(fs_->ReadLink(PathIno("/l", false))), target);
  ASSERT_OK(fs_->Unlink(kRootIno, "l"));
  EXPECT_EQ(used(), with_a);
}

// ---- Symlinks.

TEST_F(NamespaceTest, SymlinkAndReadLink) {
  Attr l = Must(fs_->Symlink(kRootIno, "l", "some/where/else"));
  EXPECT_EQ(l.type, FileType::kSymlink);
  EXPECT_EQ(l.mode, 0777u);
  EXPECT_EQ(l.nlink, 1u);
  EXPECT_EQ(l.size, 15u);
  EXPECT_EQ(Must(fs_->ReadLink(l.ino)), "some/where/else");
  EXPECT_EQ(Must(fs_->Lookup(kRootIno, "l")).type, FileType::kSymlink);

  std::string longest(4095, 'x');
  Ino big = Link(kRootIno, "big", longest);
  EXPECT_EQ(Must(fs_->ReadLink(big)), longest);
  EXPECT_EQ(Stat(big).size, 4095u);

  EXPECT_ERRNO(fs_->Symlink(kRootIno, "toolong", std::string(4096, 'x')), ENAMETOOLONG);
  EXPECT_ERRNO(fs_->Symlink(kRootIno, "empty", ""), ENOENT);
  EXPECT_ERRNO(fs_->Symlink(kRootIno, "nul", std::string("a\0b", 3)), EINVAL);
  EXPECT_ERRNO(fs_->Symlink(kRootIno, "l", "x"), EEXIST);
  EXPECT_ERRNO(fs_->Symlink(9999, "x", "x"), ENOENT);
  EXPECT_ERRNO(fs_->ReadLink(File(kRootIno, "f")), EINVAL);
  EXPECT_ERRNO(fs_->ReadLink(kRootIno), EINVAL);
  EXPECT_ERRNO(fs_->ReadLink(9999), ENOENT);
  EXPECT_EQ(Names(kRootIno), (std::set<std::string>{"l", "big", "f"}));
}

// ---- Resolve.

TEST_F(NamespaceTest, ResolvePaths) {
  Ino a = Dir(kRootIno, "a");
  Ino b = Dir(a, "b");
  Ino c = File(b, "c");
  EXPECT_EQ(PathIno("/"), kRootIno);
  EXPECT_EQ(PathIno("//"), kRootIno);
  EXPECT_EQ(PathIno("/a"), a);
  EXPECT_EQ(PathIno("/a/b/c"), c);
  EXPECT_EQ(PathIno("//a///b//c"), c);
  EXPECT_EQ(PathIno("/a/b/"), b);
  EXPECT_EQ(PathIno("/a/./b/../b/./c"), c);
  EXPECT_EQ(PathIno("/.."), kRootIno);
  EXPECT_EQ(PathIno("/../../a"), a);
  EXPECT_EQ(PathIno("/a/b/../.."), kRootIno);
  EXPECT_EQ(Must(fs_->Resolve("/a/b/c")).type, FileType::kRegular);

  EXPECT_ERRNO(fs_->Resolve("a/b"), EINVAL);
  EXPECT_ERRNO(fs_->Resolve(""), EINVAL);
  EXPECT_ERRNO(fs_->Resolve("/a/x"), ENOENT);
  EXPECT_ERRNO(fs_->Resolve("/x/b"), ENOENT);
  EXPECT_ERRNO(fs_->Resolve("/a/b/c/d"), ENOTDIR);
  EXPECT_ERRNO(fs_->Resolve("/a/b/c/"), ENOTDIR);
  EXPECT_ERRNO(fs_->Resolve("/a/b/c/."), ENOTDIR);
  EXPECT_ERRNO(fs_->Resolve("/a/b/c/.."), ENOTDIR);
  EXPECT_ERRNO(fs_->Resolve("/a/" + std::string(256, 'x')), ENAMETOOLONG);
}

TEST_F(NamespaceTest, ResolveFollowsSymlinks) {
  Ino a = Dir(kRootIno, "a");
  Ino b = Dir(a, "b");
  Ino c = File(b, "c");
  Ino top_c = File(kRootIno, "c");
  Ino rel = Link(a, "rel", "b/c");  // relative to /a
  Ino abs = Link(kRootIno, "abs", "/a/b");
  Link(b, "up", "..");   // /a/b/up -> /a
  Link(b, "same", "c");  // /a/b/same -> /a/b/c, not /c
  Ino dangling = Link(kRootIno, "dangling", "/nowhere");
  Link(kRootIno, "twice", "abs/");  // through another symlink, trailing slash

  EXPECT_EQ(PathIno("/a/rel"), c);
  EXPECT_EQ(PathIno("/a/rel", false), rel);
  EXPECT_EQ(PathIno("/abs/c"), c);
  EXPECT_EQ(PathIno("/abs/c", false), c);  // a symlink in the middle is always followed
  EXPECT_EQ(PathIno("/abs"), b);
  EXPECT_EQ(PathIno("/abs", false), abs);
  EXPECT_EQ(PathIno("/abs/", false), b);  // a trailing slash follows the last symlink
  EXPECT_EQ(PathIno("/a/b/up"), a);
  EXPECT_EQ(PathIno("/a/b/up/b/up/rel"), c);
  EXPECT_EQ(PathIno("/abs/up/.."), kRootIno);  // ".." applies to where the link led
  EXPECT_EQ(PathIno("/a/b/same"), c);
  EXPECT_NE(PathIno("/a/b/same"), top_c);
  EXPECT_EQ(PathIno("/twice/c"), c);
  EXPECT_EQ(PathIno("/twice"), b);
  Link(b, "root-c", "/c");  // absolute: from the root, not from /a/b
  EXPECT_EQ(PathIno("/a/b/root-c"), top_c);
  EXPECT_EQ(PathIno("/dangling", false), dangling);
  EXPECT_ERRNO(fs_->Resolve("/dangling"), ENOENT);
  EXPECT_ERRNO(fs_->Resolve("/a/rel/x"), ENOTDIR);
  EXPECT_ERRNO(fs_->Resolve("/a/rel/"), ENOTDIR);
}

TEST_F(NamespaceTest, ResolveStopsSymlinkLoops) {
  Link(kRootIno, "self", "self");
  Link(kRootIno, "ping", "pong");
  Link(kRootIno, "pong", "/ping");
  EXPECT_ERRNO(fs_->Resolve("/self"), ELOOP);
  EXPECT_ERRNO(fs_->Resolve("/ping"), ELOOP);
  EXPECT_ERRNO(fs_->Resolve("/ping/x", false), ELOOP);
  EXPECT_EQ(Must(fs_->Resolve("/ping", false)).type, FileType::kSymlink);

  // A chain of exactly 40 symlinks resolves; 41 is a loop.
  Ino f = File(kRootIno, "f");
  Link(kRootIno, "l1", "f");
  for (int i = 2; i <= 41; ++i) {
    Link(kRootIno, "l" + std::to_string(i), "l" + std::to_string(i - 1));
  }
  EXPECT_EQ(PathIno("/l40"), f);
  EXPECT_ERRNO(fs_->Resolve("/l41"), ELOOP);
  EXPECT_EQ(Must(fs_->Resolve("/l41", false)).type, FileType::kSymlink);
}

TEST_F(NamespaceTest, LongNamesAndPaths) {
  // 16 levels of 255-byte names: the path is exactly 4096 bytes.
  std::string path;
  Ino dir = kRootIno;
  for (int i = 0; i < 16; ++i) {
    std::string name(255, static_cast<char>('a' + i));
    dir = Dir(dir, name);
    path += "/" + name;
  }
  ASSERT_EQ(path.size(), 4096u);
  EXPECT_EQ(PathIno(path), dir);
  EXPECT_ERRNO(fs_->Resolve(path + "/"), ENAMETOOLONG);
  EXPECT_ERRNO(fs_->Resolve(path + "/x"), ENAMETOOLONG);
  // A symlink may lead somewhere whose full path is longer than 4096 bytes.
  Ino deep = File(dir, "deep");
  Link(kRootIno, "short", path.substr(1));
  EXPECT_EQ(PathIno("/short/deep"), deep);
  Remount();
  EXPECT_EQ(PathIno(path), dir);
}

// ---- ReadDir.

TEST_F(NamespaceTest, ReadDirDotsTypesAndCookies) {
  Ino d = Dir(kRootIno, "d");
  Ino f = File(d, "f");
  Ino sub = Dir(d, "sub");
  Ino l = Link(d, "l", "f");
  std::vector<DirEntry> all = List(d);
  ASSERT_EQ(all.size(), 5u);
  EXPECT_EQ(all[0].name, ".");
  EXPECT_EQ(all[0].ino, d);
  EXPECT_EQ(all[0].cookie, 1u);
  EXPECT_EQ(all[0].type, FileType::kDirectory);
  EXPECT_EQ(all[1].name, "..");
  EXPECT_EQ(all[1].ino, kRootIno);
  EXPECT_EQ(all[1].cookie, 2u);
  std::map<std::string, DirEntry> by_name;
  for (size_t i = 2; i < all.size(); ++i) {
    EXPECT_GT(all[i].cookie, all[i - 1].cookie);  // key order
    by_name[all[i].name] = all[i];
  }
  EXPECT_EQ(by_name["f"].ino, f);
  EXPECT_EQ(by_name["f"].type, FileType::kRegular);
  EXPECT_EQ(by_name["sub"].ino, sub);
  EXPECT_EQ(by_name["sub"].type, FileType::kDirectory);
  EXPECT_EQ(by_name["l"].ino, l);
  EXPECT_EQ(by_name["l"].type, FileType::kSymlink);
  EXPECT_EQ(List(sub)[1].ino, d);
  EXPECT_EQ(List(kRootIno)[1].ino, kRootIno);  // ".." of the root is the root

  // Resuming after each cookie continues strictly after it.
  for (size_t i = 0; i < all.size(); ++i) {
    std::vector<DirEntry> rest = List(d, all[i].cookie);
    ASSERT_EQ(rest.size(), all.size() - i - 1);
    for (size_t j = 0; j < rest.size(); ++j) EXPECT_EQ(rest[j].name, all[i + 1 + j].name);
  }
  EXPECT_TRUE(List(d, ~0ULL).empty());

  int calls = 0;
  EXPECT_OK(fs_->ReadDir(d, 0, [&](const DirEntry&) { return ++calls < 2; }));
  EXPECT_EQ(calls, 2);
  EXPECT_ERRNO(fs_->ReadDir(f, 0, [](const DirEntry&) { return true; }), ENOTDIR);
  EXPECT_ERRNO(fs_->ReadDir(9999, 0, [](const DirEntry&) { return true; }), ENOENT);
  EXPECT_TRUE(List(Dir(kRootIno, "empty"), 2).empty());
}

TEST_F(NamespaceTest, ReadDirPaginatesWithCookies) {
  Ino d = Dir(kRootIno, "d");
  std::set<std::string> expected{".", ".."};
  for (int i = 0; i < 1000; ++i) {
    std::string name = "file-" + std::to_string(i);
    File(d, name);
    expected.insert(name);
  }
  EXPECT_EQ(Stat(d).size, 1000u);
  std::multiset<std::string> seen;
  uint64_t cookie = 0;
  for (int pages = 0;; ++pages) {
    ASSERT_LT(pages, 1000);
    std::vector<DirEntry> page;
    ASSERT_OK(fs_->ReadDir(d, cookie, [&](const DirEntry& e) {
      page.push_back(e);
      return page.size() < 7;
    }));
    if (page.empty()) break;
    ASSERT_LE(page.size(), 7u);
    for (const DirEntry& e : page) seen.insert(e.name);
    cookie = page.back().cookie;
  }
  EXPECT_EQ(seen.size(), expected.size());
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()), expected);
}

TEST_F(NamespaceTest, ReadDirSeesNoEntryTwiceWhileChanging) {
  Ino d = Dir(kRootIno, "d");
  for (int i = 0; i < 300; ++i) File(d, "f" + std::to_string(i));
  std::multiset<std::string> seen;
  int added = 0;
  // The callback changes the directory (the lock is not held while it runs).
  ASSERT_OK(fs_->ReadDir(d, 0, [&](const DirEntry& e) {
    seen.insert(e.name);
    EXPECT_EQ(Must(fs_->GetAttr(e.ino)).ino, e.ino);
    if (e.name.starts_with("f") && added < 100) {
      EXPECT_OK(fs_->Create(d, "new" + std::to_string(added++), 0644));
      EXPECT_OK(fs_->Unlink(d, e.name));
    }
    return true;
  }));
  for (const std::string& name : seen) EXPECT_EQ(seen.count(name), 1u) << name;
  EXPECT_EQ(Stat(d).size, 300u);
}

TEST_F(NamespaceTest, ManyNamesMakeADeepEntryTree) {
  Ino d = Dir(kRootIno, "d");
  const int kNames = 4000;
  for (int i = 0; i < kNames; ++i) File(d, "name-" + std::to_string(i));
  {
    std::unique_ptr<txn::ReadTxn> view = pool()->BeginRead();
    Result<btree::BTree> dirents = view->Tree(fs::SpecOf(fs::FsTree::kDirents));
    ASSERT_TRUE(dirents.ok()) << dirents.status().ToString();
    btree::TreeStats stats;
    ASSERT_OK(dirents->Validate(&stats));
    EXPECT_GE(stats.height, 3u);
    EXPECT_EQ(stats.records, static_cast<uint64_t>(kNames) + 1);
  }
  for (int i = 0; i < kNames; i += 7) EXPECT_OK(fs_->Lookup(d, "name-" + std::to_string(i)));
  for (int i = 0; i < kNames; i += 2) ASSERT_OK(fs_->Unlink(d, "name-" + std::to_string(i)));
  Remount();
  EXPECT_EQ(Stat(d).size, static_cast<uint64_t>(kNames / 2));
  std::set<std::string> names = Names(d);
  EXPECT_EQ(names.size(), static_cast<size_t>(kNames / 2));
  for (int i = 0; i < kNames; ++i) {
    std::string name = "name-" + std::to_string(i);
    EXPECT_EQ(names.count(name), i % 2 ? 1u : 0u) << name;
    if (i % 97 == 0) {
      EXPECT_ERRNO(fs_->Lookup(d, name), i % 2 ? 0 : ENOENT);
    }
  }
}

// Names whose hashes collide take the next free collision index; the slots are planted by hand
// because real 56-bit collisions cannot be found in a test.
TEST_F(NamespaceTest, HashCollisionsUseTheNextFreeSlot) {
  Ino d = Dir(kRootIno, "d");
  Ino holder = File(kRootIno, "holder");
  Ino other = File(kRootIno, "other");
  const uint64_t base = format::NameHashSlot("victim");
  PatchEntries(d, {base | 0, base | 1, base | 2, base | 4}, holder);
  Ino victim = File(d, "victim");
  auto slot_of = [&](const std::string& name) {
    for (const DirEntry& e : List(d, 2)) {
      if (e.name == name) return e.cookie;
    }
    return uint64_t{0};
  };
  EXPECT_EQ(slot_of("victim"), base | 3);
  EXPECT_EQ(Must(fs_->Lookup(d, "victim")).ino, victim);

  std::vector<uint64_t> all_but_3;
  for (uint64_t i = 0; i < 256; ++i) {
    if (i != 3) all_but_3.push_back(base | i);
  }
  PatchEntries(d, all_but_3, holder);
  EXPECT_EQ(Must(fs_->Lookup(d, "victim")).ino, victim);  // found among 256 candidates
  EXPECT_ERRNO(fs_->Create(d, "victim", 0644), EEXIST);
  ASSERT_OK(fs_->Rename(d, "victim", kRootIno, "victim"));
  EXPECT_ERRNO(fs_->Lookup(d, "victim"), ENOENT);
  // All 256 slots of the hash in use.
  PatchEntries(d, {base | 3}, holder);
  EXPECT_ERRNO(fs_->Lookup(d, "victim"), ENOENT);
  EXPECT_ERRNO(fs_->Create(d, "victim", 0644), ENOSPC);
  EXPECT_ERRNO(fs_->Mkdir(d, "victim", 0755), ENOSPC);
  EXPECT_ERRNO(fs_->Symlink(d, "victim", "x"), ENOSPC);
  EXPECT_ERRNO(fs_->Link(other, d, "victim"), ENOSPC);
  EXPECT_ERRNO(fs_->Rename(kRootIno, "victim", d, "victim"), ENOSPC);
  EXPECT_EQ(Stat(other).nlink, 1u);
  // Freeing one slot (here the top one) lets the name in there.
  PatchEntries(d, {base | 255}, 0);
  ASSERT_OK(fs_->Rename(kRootIno, "victim", d, "victim"));
  EXPECT_EQ(slot_of("victim"), base | 255);
  EXPECT_EQ(Must(fs_->Lookup(d, "victim")).ino, victim);

  std::vector<uint64_t> planted;
  for (uint64_t i = 0; i < 255; ++i) planted.push_back(base | i);
  PatchEntries(d, planted, 0);
  EXPECT_EQ(Names(d), (std::set<std::string>{"victim"}));
  EXPECT_EQ(Stat(d).size, 1u);
}

// ---- Rename.

TEST_F(NamespaceTest, RenameWithinAndAcrossDirectories) {
  Ino d1 = Dir(kRootIno, "d1");
  Ino d2 = Dir(kRootIno, "d2");
  Ino f = File(d1, "f");
  int64_t t0 = Now();
  ASSERT_OK(fs_->Rename(d1, "f", d1, "g"));
  EXPECT_ERRNO(fs_->Lookup(d1, "f"), ENOENT);
  EXPECT_EQ(Must(fs_->Lookup(d1, "g")).ino, f);
  EXPECT_EQ(Stat(d1).size, 1u);
  EXPECT_GE(Stat(f).ctime_ns, t0);
  EXPECT_GE(Stat(d1).mtime_ns, t0);

  ASSERT_OK(fs_->SetAttr(d2, {.mtime_ns = 1}));
  ASSERT_OK(fs_->Rename(d1, "g", d2, "h"));
  EXPECT_EQ(Stat(d1).size, 0u);
  EXPECT_EQ(Stat(d2).size, 1u);
  EXPECT_GE(Stat(d2).mtime_ns, t0);
  EXPECT_EQ(Must(fs_->Lookup(d2, "h")).ino, f);
  EXPECT_EQ(Stat(f).nlink, 1u);

  EXPECT_ERRNO(fs_->Rename(d1, "missing", d2, "x"), ENOENT);
  EXPECT_ERRNO(fs_->Rename(9999, "h", d2, "x"), ENOENT);
  EXPECT_ERRNO(fs_->Rename(d2, "h", 9999, "x"), ENOENT);
  EXPECT_ERRNO(fs_->Rename(d2, "h", f, "x"), ENOTDIR);
  EXPECT_ERRNO(fs_->Rename(f, "h", d2, "x"), ENOTDIR);

  // To itself, and between two names of one inode: success, nothing changes.
  ASSERT_OK(fs_->Link(f, d1, "other-name"));
  std::string before = Snapshot();
  EXPECT_OK(fs_->Rename(d2, "h", d2, "h"));
  EXPECT_OK(fs_->Rename(d2, "h", d1, "other-name"));
  EXPECT_EQ(Snapshot(), before);
}

TEST_F(NamespaceTest, RenameFileOverFile) {
  Ino a = File(kRootIno, "a");
  Ino b = File(kRootIno, "b");
  ASSERT_OK(fs_->Rename(kRootIno, "a", kRootIno, "b"));
  EXPECT_EQ(Must(fs_->Lookup(kRootIno, "b")).ino, a);
  EXPECT_ERRNO(fs_->Lookup(kRootIno, "a"), ENOENT);
  EXPECT_ERRNO(fs_->GetAttr(b), ENOENT);  // its last link went: freed
  EXPECT_EQ(Stat(kRootIno).size, 1u);

  // A target with another link only loses one.
  Ino c = File(kRootIno, "c");
  Ino d = Dir(kRootIno, "d");
  ASSERT_OK(fs_->Link(c, d, "c2"));
  int64_t t0 = Now();
  ASSERT_OK(fs_->Rename(kRootIno, "b", kRootIno, "c"));
  EXPECT_EQ(Stat(c).nlink, 1u);
  EXPECT_GE(Stat(c).ctime_ns, t0);
  EXPECT_EQ(Must(fs_->Lookup(kRootIno, "c")).ino, a);
  EXPECT_EQ(Must(fs_->Lookup(d, "c2")).ino, c);

  // Symlink over file across directories.
  Ino l = Link(d, "l", "c");
  ASSERT_OK(fs_->Rename(d, "l", kRootIno, "c"));
  EXPECT_ERRNO(fs_->GetAttr(a), ENOENT);
  EXPECT_EQ(PathIno("/c", false), l);
  EXPECT_EQ(Stat(d).size, 1u);
}

TEST_F(NamespaceTest, RenameDirectories) {
  Ino a = Dir(kRootIno, "a");
  Ino b = Dir(kRootIno, "b");
  Ino sub = Dir(a, "sub");
  File(sub, "f");
  Ino empty = Dir(b, "empty");
  Ino full = Dir(b, "full");
  File(full, "x");
  Ino file = File(b, "file");
  std::string before = Snapshot();

  EXPECT_ERRNO(fs_->Rename(a, "sub", b, "full"), ENOTEMPTY);
  EXPECT_ERRNO(fs_->Rename(a, "sub", b, "file"), ENOTDIR);
  EXPECT_ERRNO(fs_->Rename(b, "file", b, "empty"), EISDIR);
  EXPECT_ERRNO(fs_->Rename(kRootIno, "a", sub, "a"), EINVAL);  // into its own subtree
  EXPECT_ERRNO(fs_->Rename(kRootIno, "a", a, "a"), EINVAL);    // into itself
  EXPECT_ERRNO(fs_->Rename(a, "sub", sub, "sub2"), EINVAL);
  EXPECT_ERRNO(fs_->Rename(b, "full", full, "x"), EINVAL);
  EXPECT_EQ(Snapshot(), before);

  // A directory over an empty directory, across parents.
  ASSERT_OK(fs_->Rename(a, "sub", b, "empty"));
  EXPECT_ERRNO(fs_->GetAttr(empty), ENOENT);
  EXPECT_EQ(Must(fs_->Lookup(b, "empty")).ino, sub);
  EXPECT_EQ(Must(fs_->Lookup(sub, "..")).ino, b);
  EXPECT_EQ(PathIno("/b/empty/f"), Must(fs_->Lookup(sub, "f")).ino);
  EXPECT_EQ(Stat(a).nlink, 2u);
  EXPECT_EQ(Stat(a).size, 0u);
  EXPECT_EQ(Stat(b).nlink, 4u);  // full + sub (which replaced empty)
  EXPECT_EQ(Stat(b).size, 3u);

  // A directory to a new name in another directory.
  ASSERT_OK(fs_->Rename(b, "full", a, "moved"));
  EXPECT_EQ(Stat(a).nlink, 3u);
  EXPECT_EQ(Stat(b).nlink, 3u);
  EXPECT_EQ(List(full)[1].ino, a);
  // Within one directory over an empty directory.
  Dir(a, "e2");
  ASSERT_OK(fs_->Rename(a, "moved", a, "e2"));
  EXPECT_EQ(Stat(a).nlink, 3u);
  EXPECT_EQ(Stat(a).size, 1u);
  // Deeper into a sibling's subtree is fine; the reverse of a nesting is not.
  ASSERT_OK(fs_->Rename(kRootIno, "b", full, "b"));
  EXPECT_EQ(PathIno("/a/e2/b/file"), file);
  EXPECT_ERRNO(fs_->Rename(kRootIno, "a", Must(fs_->Resolve("/a/e2/b")).ino, "a"), EINVAL);
  EXPECT_EQ(Stat(kRootIno).nlink, 3u);
}

TEST_F(NamespaceTest, RenameRefusesPastTheLinkLimit) {
  Ino a = Dir(kRootIno, "a");
  Ino b = Dir(kRootIno, "b");
  Dir(a, "sub");
  Dir(b, "empty");
  PatchInode(b, [](format::Inode* n) { n->nlink = 65000; });
  EXPECT_ERRNO(fs_->Rename(a, "sub", b, "new"), EMLINK);
  EXPECT_OK(fs_->Rename(a, "sub", b, "empty"));  // replacing a directory adds no link
  PatchInode(b, [](format::Inode* n) { n->nlink = 3; });
  EXPECT_EQ(Stat(a).nlink, 2u);
}

// ---- SetAttr.

TEST_F(NamespaceTest, RenameFlags) {
  Ino f = File(kRootIno, "f");
  Ino g = File(kRootIno, "g");
  std::string before = Snapshot();
  EXPECT_ERRNO(fs_->Rename(kRootIno, "f", kRootIno, "g", kRenameNoReplace | kRenameExchange),
               EINVAL);
  EXPECT_ERRNO(fs_->Rename(kRootIno, "f", kRootIno, "g", 4), EINVAL);  // RENAME_WHITEOUT
  EXPECT_ERRNO(fs_->Rename(kRootIno, "f", kRootIno, "g", kRenameNoReplace), EEXIST);
  EXPECT_ERRNO(fs_->Rename(kRootIno, "f", kRootIno, "f", kRenameNoReplace), EEXIST);
  EXPECT_ERRNO(fs_->Rename(kRootIno, "f", kRootIno, "none", kRenameExchange), ENOENT);
  EXPECT_ERRNO(fs_->Rename(kRootIno, "none", kRootIno, "g", kRenameExchange), ENOENT);
  EXPECT_EQ(Snapshot(), before);
  ASSERT_OK(fs_->Rename(kRootIno, "f", kRootIno, "h", kRenameNoReplace));
  ASSERT_OK(fs_->Rename(kRootIno, "h", kRootIno, "g", kRenameExchange));
  EXPECT_EQ(PathIno("/h"), g);
  EXPECT_EQ(PathIno("/g"), f);
}

TEST_F(NamespaceTest, ExchangeFileAndDirectoryAcrossParents) {
  Ino a = Dir(kRootIno, "a");
  Ino b = Dir(kRootIno, "b");
  Ino f = File(a, "f");
  Ino d = Dir(b, "d");
  Ino inner = File(d, "inner");
  ASSERT_OK(fs_->SetAttr(a, {.mtime_ns = 1}));
  int64_t t0 = Now();
  ASSERT_OK(fs_->Rename(a, "f", b, "d", kRenameExchange));
  EXPECT_EQ(PathIno("/a/f"), d);
  EXPECT_EQ(PathIno("/b/d"), f);
  EXPECT_EQ(PathIno("/a/f/inner"), inner);
  EXPECT_EQ(List(d)[1].ino, a);  // ".."
  EXPECT_EQ(Stat(a).nlink, 3u);
  EXPECT_EQ(Stat(b).nlink, 2u);
  EXPECT_EQ(Stat(a).size, 1u);
  EXPECT_EQ(Stat(b).size, 1u);
  EXPECT_GE(Stat(a).mtime_ns, t0);
  EXPECT_GE(Stat(f).ctime_ns, t0);
  EXPECT_GE(Stat(d).ctime_ns, t0);
  EXPECT_EQ(List(a, 2)[0].type, FileType::kDirectory);  // the entry's type follows its inode
  ExpectConsistent(fs_.get());
  // A directory cannot be exchanged with something inside it.
  Ino deep = Dir(d, "deep");
  (void)deep;
  EXPECT_ERRNO(fs_->Rename(kRootIno, "a", d, "deep", kRenameExchange), EINVAL);
  EXPECT_ERRNO(fs_->Rename(d, "deep", kRootIno, "a", kRenameExchange), EINVAL);
  // Two directories.
  ASSERT_OK(fs_->Rename(kRootIno, "b", d, "deep", kRenameExchange));
  EXPECT_EQ(List(b)[1].ino, d);
  EXPECT_EQ(List(deep)[1].ino, kRootIno);
}

TEST_F(NamespaceTest, NewInodesBelongToTheCallerAndFollowSetgidDirectories) {
  const Credentials user{.uid = 1000, .gid = 100, .groups = {7}};
  Attr f = Must(fs_->Create(kRootIno, "f", 02755, user));
  EXPECT_EQ(f.uid, 1000u);
  EXPECT_EQ(f.gid, 100u);
  EXPECT_EQ(f.mode, 02755u);  // not in a set-gid directory: kept
  Attr l = Must(fs_->Symlink(kRootIno, "l", "f", user));
  EXPECT_EQ(l.uid, 1000u);
  Ino sg = Dir(kRootIno, "sg");
  ASSERT_OK(fs_->SetAttr(sg, {.mode = 02777, .gid = 50}));
  Attr d = Must(fs_->Mkdir(sg, "sub", 0755, user));
  EXPECT_EQ(d.gid, 50u);  // the directory's group
  EXPECT_EQ(d.uid, 1000u);
  EXPECT_EQ(d.mode, 02755u);  // inherits set-gid
  EXPECT_EQ(Must(fs_->Create(d.ino, "deeper", 0644, user)).gid, 50u);
  // A set-gid file: kept for root and members of the group, dropped for others.
  EXPECT_EQ(Must(fs_->Create(sg, "other", 02755, user)).mode, 0755u);
  EXPECT_EQ(Must(fs_->Create(sg, "member", 02755, {.uid = 1000, .gid = 100, .groups = {50}})).mode,
            02755u);
  EXPECT_EQ(Must(fs_->Create(sg, "root", 02755)).mode, 02755u);
  EXPECT_EQ(Must(fs_->Create(sg, "noexec", 02644, user)).mode, 02644u);  // mandatory-locking bit
  // The old calls are root's.
  EXPECT_EQ(Must(fs_->Create(kRootIno, "r", 0644)).uid, 0u);
}

TEST_F(NamespaceTest, MknodMakesFifosSocketsAndDeviceNodes) {
  const Credentials user{.uid = 1000, .gid = 100};
  const uint64_t dev = makedev(8, 17);
  Attr fifo = Must(fs_->Mknod(kRootIno, "fifo", FileType::kFifo, 0640, 0, user));
  Attr sock = Must(fs_->Mknod(kRootIno, "sock", FileType::kSocket, 0755, 0, user));
  Attr chr = Must(fs_->Mknod(kRootIno, "chr", FileType::kCharDevice, 0600, makedev(1, 3), {}));
  Attr blk = Must(fs_->Mknod(kRootIno, "blk", FileType::kBlockDevice, 0660, dev, {}));
  EXPECT_EQ(fifo.type, FileType::kFifo);
  EXPECT_EQ(fifo.mode, 0640u);
  EXPECT_EQ(fifo.uid, 1000u);
  EXPECT_EQ(fifo.gid, 100u);
  EXPECT_EQ(fifo.nlink, 1u);
  EXPECT_EQ(fifo.rdev, 0u);
  EXPECT_EQ(sock.type, FileType::kSocket);
  EXPECT_EQ(chr.rdev, makedev(1, 3));
  EXPECT_EQ(blk.type, FileType::kBlockDevice);
  EXPECT_EQ(blk.rdev, dev);
  EXPECT_EQ(Stat(kRootIno).size, 4u);
  // ReadDir reports their types; a remount keeps them and their device numbers.
  std::map<std::string, FileType> types;
  ASSERT_OK(fs_->ReadDir(kRootIno, 0, [&](const DirEntry& e) {
    types[e.name] = e.type;
    return true;
  }));
  EXPECT_EQ(types["fifo"], FileType::kFifo);
  EXPECT_EQ(types["sock"], FileType::kSocket);
  EXPECT_EQ(types["chr"], FileType::kCharDevice);
  EXPECT_EQ(types["blk"], FileType::kBlockDevice);
  Remount();
  Attr again = Stat(blk.ino);
  EXPECT_EQ(again.type, FileType::kBlockDevice);
  EXPECT_EQ(again.rdev, dev);
  EXPECT_EQ(again.mode, 0660u);
  FsStats st = Must(fs_->StatFs());
  EXPECT_EQ(st.special, 4u);
  // Hard links, rename and unlink as any file; chmod and chown work, a size does not.
  ASSERT_OK(fs_->Link(fifo.ino, kRootIno, "fifo2").status());
  EXPECT_EQ(Stat(fifo.ino).nlink, 2u);
  ASSERT_OK(fs_->Rename(kRootIno, "fifo2", kRootIno, "fifo3", 0));
  ASSERT_OK(fs_->SetAttr(chr.ino, {.mode = 0644, .uid = 5}).status());
  EXPECT_EQ(Stat(chr.ino).uid, 5u);
  EXPECT_EQ(Stat(chr.ino).rdev, makedev(1, 3));
  SetAttrRequest grow;
  grow.size = 4096;
  EXPECT_ERRNO(fs_->SetAttr(chr.ino, grow).status(), EINVAL);
  ASSERT_OK(fs_->Unlink(kRootIno, "fifo"));
  ASSERT_OK(fs_->Unlink(kRootIno, "fifo3"));
  EXPECT_ERRNO(fs_->GetAttr(fifo.ino).status(), ENOENT);
  EXPECT_EQ(Must(fs_->StatFs()).special, 3u);
}

TEST_F(NamespaceTest, MknodRefusesBadRequestsAndChangesNothing) {
  Ino f = File(kRootIno, "f");
  const uint64_t before = Stat(kRootIno).mtime_ns;
  EXPECT_ERRNO(fs_->Mknod(kRootIno, "x", FileType::kRegular, 0644, 0, {}).status(), EINVAL);
  EXPECT_ERRNO(fs_->Mknod(kRootIno, "x", FileType::kDirectory, 0755, 0, {}).status(), EINVAL);
  EXPECT_ERRNO(fs_->Mknod(kRootIno, "x", FileType::kSymlink, 0777, 0, {}).status(), EINVAL);
  EXPECT_ERRNO(fs_->Mknod(kRootIno, "x", static_cast<FileType>(9), 0644, 0, {}).status(), EINVAL);
  EXPECT_ERRNO(fs_->Mknod(kRootIno, "x", FileType::kFifo, 010644, 0, {}).status(), EINVAL);
  EXPECT_ERRNO(fs_->Mknod(kRootIno, "x", FileType::kFifo, 0644, makedev(1, 3), {}).status(),
               EINVAL);  // a FIFO has no device number
  EXPECT_ERRNO(fs_->Mknod(kRootIno, "f", FileType::kFifo, 0644, 0, {}).status(), EEXIST);
  EXPECT_ERRNO(fs_->Mknod(f, "x", FileType::kFifo, 0644, 0, {}).status(), ENOTDIR);
  EXPECT_ERRNO(fs_->Mknod(999, "x", FileType::kFifo, 0644, 0, {}).status(), ENOENT);
  EXPECT_ERRNO(fs_->Mknod(kRootIno, std::string(256, 'n'), FileType::kFifo, 0644, 0, {}).status(),
               ENAMETOOLONG);
  EXPECT_ERRNO(fs_->Lookup(kRootIno, "x").status(), ENOENT);
  EXPECT_EQ(Stat(kRootIno).size, 1u);
  EXPECT_EQ(static_cast<uint64_t>(Stat(kRootIno).mtime_ns), before);
}

TEST_F(NamespaceTest, SpecialFilesHoldNoData) {
  Ino fifo = Must(fs_->Mknod(kRootIno, "fifo", FileType::kFifo, 0644, 0, {})).ino;
  Ino blk = Must(fs_->Mknod(kRootIno, "blk", FileType::kBlockDevice, 0644, makedev(8, 0), {})).ino;
  Ino f = File(kRootIno, "f");
  uint8_t buf[16] = {1, 2, 3};
  for (Ino ino : {fifo, blk}) {
    EXPECT_ERRNO(fs_->Read(ino, 0, buf).status(), EINVAL);
    EXPECT_ERRNO(fs_->Write(ino, 0, buf).status(), EINVAL);
    EXPECT_ERRNO(fs_->Truncate(ino, 100), EINVAL);
    EXPECT_ERRNO(fs_->Bmap(ino).status(), EINVAL);
    EXPECT_ERRNO(fs_->Clone(f, ino), EINVAL);
    EXPECT_ERRNO(fs_->ReadLink(ino).status(), EINVAL);
    EXPECT_EQ(Stat(ino).size, 0u);
    EXPECT_EQ(Stat(ino).blocks, 0u);
  }
}

TEST_F(NamespaceTest, CheckFindsASpecialFileWithDataAndDecodeRefusesAStrayDeviceNumber) {
  Ino fifo = Must(fs_->Mknod(kRootIno, "fifo", FileType::kFifo, 0644, 0, {})).ino;
  PatchInode(fifo, [](format::Inode* n) { n->size = 10; });
  Result<FsCheckResult> r = fs_->Check();
  ASSERT_OK(r.status());
  std::string all;
  for (const std::string& p : r->problems) all += p + "\n";
  EXPECT_NE(all.find("fifo " + std::to_string(fifo) + ": holds data (size 10"), std::string::npos)
      << all;
  PatchInode(fifo, [](format::Inode* n) { n->size = 0; });
  // A device number on anything but a device node is corruption, named with the inode.
  format::Inode bad{.ino = 7, .type = format::FileType::kFifo, .rdev = 5};
  uint8_t value[format::kInodeValueSize];
  format::EncodeInode(bad, value);
  Result<format::Inode> decoded = format::DecodeInode(7, value);
  EXPECT_ERRNO(decoded.status(), EUCLEAN);
  EXPECT_NE(decoded.status().message().find("inode 7"), std::string::npos);
  bad.type = format::FileType::kCharDevice;
  format::EncodeInode(bad, value);
  EXPECT_EQ(Must(format::DecodeInode(7, value)).rdev, 5u);
}

TEST_F(NamespaceTest, SetAttrWithSizeAndNow) {
  Ino f = File(kRootIno, "f");
  std::vector<uint8_t> data(10000, 5);
  ASSERT_EQ(Must(fs_->Write(f, 0, data)), data.size());
  ASSERT_OK(fs_->SetAttr(f, {.atime_ns = 1, .mtime_ns = 1}));
  int64_t t0 = Now();
  Attr a = Must(fs_->SetAttr(f, {.mode = 0600, .size = 100, .atime_now = true, .mtime_now = true}));
  EXPECT_EQ(a.size, 100u);
  EXPECT_EQ(a.mode, 0600u);
  EXPECT_EQ(a.blocks, 1u);
  EXPECT_GE(a.mtime_ns, t0);
  EXPECT_EQ(a.mtime_ns, a.ctime_ns);  // one reading of the engine's clock
  EXPECT_EQ(a.atime_ns, a.ctime_ns);
  EXPECT_EQ(Must(fs_->SetAttr(f, {.size = 9000})).size, 9000u);  // extends, a hole
  std::vector<uint8_t> back(9000, 1);
  ASSERT_EQ(Must(fs_->Read(f, 0, back)), 9000u);
  EXPECT_EQ(back[99], 5);
  EXPECT_EQ(back[100], 0);
  // A size for a directory fails and changes nothing (the mode neither).
  Ino d = Dir(kRootIno, "d");
  std::string before = Snapshot();
  EXPECT_ERRNO(fs_->SetAttr(d, {.mode = 0700, .size = 0}), EISDIR);
  EXPECT_EQ(Snapshot(), before);
}

// relatime: a read sets atime when it is not after mtime/ctime or is a day old, never ctime.
TEST_F(NamespaceTest, TouchAtimeFollowsRelatime) {
  Ino f = File(kRootIno, "f");
  Attr made = Stat(f);
  EXPECT_TRUE(Must(fs_->TouchAtime(f))) << "a new file's atime equals its mtime";
  Attr touched = Stat(f);
  EXPECT_GT(touched.atime_ns, made.mtime_ns);
  EXPECT_EQ(touched.ctime_ns, made.ctime_ns) << "an atime update changed ctime";
  EXPECT_EQ(touched.mtime_ns, made.mtime_ns);
  EXPECT_FALSE(Must(fs_->TouchAtime(f))) << "atime already after mtime and ctime";
  EXPECT_EQ(Stat(f).atime_ns, touched.atime_ns);
  ASSERT_TRUE(fs_->Write(f, 0, std::vector<uint8_t>{1}).ok());  // mtime moves past atime
  EXPECT_TRUE(Must(fs_->TouchAtime(f)));
  // An atime set in the future is after mtime and ctime and not a day old: left alone.
  const int64_t future = Now() + int64_t{3600} * 1000000000;
  Must(fs_->SetAttr(f, {.atime_ns = future}));
  EXPECT_FALSE(Must(fs_->TouchAtime(f)));
  EXPECT_EQ(Stat(f).atime_ns, future);
  Must(fs_->SetAttr(f, {.atime_ns = 978307200LL * 1000000000}));  // 2001: before ctime
  EXPECT_TRUE(Must(fs_->TouchAtime(f)));
  EXPECT_ERRNO(fs_->TouchAtime(9999), ENOENT);
  Ino d = Dir(kRootIno, "d");
  EXPECT_TRUE(Must(fs_->TouchAtime(d)));
  ASSERT_OK(fs_->Sync());
  std::string image(reinterpret_cast<const char*>(dev_->base()), dev_->size());
  fs_.reset();
  dev_ = device::NewMemoryDevice(image);
  Mount({.read_only = true});
  Attr ro = Stat(f);
  EXPECT_ERRNO(fs_->Write(f, 0, std::vector<uint8_t>{2}), EROFS);
  Must(fs_->TouchAtime(f));  // not an error on a read-only mount: the read must succeed
  EXPECT_EQ(Stat(f).atime_ns, ro.atime_ns);
  ExpectConsistent(fs_.get());
}

TEST_F(NamespaceTest, SetAttr) {
  Ino f = File(kRootIno, "f");
  Attr before = Stat(f);
  int64_t t0 = Now();
  Attr a = Must(fs_->SetAttr(
      f, {.mode = 0104600, .uid = 1000, .gid = 100, .atime_ns = 123, .mtime_ns = -456}));
  EXPECT_EQ(a.mode, 04600u);
  EXPECT_EQ(a.uid, 1000u);
  EXPECT_EQ(a.gid, 100u);
  EXPECT_EQ(a.atime_ns, 123);
  EXPECT_EQ(a.mtime_ns, -456);
  EXPECT_GE(a.ctime_ns, t0);
  EXPECT_EQ(a.btime_ns, before.btime_ns);
  EXPECT_EQ(a.size, before.size);
  EXPECT_EQ(a.nlink, 1u);

  Attr b = Must(fs_->SetAttr(f, {.uid = 7}));  // only what is asked changes
  EXPECT_EQ(b.uid, 7u);
  EXPECT_EQ(b.gid, 100u);
  EXPECT_EQ(b.mode, 04600u);
  EXPECT_EQ(b.mtime_ns, -456);
  EXPECT_ERRNO(fs_->SetAttr(9999, {.uid = 1}), ENOENT);
  Remount();
  Attr c = Stat(f);
  EXPECT_EQ(c.uid, 7u);
  EXPECT_EQ(c.mode, 04600u);
  EXPECT_EQ(c.atime_ns, 123);
}

// ---- Persistence.

TEST_F(NamespaceTest, TreeSurvivesRemount) {
  Ino docs = Dir(kRootIno, "docs");
  Ino src = Dir(kRootIno, "src");
  Ino deep = Dir(Dir(src, "a"), "b");
  Ino readme = File(docs, "README");
  ASSERT_OK(fs_->Link(readme, deep, "readme-link"));
  Link(src, "to-docs", "../docs");
  Link(kRootIno, "abs", "/src/a/b");
  for (int i = 0; i < 50; ++i) File(deep, "f" + std::to_string(i));
  ASSERT_OK(fs_->SetAttr(readme, {.mode = 0600, .uid = 5}));
  ASSERT_OK(fs_->Rename(deep, "f0", docs, "moved"));
  ASSERT_OK(fs_->Unlink(deep, "f1"));
  std::string before = Snapshot();
  Remount();
  EXPECT_EQ(Snapshot(), before);
  EXPECT_EQ(PathIno("/src/to-docs/README"), readme);
  EXPECT_EQ(PathIno("/abs/readme-link"), readme);
  EXPECT_EQ(Stat(readme).nlink, 2u);
  // And it keeps working after the remount.
  Ino more = File(src, "more");
  EXPECT_EQ(PathIno("/src/more"), more);
  ExpectConsistent(fs_.get());
  Remount();
  EXPECT_EQ(PathIno("/src/more"), more);
}

TEST_F(NamespaceTest, GroupCommitSeesItsOwnChanges) {
  FormatAndMount(64 << 20, {.durability = Durability::kGroupCommit, .group_commit_ops = 16});
  Ino d = Dir(kRootIno, "d");
  for (int i = 0; i < 40; ++i) File(d, "f" + std::to_string(i));
  ASSERT_OK(fs_->Rename(d, "f3", kRootIno, "g"));
  EXPECT_ERRNO(fs_->Create(d, "f4", 0644), EEXIST);  // a failure inside an open group
  EXPECT_EQ(Names(d).size(), 39u);
  EXPECT_EQ(PathIno("/g"), Must(fs_->Lookup(kRootIno, "g")).ino);
  std::string before = Snapshot();
  Remount();
  EXPECT_EQ(Snapshot(), before);
}

}  // namespace
}  // namespace daxfs
