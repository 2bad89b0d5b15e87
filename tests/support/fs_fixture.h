// Test support: the filesystem fixture the fs-level and DAX tests share: a device, the
// filesystem formatted and mounted on it (Filesystem::Open), the consistency checker at the end
// of every test, and the small file helpers (create, write, read, size, Bmap). Uses only the
// public API (daxfs/filesystem.h) and the device layer; knows no engine internals.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/random.h"
#include "daxfs/filesystem.h"
#include "device/device.h"

namespace daxfs::testing {

inline std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// `n` random lowercase letters from `seed` (different seeds, different bytes).
inline std::string Pattern(size_t n, uint64_t seed) {
  std::string s(n, '\0');
  base::Random r(seed);
  for (auto& c : s) c = static_cast<char>('a' + r.Uniform(26));
  return s;
}

inline std::string Joined(const std::vector<std::string>& lines) {
  std::string s;
  for (auto& l : lines) s += "\n  " + l;
  return s;
}

class FsFixture : public ::testing::Test {
 protected:
  // Every test ends with the consistency checker (while a filesystem is mounted).
  void TearDown() override {
    if (fs_) ExpectConsistent();
  }

  // A fresh memory device of `device_size` bytes, formatted with `format`, mounted with `mount`.
  void StartOnMemory(uint64_t device_size, const FormatOptions& format = {},
                     const MountOptions& mount = {}) {
    fs_.reset();
    dev_ = device::NewMemoryDevice(device_size);
    Status s = Filesystem::Format(dev_.get(), format);
    ASSERT_TRUE(s.ok()) << s.ToString();
    Mount(mount);
  }
  // Mounts the filesystem on dev_.
  void Mount(const MountOptions& options = {}) {
    Result<std::unique_ptr<Filesystem>> fs = Filesystem::Open(dev_.get(), options);
    ASSERT_TRUE(fs.ok()) << fs.status().ToString();
    fs_ = std::move(*fs);
  }
  void Remount(const MountOptions& options = {}) {
    Status s = fs_->Unmount();
    ASSERT_TRUE(s.ok()) << s.ToString();
    fs_.reset();
    Mount(options);
  }

  FsCheckResult CheckResult() {
    Result<FsCheckResult> r = fs_->Check();
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : FsCheckResult{};
  }
  void ExpectConsistent() {
    Result<FsCheckResult> r = fs_->Check();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(r->ok()) << "inconsistent:" << Joined(r->problems);
  }

  Ino NewFile(const std::string& name = "f", Ino dir = kRootIno) {
    Result<Attr> a = fs_->Create(dir, name, 0644);
    EXPECT_TRUE(a.ok()) << a.status().ToString();
    return a.ok() ? a->ino : 0;
  }
  Ino NewDir(const std::string& name, Ino dir = kRootIno) {
    Result<Attr> a = fs_->Mkdir(dir, name, 0755);
    EXPECT_TRUE(a.ok()) << a.status().ToString();
    return a.ok() ? a->ino : 0;
  }
  void Put(Ino ino, uint64_t offset, const std::string& s) {
    Result<size_t> n = fs_->Write(ino, offset, Bytes(s));
    ASSERT_TRUE(n.ok()) << "write at " << offset << ": " << n.status().ToString();
    ASSERT_EQ(*n, s.size());
  }
  // Up to `length` bytes at `offset` (short at the end of the file).
  std::string Get(Ino ino, uint64_t offset, size_t length) {
    std::string out(length, '?');
    Result<size_t> n = fs_->Read(ino, offset, {reinterpret_cast<uint8_t*>(out.data()), length});
    EXPECT_TRUE(n.ok()) << n.status().ToString();
    out.resize(n.ok() ? *n : 0);
    return out;
  }
  uint64_t Size(Ino ino) { return fs_->GetAttr(ino)->size; }
  std::string GetAll(Ino ino) { return Get(ino, 0, Size(ino)); }
  uint64_t Blocks(Ino ino) { return fs_->GetAttr(ino)->blocks; }
  std::vector<FileExtent> Map(Ino ino) {
    Result<std::vector<FileExtent>> m = fs_->Bmap(ino);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return m.ok() ? *m : std::vector<FileExtent>{};
  }

  std::unique_ptr<device::Device> dev_;
  std::unique_ptr<Filesystem> fs_;
};

}  // namespace daxfs::testing
