// The live DAX mappings of one filesystem (docs/dax.md). A mapping is one reserved address range
// (PROT_NONE, anonymous) into which every segment of its file layout is mapped with MAP_FIXED:
// data from the device file, holes as anonymous zero pages, lost and beyond-EOF pages as
// PROT_NONE. The table keeps each mapping's layout, follows the filesystem's layout changes page
// by page, and keeps the per-file interval index, the trackers and the address directory in step.
//
// Locking: the filesystem lock is taken before the table lock (LayoutChanged and the install of
// Map run under the filesystem lock); nothing here calls into the filesystem with the table lock
// held. Handlers run without the table lock. Handles share the table's state through a weak
// pointer, so a handle may outlive the table (it then only releases its address range).
#include "dax/mapping_table.h"

#include <fmt/core.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "base/log.h"
#include "dax/interval_index.h"
#include "device/device.h"

namespace daxfs::dax {

using fs::MapLayout;
using fs::MapSegment;
using fs::SegmentKind;

namespace {

// Mapping ids are unique in the process (the address directory is process-wide).
std::atomic<uint64_t> next_mapping_id{1};

// Device-backed kinds carry device offsets that must be contiguous to merge.
void Append(MapLayout* layout, const MapSegment& s) {
  if (s.length == 0) return;
  if (!layout->empty()) {
    MapSegment& last = layout->back();
    bool device_fits = last.device_offset == fs::kNoDevice
                           ? s.device_offset == fs::kNoDevice
                           : s.device_offset == last.device_offset + last.length;
    if (last.kind == s.kind && last.file_offset + last.length == s.file_offset &&
        (s.kind == SegmentKind::kZero || s.kind == SegmentKind::kBeyondEof || device_fits)) {
      last.length += s.length;
      return;
    }
  }
  layout->push_back(s);
}

// The part [from, to) of segment `s` (which must contain it).
MapSegment Slice(const MapSegment& s, uint64_t from, uint64_t to) {
  MapSegment out = s;
  out.file_offset = from;
  out.length = to - from;
  if (s.device_offset != fs::kNoDevice)
    out.device_offset = s.device_offset + (from - s.file_offset);
  return out;
}

// Whether the pages need the same thing in the address space: the same device bytes, zero pages,
// or nothing (PROT_NONE, whether lost or beyond EOF).
bool SameBacking(const MapSegment& a, const MapSegment& b) {
  auto none = [](SegmentKind k) { return k == SegmentKind::kLost || k == SegmentKind::kBeyondEof; };
  if (none(a.kind) && none(b.kind)) return true;
  if (a.kind != b.kind) return false;
  return a.kind != SegmentKind::kData || a.device_offset == b.device_offset;
}

Status ErrnoStatus(int err, const std::string& what) {
  return Status::Error(err, fmt::format("{}: {}", what, std::strerror(err)));
}

}  // namespace

// ---- One mapping's state, shared by the table and its handle.

struct MapState {
  uint64_t id = 0;
  Ino ino = 0;
  uint8_t* base = nullptr;
  uint64_t file_offset = 0;
  uint64_t length = 0;  // whole pages
  bool writable = false;
  MappingHandler handler;
  MapLayout layout;      // covers [file_offset, +length); what the address range holds
  size_t slot = 0;       // in the address directory
  bool live = false;     // in the table (index, trackers, directory); false once unmapped or killed
  bool indexed = false;  // in its file's index (false after the file was removed)
  // A layout lease (another process's mapping): no address range here, no directory entry.
  LayoutSink* sink = nullptr;
  LeaseOwner owner;
  int inflight = 0;  // sink calls running outside the table lock
  bool lease() const { return sink != nullptr; }

  TrackedMapping Tracked() const { return {id, ino, base, file_offset, length}; }
  uint8_t* At(uint64_t file_off) const { return base + (file_off - file_offset); }
  std::vector<MapSegment> DataSegments() const {
    std::vector<MapSegment> out;
    for (const MapSegment& s : layout) {
      if (s.kind == SegmentKind::kData) out.push_back(s);
    }
    return out;
  }
};

struct MappingTableState {
  std::mutex mu;
  fs::FsFace* fs = nullptr;
  device::Device* device = nullptr;
  bool alive = true;  // false once the table is destroyed
  size_t limit = AddressDirectory::kMaxLiveMappings;
  std::vector<OwnerTracker*> trackers;
  std::unordered_map<uint64_t, std::shared_ptr<MapState>> live;
  std::unordered_map<Ino, IntervalIndex> files;       // the per-file index of live mappings
  std::atomic<size_t> watched_files{0};               // files.size(), for a lock-free Watches
  std::unordered_map<Ino, size_t> writable_mappings;  // indexed writable mappings per file
  std::condition_variable idle;                       // a lease's inflight reached 0
  size_t leases = 0;
  // Per thread (one operation each): leases recalled (phase 1) and not settled yet (phase 2).
  struct Pending {
    std::vector<std::shared_ptr<MapState>> leases;
    RecallDeadline deadline{};
  };
  std::unordered_map<std::thread::id, Pending> to_settle;

  // Phase 1 for lease `m` whose [from, to) now holds `next`.
  void Recall(const std::shared_ptr<MapState>& m, uint64_t from, uint64_t to,
              const MapLayout& next);
  // Phase 2 for everything recalled so far (called with `lock` held; drops it while waiting).
  void SettleAll(std::unique_lock<std::mutex>& lock);

  // Makes [file_off, +length) of `m` hold what `s` says (s covers exactly that range).
  Status MapPiece(const MapState& m, const MapSegment& s);
  // MapPiece, or on failure PROT_NONE (logged): false when the pages could not get `s`.
  bool MapPieceOrFence(const MapState& m, const MapSegment& s);
  Result<std::shared_ptr<MapState>> Install(Ino ino, uint64_t offset, uint64_t length,
                                            bool writable, MappingHandler handler,
                                            const MapLayout& layout);
  // Re-lays [from, to) of `m` to `next` (segments covering exactly that range).
  // Returns whether any page changed (for a lease: its kind or device bytes).
  bool Relay(MapState* m, uint64_t from, uint64_t to, const MapLayout& next);
  void Index(MapState* m);
  void Unindex(MapState* m);
  // Takes `m` out of the table: trackers, index, directory. Its pages stay as they are.
  void Detach(MapState* m);
  void Release(const std::shared_ptr<MapState>& m);
  void Join(const MapState& m, const std::vector<MapSegment>& segments) {
    if (segments.empty()) return;
    for (OwnerTracker* t : trackers) t->Join(m.Tracked(), segments);
  }
  void Leave(const MapState& m, const std::vector<MapSegment>& segments) {
    if (segments.empty()) return;
    for (OwnerTracker* t : trackers) t->Leave(m.Tracked(), segments);
  }
};

Status MappingTableState::MapPiece(const MapState& m, const MapSegment& s) {
  void* at = m.At(s.file_offset);
  void* got = MAP_FAILED;
  int err = 0;
  switch (s.kind) {
    case SegmentKind::kData: {
      if (s.device_offset == fs::kNoDevice || !device->Contains(s.device_offset, s.length)) {
        return Status::Corruption(
            fmt::format("mapping of inode {}: device range {}+{} is outside the device", m.ino,
                        s.device_offset, s.length));
      }
      int prot = PROT_READ | (m.writable ? PROT_WRITE : 0);
#if defined(MAP_SYNC) && defined(MAP_SHARED_VALIDATE)
      if (device->IsPmem()) {  // stores durable by cache flushes alone, no msync
        got = mmap(at, s.length, prot, MAP_SHARED_VALIDATE | MAP_SYNC | MAP_FIXED, device->Fd(),
                   static_cast<off_t>(s.device_offset));
        err = errno;
        if (got == MAP_FAILED && err != EOPNOTSUPP && err != EINVAL) break;
      }
#endif
      if (got == MAP_FAILED) {
        got = mmap(at, s.length, prot, MAP_SHARED | MAP_FIXED, device->Fd(),
                   static_cast<off_t>(s.device_offset));
        err = errno;
      }
      break;
    }
    case SegmentKind::kZero: {
      // Read-only: the shared zero page. Writable: private zero pages; stores there never
      // reach the file (docs/dax.md).
      int prot = PROT_READ | (m.writable ? PROT_WRITE : 0);
      got =
          mmap(at, s.length, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
      err = errno;
      break;
    }
    case SegmentKind::kLost:
    case SegmentKind::kBeyondEof:
      got = mmap(at, s.length, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED,
                 -1, 0);
      err = errno;
      break;
  }
  if (got == MAP_FAILED) {
    return ErrnoStatus(
        err, fmt::format("mapping file bytes {}+{} of inode {}", s.file_offset, s.length, m.ino));
  }
  return Status::Ok();
}

bool MappingTableState::MapPieceOrFence(const MapState& m, const MapSegment& s) {
  Status st = MapPiece(m, s);
  if (st.ok()) return true;
  base::Log(base::LogLevel::kError, "mapping {}: {} (pages made inaccessible)", m.id,
            st.ToString());
  if (mprotect(m.At(s.file_offset), s.length, PROT_NONE) != 0) {
    base::Log(base::LogLevel::kError, "mapping {}: mprotect failed too: {}", m.id,
              std::strerror(errno));
  }
  return false;
}

void MappingTableState::Index(MapState* m) {
  IntervalIndex& index = files[m->ino];
  if (index.empty()) watched_files.store(files.size(), std::memory_order_relaxed);
  index.Insert(m->file_offset, m->file_offset + m->length, m->id);
  m->indexed = true;
  if (m->writable) ++writable_mappings[m->ino];
}

void MappingTableState::Unindex(MapState* m) {
  if (!m->indexed) return;
  m->indexed = false;
  if (m->writable) {
    auto w = writable_mappings.find(m->ino);
    if (w != writable_mappings.end() && --w->second == 0) writable_mappings.erase(w);
  }
  auto f = files.find(m->ino);
  if (f == files.end()) return;
  f->second.Erase(m->file_offset, m->file_offset + m->length, m->id);
  if (f->second.empty()) {
    files.erase(f);
    watched_files.store(files.size(), std::memory_order_relaxed);
  }
}

Result<std::shared_ptr<MapState>> MappingTableState::Install(Ino ino, uint64_t offset,
                                                             uint64_t length, bool writable,
                                                             MappingHandler handler,
                                                             const MapLayout& layout) {
  std::lock_guard<std::mutex> lock(mu);
  if (!alive) return Status::IoError("map: the mapping table is gone");
  if (live.size() >= limit) {
    return Status::Error(ENOMEM,
                         fmt::format("map: {} mappings are live, the most there may be", limit));
  }
  void* reserved =
      mmap(nullptr, length, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (reserved == MAP_FAILED) {
    return ErrnoStatus(errno, fmt::format("map: reserving {} bytes of address space", length));
  }
  auto m = std::make_shared<MapState>();
  m->id = next_mapping_id.fetch_add(1, std::memory_order_relaxed);
  m->ino = ino;
  m->base = static_cast<uint8_t*>(reserved);
  m->file_offset = offset;
  m->length = length;
  m->writable = writable;
  m->handler = std::move(handler);
  m->layout = layout;
  for (const MapSegment& s : layout) {
    Status st = MapPiece(*m, s);
    if (!st.ok()) {
      munmap(reserved, length);
      return st;
    }
  }
  Result<size_t> slot = AddressDirectory::Register(m->id, ino, m->base, offset, length, layout);
  if (!slot.ok()) {
    munmap(reserved, length);
    return slot.status();
  }
  m->slot = *slot;
  m->live = true;
  Index(m.get());
  Join(*m, m->DataSegments());
  live.emplace(m->id, m);
  return m;
}

bool MappingTableState::Relay(MapState* m, uint64_t from, uint64_t to, const MapLayout& next) {
  bool changed = false;
  std::vector<MapSegment> left, joined;
  MapLayout layout;
  for (const MapSegment& s : m->layout) {  // the part before `from`, as it is
    if (s.file_offset < from)
      Append(&layout, Slice(s, s.file_offset, std::min(from, s.file_offset + s.length)));
  }
  // Walk old and new together over [from, to): pieces where both are one segment each.
  size_t i = 0, j = 0;
  while (i < m->layout.size() && m->layout[i].file_offset + m->layout[i].length <= from) ++i;
  uint64_t pos = from;
  while (pos < to && i < m->layout.size() && j < next.size()) {
    const MapSegment& o = m->layout[i];
    const MapSegment& n = next[j];
    uint64_t end = std::min({to, o.file_offset + o.length, n.file_offset + n.length});
    MapSegment old_piece = Slice(o, pos, end), new_piece = Slice(n, pos, end);
    if (m->lease() ? !(old_piece == new_piece) : !SameBacking(old_piece, new_piece)) {
      changed = true;
      if (old_piece.kind == SegmentKind::kData) left.push_back(old_piece);
      if (!m->lease() && !MapPieceOrFence(*m, new_piece)) {
        new_piece = {pos, end - pos, SegmentKind::kBeyondEof, fs::kNoDevice};
      } else if (new_piece.kind == SegmentKind::kData) {
        joined.push_back(new_piece);
      }
    }
    Append(&layout, new_piece);
    pos = end;
    if (pos == o.file_offset + o.length) ++i;
    if (pos == n.file_offset + n.length) ++j;
  }
  for (const MapSegment& s : m->layout) {  // the part from `to` on, as it is
    uint64_t s_end = s.file_offset + s.length;
    if (s_end > to) Append(&layout, Slice(s, std::max(to, s.file_offset), s_end));
  }
  m->layout = std::move(layout);
  Leave(*m, left);
  Join(*m, joined);
  if (!m->lease()) AddressDirectory::UpdateLayout(m->slot, m->layout);
  return changed;
}

namespace {

Layout ToLayout(const MapLayout& in) {
  Layout out;
  out.reserve(in.size());
  for (const MapSegment& s : in) {
    out.push_back({s.file_offset, s.length, static_cast<LayoutKind>(s.kind), s.device_offset});
  }
  return out;
}

}  // namespace

void MappingTableState::Recall(const std::shared_ptr<MapState>& m, uint64_t from, uint64_t to,
                               const MapLayout& next) {
  MapLayout clipped;
  for (const MapSegment& s : next) {
    uint64_t a = std::max(from, s.file_offset), b = std::min(to, s.file_offset + s.length);
    if (a < b) Append(&clipped, Slice(s, a, b));
  }
  Pending& p = to_settle[std::this_thread::get_id()];
  p.deadline = std::max(p.deadline, m->sink->LayoutChanged(from, to - from, ToLayout(clipped)));
  p.leases.push_back(m);
}

void MappingTableState::SettleAll(std::unique_lock<std::mutex>& lock) {
  auto mine = to_settle.find(std::this_thread::get_id());
  if (mine == to_settle.end()) return;
  std::vector<std::shared_ptr<MapState>> settle = std::move(mine->second.leases);
  RecallDeadline deadline = mine->second.deadline;
  to_settle.erase(mine);
  std::sort(settle.begin(), settle.end());
  settle.erase(std::unique(settle.begin(), settle.end()), settle.end());
  for (auto& m : settle) ++m->inflight;
  lock.unlock();
  for (auto& m : settle) m->sink->Settle(deadline);
  lock.lock();
  for (auto& m : settle) --m->inflight;
  idle.notify_all();
}

void MappingTableState::Detach(MapState* m) {
  if (!m->live) return;
  m->live = false;
  Leave(*m, m->DataSegments());
  Unindex(m);
  if (m->lease()) {
    --leases;
  } else {
    AddressDirectory::Unregister(m->slot);
  }
  live.erase(m->id);
}

void MappingTableState::Release(const std::shared_ptr<MapState>& m) {
  std::lock_guard<std::mutex> lock(mu);
  Detach(m.get());
  munmap(m->base, m->length);  // after it left the directory: the range may be reused at once
}

// ---- The handle.

namespace {

class MappingHandle final : public Mapping {
 public:
  MappingHandle(std::weak_ptr<MappingTableState> table, std::shared_ptr<MapState> state)
      : table_(std::move(table)), state_(std::move(state)) {}
  ~MappingHandle() override {
    if (std::shared_ptr<MappingTableState> t = table_.lock()) {
      t->Release(state_);
    } else {
      munmap(state_->base, state_->length);
    }
  }

  uint8_t* data() const override { return state_->base; }
  uint64_t length() const override { return state_->length; }
  uint64_t id() const override { return state_->id; }
  Ino ino() const override { return state_->ino; }
  uint64_t file_offset() const override { return state_->file_offset; }
  bool writable() const override { return state_->writable; }

  Status Persist(uint64_t offset, uint64_t length) override {
    return FlushRange(offset, length, true);
  }
  Status Flush(uint64_t offset, uint64_t length) override {
    return FlushRange(offset, length, false);
  }
  Status Drain() override {
    std::shared_ptr<MappingTableState> t = table_.lock();
    if (!t) return Gone();
    std::lock_guard<std::mutex> lock(t->mu);
    if (!t->alive || !state_->live) return Gone();
    return t->device->Drain();
  }

 private:
  Status Gone() const {
    return Status::IoError(
        fmt::format("mapping {}: it was killed or its filesystem is gone", state_->id));
  }
  // The device ranges behind [offset, +length) of the mapping (kData pieces only: zero pages of
  // a writable mapping have nowhere to go), flushed, then drained when `drain`.
  Status FlushRange(uint64_t offset, uint64_t length, bool drain) {
    if (offset > state_->length || length > state_->length - offset) {
      return Status::Invalid(fmt::format("mapping {}: [{}, +{}) is outside its {} bytes",
                                         state_->id, offset, length, state_->length));
    }
    std::shared_ptr<MappingTableState> t = table_.lock();
    if (!t) return Gone();
    std::lock_guard<std::mutex> lock(t->mu);
    if (!t->alive || !state_->live) return Gone();
    uint64_t from = state_->file_offset + offset, to = from + length;
    for (const MapSegment& s : state_->layout) {
      if (s.kind != SegmentKind::kData) continue;
      uint64_t a = std::max(from, s.file_offset), b = std::min(to, s.file_offset + s.length);
      if (a < b) RETURN_IF_ERROR(t->device->Flush(s.device_offset + (a - s.file_offset), b - a));
    }
    return drain ? t->device->Drain() : Status::Ok();
  }

  std::weak_ptr<MappingTableState> table_;
  std::shared_ptr<MapState> state_;
};

}  // namespace

// ---- The table.

MappingTable::MappingTable(fs::FsFace* fs) : impl_(std::make_shared<MappingTableState>()) {
  impl_->fs = fs;
  impl_->device = fs->device();
  fs->SetMappingObserver(this);
}

MappingTable::~MappingTable() {
  impl_->fs->SetMappingObserver(nullptr);
  KillAll();
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->alive = false;
  impl_->trackers.clear();
}

void MappingTable::AddTracker(OwnerTracker* tracker) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->trackers.push_back(tracker);
}

void MappingTable::SetMappingLimitForTesting(size_t limit) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->limit = std::min(limit, AddressDirectory::kMaxLiveMappings);
}

Result<std::unique_ptr<Mapping>> MappingTable::Map(Ino ino, uint64_t offset, uint64_t length,
                                                   MapProt prot, MappingHandler handler) {
  if (prot != MapProt::kRead && prot != MapProt::kReadWrite) {
    return Status::Invalid(fmt::format("map: unknown protection {}", static_cast<int>(prot)));
  }
  if (sysconf(_SC_PAGESIZE) != static_cast<long>(fs::kPageBytes)) {
    return Status::NotSupported("map: DAX mappings need 4 KiB pages");
  }
  if (impl_->device->Fd() < 0) {
    return Status::NotSupported("map: the device has no file to map (" + impl_->device->Describe() +
                                ")");
  }
  if (length == 0) return Status::Invalid("map: length 0");
  if (length > ~0ULL - (fs::kPageBytes - 1)) {
    return Status::Invalid(fmt::format("map: length {} is too large", length));
  }
  uint64_t pages = (length + fs::kPageBytes - 1) / fs::kPageBytes * fs::kPageBytes;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->live.size() >= impl_->limit) {
      return Status::Error(
          ENOMEM, fmt::format("map: {} mappings are live, the most there may be", impl_->limit));
    }
  }
  bool writable = prot == MapProt::kReadWrite;
  std::shared_ptr<MapState> made;
  RETURN_IF_ERROR(impl_->fs->PrepareMapping(
      ino, offset, pages, writable, [&](const fs::MapLayout& layout) -> Status {
        Result<std::shared_ptr<MapState>> m =
            impl_->Install(ino, offset, pages, writable, std::move(handler), layout);
        if (!m.ok()) return m.status();
        made = std::move(*m);
        return Status::Ok();
      }));
  return std::unique_ptr<Mapping>(new MappingHandle(impl_, std::move(made)));
}

bool MappingTable::Watches(Ino ino) const {
  if (impl_->watched_files.load(std::memory_order_relaxed) == 0) return false;
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->files.count(ino) != 0;
}

bool MappingTable::HasWritableMappings(Ino ino) const {
  if (impl_->watched_files.load(std::memory_order_relaxed) == 0) return false;
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->writable_mappings.count(ino) != 0;
}

void MappingTable::LayoutChanged(Ino ino, uint64_t offset, uint64_t length,
                                 const fs::MapLayout& layout) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto f = impl_->files.find(ino);
  if (f == impl_->files.end() || length == 0) return;
  uint64_t end = offset + length;
  bool removed = offset == 0 && length >= fs::kWholeFile &&
                 std::all_of(layout.begin(), layout.end(),
                             [](const MapSegment& s) { return s.kind == SegmentKind::kBeyondEof; });
  std::vector<std::shared_ptr<MapState>> hit;
  f->second.ForEachOverlap(offset, end, [&](uint64_t, uint64_t, uint64_t id) {
    auto m = impl_->live.find(id);
    if (m != impl_->live.end()) hit.push_back(m->second);
  });
  for (const std::shared_ptr<MapState>& held : hit) {
    MapState* m = held.get();
    uint64_t from = std::max(offset, m->file_offset);
    uint64_t to = std::min(end, m->file_offset + m->length);
    MapLayout next;
    for (const MapSegment& s : layout) {
      uint64_t a = std::max(from, s.file_offset), b = std::min(to, s.file_offset + s.length);
      if (a < b) Append(&next, Slice(s, a, b));
    }
    uint64_t covered = 0;
    for (const MapSegment& s : next) covered += s.length;
    if (covered != to - from) {  // the filesystem broke its contract: fail safe
      base::Log(base::LogLevel::kError,
                "layout of inode {} [{}, +{}) does not cover the range: mapping {} made "
                "inaccessible there",
                ino, offset, length, m->id);
      next = {{from, to - from, SegmentKind::kBeyondEof, fs::kNoDevice}};
    }
    bool changed = impl_->Relay(m, from, to, next);
    if (m->lease() && changed) impl_->Recall(held, from, to, next);  // phase 1: queued, no wait
    if (removed) impl_->Unindex(m);  // its inode number may come back as another file
  }
}

void MappingTable::LayoutChangesDone() {
  std::unique_lock<std::mutex> lock(impl_->mu);
  impl_->SettleAll(lock);  // phase 2, one deadline for the whole operation
}

std::vector<Victim> MappingTable::MappedPages(Ino ino, uint64_t file_offset,
                                              uint64_t length) const {
  std::vector<Victim> out;
  if (length == 0) return out;
  uint64_t from = file_offset / fs::kPageBytes * fs::kPageBytes;
  uint64_t to = file_offset + std::min<uint64_t>(length, ~0ULL - file_offset);
  to = to > ~0ULL - (fs::kPageBytes - 1)
           ? ~0ULL / fs::kPageBytes * fs::kPageBytes
           : (to + fs::kPageBytes - 1) / fs::kPageBytes * fs::kPageBytes;
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto f = impl_->files.find(ino);
  if (f == impl_->files.end()) return out;
  f->second.ForEachOverlap(from, to, [&](uint64_t, uint64_t, uint64_t id) {
    auto it = impl_->live.find(id);
    if (it == impl_->live.end()) return;
    const MapState& m = *it->second;
    for (const MapSegment& s : m.layout) {
      if (s.kind != SegmentKind::kData) continue;
      uint64_t a = std::max(from, s.file_offset), b = std::min(to, s.file_offset + s.length);
      if (a >= b) continue;
      out.push_back({.mapping_id = m.id,
                     .address = m.At(a),
                     .length = b - a,
                     .ino = m.ino,
                     .file_offset = a,
                     .device_offset = s.device_offset + (a - s.file_offset)});
    }
  });
  return out;
}

size_t MappingTable::Notify(const std::vector<MappingNotice>& notices) {
  std::vector<std::pair<MappingHandler, const MappingNotice*>> calls;
  std::vector<std::pair<std::shared_ptr<MapState>, const MappingNotice*>> leases;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    for (const MappingNotice& n : notices) {
      auto it = impl_->live.find(n.mapping_id);
      if (it == impl_->live.end()) continue;
      if (it->second->lease()) {
        ++it->second->inflight;
        leases.emplace_back(it->second, &n);
      } else if (it->second->handler) {
        calls.emplace_back(it->second->handler, &n);
      }
    }
  }
  for (auto& call : calls) call.first(*call.second);
  for (auto& call : leases) {
    const MapState& m = *call.first;
    const MappingNotice& n = *call.second;
    uint64_t offset = n.file_offset >= m.file_offset ? n.file_offset - m.file_offset : 0;
    m.sink->Failure({.lease_id = m.id,
                     .offset = offset,
                     .length = n.length,
                     .file_offset = n.file_offset,
                     .device_offset = n.device_offset,
                     .action_required = n.action_required,
                     .removal = n.removal,
                     .consumed = n.consumed});
  }
  if (!leases.empty()) {
    std::lock_guard<std::mutex> lock(impl_->mu);
    for (auto& call : leases) --call.first->inflight;
    impl_->idle.notify_all();
  }
  return calls.size() + leases.size();
}

std::vector<MappingNotice> MappingTable::RemovalNotices() const {
  std::vector<MappingNotice> out;
  std::lock_guard<std::mutex> lock(impl_->mu);
  for (const auto& [id, m] : impl_->live) {
    out.push_back({.mapping_id = id,
                   .address = m->base,
                   .length = m->length,
                   .ino = m->ino,
                   .file_offset = m->file_offset,
                   .device_offset = fs::kNoDevice,
                   .action_required = false,
                   .removal = true});
  }
  std::sort(out.begin(), out.end(), [](const MappingNotice& a, const MappingNotice& b) {
    return a.mapping_id < b.mapping_id;
  });
  return out;
}

void MappingTable::KillAll() {
  std::unique_lock<std::mutex> lock(impl_->mu);
  std::vector<std::shared_ptr<MapState>> all;
  for (auto& entry : impl_->live) all.push_back(entry.second);
  for (const std::shared_ptr<MapState>& m : all) {
    MapState* s = m.get();
    impl_->Detach(s);
    if (s->lease()) {  // the client's pages become inaccessible too: a recall to beyond EOF
      MapLayout gone = {{s->file_offset, s->length, SegmentKind::kBeyondEof, fs::kNoDevice}};
      impl_->Recall(m, s->file_offset, s->file_offset + s->length, gone);
      s->layout = gone;
      continue;
    }
    // Anonymous PROT_NONE over the whole range: no page keeps the device file mapped.
    if (mmap(s->base, s->length, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED,
             -1, 0) == MAP_FAILED) {
      base::Log(base::LogLevel::kError, "killing mapping {}: {}", s->id, std::strerror(errno));
      mprotect(s->base, s->length, PROT_NONE);
    }
    s->layout = {{s->file_offset, s->length, SegmentKind::kBeyondEof, fs::kNoDevice}};
  }
  impl_->SettleAll(lock);
}

Status MappingTable::Fence(uint64_t mapping_id, uint8_t* address, uint64_t length) {
  std::unique_lock<std::mutex> lock(impl_->mu);
  auto it = impl_->live.find(mapping_id);
  if (it == impl_->live.end()) {
    return Status::NotFound(fmt::format("fence: no live mapping {}", mapping_id));
  }
  MapState* m = it->second.get();
  if (address < m->base || length == 0 || length > m->length ||
      static_cast<uint64_t>(address - m->base) > m->length - length ||
      (address - m->base) % fs::kPageBytes != 0 || length % fs::kPageBytes != 0) {
    return Status::Invalid(fmt::format("fence: {}+{} is not whole pages of mapping {}",
                                       static_cast<void*>(address), length, mapping_id));
  }
  uint64_t from = m->file_offset + static_cast<uint64_t>(address - m->base), to = from + length;
  MapLayout next;
  for (const MapSegment& s : m->layout) {
    uint64_t a = std::max(from, s.file_offset), b = std::min(to, s.file_offset + s.length);
    if (a >= b) continue;
    MapSegment piece = Slice(s, a, b);
    if (piece.kind != SegmentKind::kBeyondEof) piece.kind = SegmentKind::kLost;
    Append(&next, piece);
  }
  if (impl_->Relay(m, from, to, next) && m->lease()) {
    impl_->Recall(it->second, from, to, next);
    impl_->SettleAll(lock);
  }
  return Status::Ok();
}

Result<MappingTable::LeaseInfo> MappingTable::MapLease(Ino ino, uint64_t offset, uint64_t length,
                                                       MapProt prot, const LeaseOwner& owner,
                                                       LayoutSink* sink) {
  if (prot != MapProt::kRead && prot != MapProt::kReadWrite) {
    return Status::Invalid(fmt::format("map: unknown protection {}", static_cast<int>(prot)));
  }
  if (sink == nullptr) return Status::Invalid("map: a lease needs a sink");
  if (length == 0) return Status::Invalid("map: length 0");
  if (length > (uint64_t{1} << 36)) {
    return Status::Error(
        ENOMEM, fmt::format("map: {} bytes is more than a lease may map (64 GiB)", length));
  }
  uint64_t pages = (length + fs::kPageBytes - 1) / fs::kPageBytes * fs::kPageBytes;
  bool writable = prot == MapProt::kReadWrite;
  LeaseInfo info;
  RETURN_IF_ERROR(impl_->fs->PrepareMapping(
      ino, offset, pages, writable, [&](const fs::MapLayout& layout) -> Status {
        std::lock_guard<std::mutex> lock(impl_->mu);
        if (!impl_->alive) return Status::IoError("map: the mapping table is gone");
        if (impl_->live.size() >= impl_->limit) {
          return Status::Error(
              ENOMEM,
              fmt::format("map: {} mappings are live, the most there may be", impl_->limit));
        }
        auto m = std::make_shared<MapState>();
        m->id = next_mapping_id.fetch_add(1, std::memory_order_relaxed);
        m->ino = ino;
        m->base = reinterpret_cast<uint8_t*>(static_cast<uintptr_t>(kLeaseBase));
        m->file_offset = offset;
        m->length = pages;
        m->writable = writable;
        m->layout = layout;
        m->sink = sink;
        m->owner = owner;
        m->live = true;
        impl_->Index(m.get());
        impl_->Join(*m, m->DataSegments());
        impl_->live.emplace(m->id, m);
        ++impl_->leases;
        info.id = m->id;
        info.initial_layout = ToLayout(layout);
        return Status::Ok();
      }));
  return info;
}

void MappingTable::ReleaseLease(uint64_t id) {
  std::unique_lock<std::mutex> lock(impl_->mu);
  std::shared_ptr<MapState> m;
  auto it = impl_->live.find(id);
  if (it != impl_->live.end()) {
    m = it->second;
    impl_->Detach(m.get());
  } else {
    for (auto& pending : impl_->to_settle) {  // killed (KillAll) and not settled yet
      for (auto& s : pending.second.leases) {
        if (s->id == id) m = s;
      }
    }
  }
  if (!m) return;
  for (auto& pending : impl_->to_settle) {  // a released lease is never called again
    auto& l = pending.second.leases;
    l.erase(std::remove(l.begin(), l.end(), m), l.end());
  }
  impl_->idle.wait(lock, [&] { return m->inflight == 0; });
}

Result<AddressInfo> MappingTable::LeasePage(uint64_t id, uint64_t offset) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->live.find(id);
  if (it == impl_->live.end() || !it->second->lease()) {
    return Status::NotFound(fmt::format("no live lease {}", id));
  }
  const MapState& m = *it->second;
  if (offset >= m.length) {
    return Status::Invalid(
        fmt::format("lease {}: offset {} is outside its {} bytes", id, offset, m.length));
  }
  uint64_t page = offset / fs::kPageBytes * fs::kPageBytes;
  AddressInfo info{.mapping_id = id,
                   .ino = m.ino,
                   .page = m.base + page,
                   .file_offset = m.file_offset + page,
                   .device_offset = fs::kNoDevice,
                   .kind = SegmentKind::kBeyondEof};
  for (const MapSegment& s : m.layout) {
    if (info.file_offset < s.file_offset || info.file_offset >= s.file_offset + s.length) continue;
    info.kind = s.kind;
    if (s.device_offset != fs::kNoDevice)
      info.device_offset = s.device_offset + (info.file_offset - s.file_offset);
  }
  return info;
}

void MappingTable::ResolveNotices(std::vector<MappingNotice>* notices) const {
  const int32_t self_pid = static_cast<int32_t>(getpid());
  const uint32_t self_uid = static_cast<uint32_t>(getuid());
  std::lock_guard<std::mutex> lock(impl_->mu);
  for (MappingNotice& n : *notices) {
    auto it = impl_->live.find(n.mapping_id);
    if (it == impl_->live.end() || !it->second->lease()) {
      n.pid = self_pid;
      n.uid = self_uid;
      continue;
    }
    const MapState& m = *it->second;
    uint64_t offset = n.file_offset >= m.file_offset ? n.file_offset - m.file_offset : 0;
    uint64_t client = m.sink->ClientAddress();
    n.address = reinterpret_cast<uint8_t*>(static_cast<uintptr_t>(client + offset));
    n.pid = static_cast<int32_t>(m.owner.pid);
    n.uid = static_cast<uint32_t>(m.owner.uid);
    n.remote = true;
  }
}

size_t MappingTable::live_leases() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->leases;
}

uint64_t MappingTable::live_mappings() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->live.size();
}

std::vector<TrackedMapping> MappingTable::LiveMappings() const {
  std::vector<TrackedMapping> out;
  std::lock_guard<std::mutex> lock(impl_->mu);
  for (const auto& [id, m] : impl_->live) out.push_back(m->Tracked());
  std::sort(out.begin(), out.end(),
            [](const TrackedMapping& a, const TrackedMapping& b) { return a.id < b.id; });
  return out;
}

}  // namespace daxfs::dax
