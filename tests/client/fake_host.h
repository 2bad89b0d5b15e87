// Test support: a scripted daxfs::LayoutHost over a /dev/shm "device" file. Files are page lists
// (data at a device offset, zero, lost, past EOF) the test sets; changing them recalls every
// overlapping lease under the host's "filesystem lock" in the two phases the engine must use
// (daxfs::RecallLayouts: every sink's LayoutChanged, then every Settle with one deadline);
// failures are injected by device range. Knows nothing of the server's internals.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "daxfs/layout.h"

namespace daxfs::testing {

inline constexpr uint64_t kPage = 4096;

struct FakePage {
  LayoutKind kind = LayoutKind::kZero;
  uint64_t device_offset = kNoDeviceOffset;
};

struct FakeFault {
  uint64_t lease_id = 0;
  pid_t pid = 0;
  uint64_t offset = 0;
  int code = 0;
  bool fence_trap = false;
};

class FakeHost final : public LayoutHost {
 public:
  // `device_path`: an existing file (the device).
  explicit FakeHost(std::string device_path) : path_(std::move(device_path)) {
    fd_ = open(path_.c_str(), O_RDWR | O_CLOEXEC);
    struct stat st;
    fstat(fd_, &st);
    size_ = static_cast<uint64_t>(st.st_size);
    AddInode(kRootIno, FileType::kDirectory, 0755, 0, 0, "");
  }
  ~FakeHost() override { close(fd_); }

  // ---- scripting the namespace -------------------------------------------------------------
  Ino AddDir(Ino parent, const std::string& name, uint32_t mode = 0755, uint32_t uid = 0,
             uint32_t gid = 0) {
    std::lock_guard<std::mutex> lock(fs_mu_);
    Ino ino = next_ino_++;
    AddInode(ino, FileType::kDirectory, mode, uid, gid, "");
    inodes_[parent].children[name] = ino;
    return ino;
  }
  // A regular file of `pages` pages, all zero until SetPages.
  Ino AddFile(Ino parent, const std::string& name, uint64_t pages, uint32_t mode = 0644,
              uint32_t uid = 0, uint32_t gid = 0) {
    std::lock_guard<std::mutex> lock(fs_mu_);
    Ino ino = next_ino_++;
    AddInode(ino, FileType::kRegular, mode, uid, gid, "");
    inodes_[ino].pages.resize(pages);
    inodes_[ino].attr.size = pages * kPage;
    inodes_[parent].children[name] = ino;
    return ino;
  }
  Ino AddSymlink(Ino parent, const std::string& name, const std::string& target) {
    std::lock_guard<std::mutex> lock(fs_mu_);
    Ino ino = next_ino_++;
    AddInode(ino, FileType::kSymlink, 0777, 0, 0, target);
    inodes_[parent].children[name] = ino;
    return ino;
  }
  void SetReadOnly(bool ro) { read_only_ = ro; }
  // Records a bad device range without routing it (for daxfs errors).
  void AddBad(uint64_t offset, uint64_t length) {
    std::lock_guard<std::mutex> lock(fs_mu_);
    bad_.push_back({offset, length});
  }

  // Sets pages [first, +count) of `ino` (data: consecutive device pages from device_offset;
  // kBeyondEof also shrinks the size) and recalls every overlapping lease before returning.
  void SetPages(Ino ino, uint64_t first, uint64_t count, LayoutKind kind,
                uint64_t device_offset = kNoDeviceOffset) {
    std::lock_guard<std::mutex> lock(fs_mu_);
    std::vector<LeaseChange> changes;
    SetPagesLocked(ino, first, count, kind, device_offset, &changes);
    RecallLayouts(changes);
  }

  // Sets pages [first, +count) of `ino` to fn(page index) and recalls the range once.
  void Rewrite(Ino ino, uint64_t first, uint64_t count,
               const std::function<FakePage(uint64_t)>& fn) {
    std::lock_guard<std::mutex> lock(fs_mu_);
    Inode& in = inodes_[ino];
    for (uint64_t i = first; i < first + count; ++i) in.pages[i] = fn(i);
    std::vector<LeaseChange> changes;
    CollectLocked(ino, first * kPage, count * kPage, &changes);
    RecallLayouts(changes);
  }
  // One operation over several files: every (file, first page, count) set to data at
  // consecutive device pages from its device offset, recalled together (one RecallLayouts).
  struct Move {
    Ino ino;
    uint64_t first, count, device_offset;
  };
  void MoveMany(const std::vector<Move>& moves) {
    std::lock_guard<std::mutex> lock(fs_mu_);
    std::vector<LeaseChange> changes;
    for (const Move& m : moves) {
      SetPagesLocked(m.ino, m.first, m.count, LayoutKind::kData, m.device_offset, &changes);
    }
    RecallLayouts(changes);
  }

  // The engine's failure routing, simplified: every page of every file backed by the device
  // range becomes kLost (leases recalled), then every lease piece is told. Returns the notices.
  std::vector<LeaseNotice> Fail(uint64_t offset, uint64_t length, bool action_required = false) {
    std::lock_guard<std::mutex> lock(fs_mu_);
    return FailLocked(offset, length, action_required, nullptr);
  }

  // ---- what happened -----------------------------------------------------------------------
  size_t live_leases() {
    std::lock_guard<std::mutex> lock(state_mu_);
    return leases_.size();
  }
  size_t leases_of(pid_t pid);
  std::vector<FakeFault> faults() {
    std::lock_guard<std::mutex> lock(state_mu_);
    return faults_;
  }
  std::vector<uint64_t> client_addresses(Ino ino);
  // Waits (at most 30 s, a guard against hangs, not a timing assumption) until `pred` holds.
  // `pred` runs without the host's locks; a change of leases or faults between two of its runs
  // is never missed (each change bumps a counter under the lock).
  bool WaitUntil(const std::function<bool()>& pred) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    std::unique_lock<std::mutex> lock(state_mu_);
    for (;;) {
      const uint64_t seen = changes_;
      lock.unlock();
      const bool ok = pred();
      lock.lock();
      if (ok) return true;
      if (!state_cv_.wait_until(lock, deadline, [&] { return changes_ != seen; })) return false;
    }
  }
  void Poke() {
    std::lock_guard<std::mutex> lock(state_mu_);
    ChangedLocked();
  }

  // ---- LayoutHost -------------------------------------------------------------------------
  HostDevice device() const override {
    struct stat st;
    fstat(fd_, &st);
    return {path_, size_, 4096, false, st.st_uid, st.st_gid, st.st_mode & 07777};
  }
  Result<int> OpenDeviceFd(bool writable) override {
    int fd = writable ? dup(fd_) : open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Status::Error(errno, "device fd");
    return fd;
  }
  Result<Attr> GetAttr(Ino ino) override {
    std::lock_guard<std::mutex> lock(fs_mu_);
    auto it = inodes_.find(ino);
    if (it == inodes_.end()) return Status::NotFound("no inode " + std::to_string(ino));
    return it->second.attr;
  }
  Result<Attr> Lookup(Ino dir, std::string_view name) override {
    std::lock_guard<std::mutex> lock(fs_mu_);
    auto it = inodes_.find(dir);
    if (it == inodes_.end()) return Status::NotFound("no inode");
    auto c = it->second.children.find(std::string(name));
    if (c == it->second.children.end()) {
      return Status::NotFound(std::string(name) + ": No such file or directory");
    }
    return inodes_[c->second].attr;
  }
  Result<std::string> ReadLink(Ino ino) override {
    std::lock_guard<std::mutex> lock(fs_mu_);
    return inodes_[ino].target;
  }
  Result<std::vector<FileExtent>> Bmap(Ino ino) override {
    std::lock_guard<std::mutex> lock(fs_mu_);
    std::vector<FileExtent> out;
    const auto& pages = inodes_[ino].pages;
    for (uint64_t i = 0; i < pages.size(); ++i) {
      if (pages[i].kind == LayoutKind::kData || pages[i].kind == LayoutKind::kLost) {
        out.push_back({i * kPage, pages[i].device_offset, kPage, false, false});
      }
    }
    return out;
  }
  Result<std::unique_ptr<LayoutLease>> MapLayout(Ino ino, uint64_t offset, uint64_t length,
                                                 MapProt prot, const LeaseOwner& owner,
                                                 LayoutSink* sink) override;
  Result<FailureReport> InjectError(uint64_t offset, uint64_t length) override {
    std::lock_guard<std::mutex> lock(fs_mu_);
    FailureReport report;
    report.offset = offset;
    report.length = length;
    report.flags = kFailureSimulated;
    FailLocked(offset, length, false, &report);
    return report;
  }
  Result<MediaErrorList> MediaErrors() override {
    std::lock_guard<std::mutex> lock(fs_mu_);
    MediaErrorList list;
    list.bad = bad_;
    return list;
  }
  HostStatus GetStatus() override { return {read_only_, live_leases(), 0}; }

 private:
  class Lease;
  struct Inode {
    Attr attr;
    std::map<std::string, Ino> children;
    std::string target;
    std::vector<FakePage> pages;
  };

  void AddInode(Ino ino, FileType type, uint32_t mode, uint32_t uid, uint32_t gid,
                std::string target) {
    Inode& in = inodes_[ino];
    in.attr.ino = ino;
    in.attr.type = type;
    in.attr.mode = mode;
    in.attr.uid = uid;
    in.attr.gid = gid;
    in.attr.nlink = 1;
    in.target = std::move(target);
  }

  Layout LayoutOf(const Inode& in, uint64_t offset, uint64_t length) const {
    Layout out;
    for (uint64_t at = offset; at < offset + length; at += kPage) {
      const uint64_t i = at / kPage;
      FakePage p = i < in.pages.size() ? in.pages[i] : FakePage{LayoutKind::kBeyondEof};
      if (!out.empty() && out.back().kind == p.kind &&
          (p.kind != LayoutKind::kData ||
           out.back().device_offset + out.back().length == p.device_offset)) {
        out.back().length += kPage;
        continue;
      }
      out.push_back({at, kPage, p.kind, p.device_offset});
    }
    return out;
  }

  // Changes pages and adds the overlapping leases' parts to `changes` (recalled by the caller).
  void SetPagesLocked(Ino ino, uint64_t first, uint64_t count, LayoutKind kind,
                      uint64_t device_offset, std::vector<LeaseChange>* changes);
  void CollectLocked(Ino ino, uint64_t offset, uint64_t length, std::vector<LeaseChange>* changes);
  std::vector<LeaseNotice> FailLocked(uint64_t offset, uint64_t length, bool action_required,
                                      FailureReport* report);

  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
  bool read_only_ = false;

  std::mutex fs_mu_;  // the "filesystem lock": sink calls happen under it
  std::map<Ino, Inode> inodes_;
  Ino next_ino_ = 2;
  std::vector<DeviceRange> bad_;

  std::mutex state_mu_;  // leases and faults
  std::condition_variable state_cv_;
  uint64_t changes_ = 0;  // bumped by every change WaitUntil may wait for
  void ChangedLocked() {
    ++changes_;
    state_cv_.notify_all();
  }
  std::set<Lease*> leases_;
  std::vector<FakeFault> faults_;
  uint64_t next_lease_ = 1;
};

class FakeHost::Lease final : public LayoutLease {
 public:
  Lease(FakeHost* host, uint64_t id, Ino ino, uint64_t offset, uint64_t length, bool writable,
        LeaseOwner owner, LayoutSink* sink, Layout layout)
      : owner(owner),
        sink(sink),
        ino_(ino),
        host_(host),
        id_(id),
        offset_(offset),
        length_(length),
        writable_(writable),
        layout_(std::move(layout)) {}
  ~Lease() override {
    // Sink calls happen under the filesystem lock: taking it waits for one in flight.
    std::lock_guard<std::mutex> fs(host_->fs_mu_);
    std::lock_guard<std::mutex> lock(host_->state_mu_);
    host_->leases_.erase(this);
    host_->ChangedLocked();
  }
  uint64_t id() const override { return id_; }
  Ino ino() const override { return ino_; }
  uint64_t file_offset() const override { return offset_; }
  uint64_t length() const override { return length_; }
  bool writable() const override { return writable_; }
  const Layout& initial_layout() const override { return layout_; }
  Status ReportFault(uint64_t offset, int si_code, int address_lsb, bool fence_trap) override {
    if (offset >= length_) return Status::Invalid("fault outside the lease");
    // The engine routes a report under the filesystem lock; so does the fake.
    std::lock_guard<std::mutex> fs(host_->fs_mu_);
    std::lock_guard<std::mutex> lock(host_->state_mu_);
    host_->faults_.push_back({id_, owner.pid, offset, si_code, fence_trap});
    host_->ChangedLocked();
    return Status::Ok();
  }

  LeaseOwner owner;
  LayoutSink* sink;
  Ino ino_;

 private:
  FakeHost* host_;
  uint64_t id_;
  uint64_t offset_;
  uint64_t length_;
  bool writable_;
  Layout layout_;
};

inline size_t FakeHost::leases_of(pid_t pid) {
  std::lock_guard<std::mutex> lock(state_mu_);
  size_t n = 0;
  for (auto* l : leases_) n += l->owner.pid == pid ? 1 : 0;
  return n;
}

inline std::vector<uint64_t> FakeHost::client_addresses(Ino ino) {
  std::lock_guard<std::mutex> lock(state_mu_);
  std::vector<uint64_t> out;
  for (auto* l : leases_) {
    if (l->ino_ == ino) out.push_back(l->sink->ClientAddress());
  }
  return out;
}

inline Result<std::unique_ptr<LayoutLease>> FakeHost::MapLayout(Ino ino, uint64_t offset,
                                                                uint64_t length, MapProt prot,
                                                                const LeaseOwner& owner,
                                                                LayoutSink* sink) {
  std::lock_guard<std::mutex> lock(fs_mu_);
  auto it = inodes_.find(ino);
  if (it == inodes_.end()) return Status::NotFound("no inode " + std::to_string(ino));
  const Inode& in = it->second;
  if (in.attr.type == FileType::kDirectory) return Status::Error(EISDIR, "a directory");
  if (in.attr.type != FileType::kRegular) return Status::Invalid("not a regular file");
  const uint64_t limit = in.pages.size() * kPage;
  length = (length + kPage - 1) / kPage * kPage;
  if (offset % kPage != 0 || length == 0 || offset > limit || length > limit - offset) {
    return Status::Invalid("range [" + std::to_string(offset) + ", +" + std::to_string(length) +
                           ") is not block-aligned inside the file (" + std::to_string(limit) +
                           " bytes can be mapped)");
  }
  if (prot == MapProt::kReadWrite && read_only_) return Status::ReadOnly("read-only filesystem");
  std::lock_guard<std::mutex> state(state_mu_);
  auto lease =
      std::make_unique<Lease>(this, next_lease_++, ino, offset, length, prot == MapProt::kReadWrite,
                              owner, sink, LayoutOf(in, offset, length));
  {
    leases_.insert(lease.get());
    ChangedLocked();
  }
  return std::unique_ptr<LayoutLease>(std::move(lease));
}

inline void FakeHost::SetPagesLocked(Ino ino, uint64_t first, uint64_t count, LayoutKind kind,
                                     uint64_t device_offset, std::vector<LeaseChange>* changes) {
  Inode& in = inodes_[ino];
  if (in.pages.size() < first + count) in.pages.resize(first + count);
  for (uint64_t i = 0; i < count; ++i) {
    in.pages[first + i] = {
        kind, device_offset == kNoDeviceOffset ? kNoDeviceOffset : device_offset + i * kPage};
  }
  CollectLocked(ino, first * kPage, count * kPage, changes);
}

inline void FakeHost::CollectLocked(Ino ino, uint64_t lo, uint64_t length,
                                    std::vector<LeaseChange>* changes) {
  const Inode& in = inodes_[ino];
  const uint64_t hi = lo + length;
  std::vector<Lease*> leases;
  {
    std::lock_guard<std::mutex> state(state_mu_);
    for (Lease* l : leases_) {
      if (l->ino_ == ino) leases.push_back(l);
    }
  }
  for (Lease* l : leases) {
    const uint64_t a = std::max(lo, l->file_offset());
    const uint64_t b = std::min(hi, l->file_offset() + l->length());
    if (a >= b) continue;
    changes->push_back({l->sink, a, b - a, LayoutOf(in, a, b - a)});
  }
}

inline std::vector<LeaseNotice> FakeHost::FailLocked(uint64_t offset, uint64_t length,
                                                     bool action_required, FailureReport* report) {
  offset = offset / kPage * kPage;
  length = (length + kPage - 1) / kPage * kPage;
  bad_.push_back({offset, length});
  struct Hit {
    Ino ino;
    uint64_t page;
    uint64_t device_offset;
  };
  std::vector<Hit> hits;
  for (auto& [ino, in] : inodes_) {
    for (uint64_t i = 0; i < in.pages.size(); ++i) {
      const FakePage& p = in.pages[i];
      if (p.kind == LayoutKind::kData && p.device_offset >= offset &&
          p.device_offset < offset + length) {
        hits.push_back({ino, i, p.device_offset});
      }
    }
  }
  std::vector<LeaseNotice> notices;
  std::vector<std::pair<Lease*, LeaseNotice>> tell;
  {
    std::lock_guard<std::mutex> state(state_mu_);
    for (const Hit& h : hits) {
      for (Lease* l : leases_) {
        const uint64_t fo = h.page * kPage;
        if (l->ino_ != h.ino || fo < l->file_offset() || fo >= l->file_offset() + l->length()) {
          continue;
        }
        LeaseNotice n;
        n.lease_id = l->id();
        n.offset = fo - l->file_offset();
        n.length = kPage;
        n.file_offset = fo;
        n.device_offset = h.device_offset;
        n.action_required = action_required;
        tell.push_back({l, n});
      }
    }
  }
  std::vector<LeaseChange> changes;
  for (const Hit& h : hits) {
    if (report != nullptr) {
      report->media.owners.push_back({h.ino, "", h.page * kPage, kPage, h.device_offset, false});
    }
    SetPagesLocked(h.ino, h.page, 1, LayoutKind::kLost, h.device_offset, &changes);
  }
  RecallLayouts(changes);
  for (auto& [l, n] : tell) {
    l->sink->Failure(n);
    notices.push_back(n);
    if (report != nullptr) {
      MappingNotice mn;
      mn.address = reinterpret_cast<uint8_t*>(l->sink->ClientAddress() + n.offset);
      mn.length = n.length;
      mn.file_offset = n.file_offset;
      mn.device_offset = n.device_offset;
      report->notices.push_back(mn);
    }
  }
  return notices;
}

}  // namespace daxfs::testing
