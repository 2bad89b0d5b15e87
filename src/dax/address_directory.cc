// The address directory: a fixed array of slots, each an atomic pointer to an immutable entry
// (mapping bounds + a copy of its layout). Knows nothing of signals or of mapping tables.
//
// Invariants:
//  - Readers (Lookup, possibly inside a signal handler) only load atomics and read immutable
//    entries; they never lock or allocate.
//  - An entry, once published in a slot, is never written. UpdateLayout publishes a new entry
//    and retires the old one; Unregister publishes null and retires the old one.
//  - A retired entry is freed only when a writer, after unpublishing it, sees no reader inside
//    Lookup (readers_ == 0, all accesses sequentially consistent). A reader that could still
//    hold the old pointer incremented readers_ before loading the slot, so it is counted; a
//    reader that increments later loads the slot after the unpublish and sees the new value.
//    Retired entries that could not be freed wait for the next writer call.
#include "dax/address_directory.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

namespace daxfs::dax {
namespace {


struct Entry {
  uint64_t mapping_id;
  Ino ino;
  uintptr_t base;
  uint64_t file_offset;
  uint64_t length;
  std::vector<fs::MapSegment> segments;  // file order, immutable once published
};

// Reader-visible state: constant-initialised, so a signal handler never races a constructor.
constinit std::atomic<const Entry*> g_slots[AddressDirectory::kMaxLiveMappings]{};
constinit std::atomic<size_t> g_high_water{0};  // slots [0, g_high_water) may be in use
constinit std::atomic<int64_t> g_readers{0};    // threads (or handlers) inside Lookup

// Writer-only state, behind the mutex.
struct Writers {
  std::mutex mu;
  std::vector<bool> used = std::vector<bool>(AddressDirectory::kMaxLiveMappings, false);
  size_t next_free_hint = 0;
  std::vector<std::unique_ptr<const Entry>> retired;
};
Writers& writers() {
  static Writers* w = new Writers();  // never destroyed: mappings may outlive static teardown
  return *w;
}

void RetireLocked(Writers& w, const Entry* old) {
  if (old != nullptr) w.retired.emplace_back(old);
  if (!w.retired.empty() && g_readers.load(std::memory_order_seq_cst) == 0) w.retired.clear();
}

// Binary search for the segment holding `file_offset`; null if none does.
const fs::MapSegment* FindSegment(const Entry& e, uint64_t file_offset) {
  const fs::MapSegment* first = e.segments.data();
  size_t n = e.segments.size();
  // Last segment with file_offset <= target.
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (first[mid].file_offset <= file_offset) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (lo == 0) return nullptr;
  const fs::MapSegment* s = &first[lo - 1];
  return file_offset - s->file_offset < s->length ? s : nullptr;
}

bool LayoutCovers(uint64_t file_offset, uint64_t length, const fs::MapLayout& layout) {
  uint64_t at = file_offset;
  for (const fs::MapSegment& s : layout) {
    if (s.file_offset != at || s.length == 0 || s.length % fs::kPageBytes != 0) return false;
    at += s.length;
  }
  return at == file_offset + length;
}

}  // namespace

Result<size_t> AddressDirectory::Register(uint64_t mapping_id, Ino ino, uint8_t* base,
                                          uint64_t file_offset, uint64_t length,
                                          const fs::MapLayout& layout) {
  if (base == nullptr || reinterpret_cast<uintptr_t>(base) % fs::kPageBytes != 0 || length == 0 ||
      length % fs::kPageBytes != 0 || file_offset % fs::kPageBytes != 0 ||
      !LayoutCovers(file_offset, length, layout)) {
    return Status::Invalid("address directory: mapping range or layout is malformed");
  }
  auto entry = std::make_unique<Entry>(Entry{mapping_id, ino, reinterpret_cast<uintptr_t>(base),
                                             file_offset, length, layout});
  Writers& w = writers();
  std::lock_guard<std::mutex> lock(w.mu);
  size_t slot = kMaxLiveMappings;
  for (size_t i = 0; i < kMaxLiveMappings; ++i) {
    size_t s = (w.next_free_hint + i) % kMaxLiveMappings;
    if (!w.used[s]) {
      slot = s;
      break;
    }
  }
  if (slot == kMaxLiveMappings) {
    return Status::Error(ENOMEM, "address directory: 65,536 mappings are live already");
  }
  w.used[slot] = true;
  w.next_free_hint = slot + 1;
  if (g_high_water.load() < slot + 1) g_high_water.store(slot + 1, std::memory_order_seq_cst);
  g_slots[slot].store(entry.release(), std::memory_order_seq_cst);
  return slot;
}

void AddressDirectory::UpdateLayout(size_t slot, const fs::MapLayout& layout) {
  if (slot >= kMaxLiveMappings) return;
  Writers& w = writers();
  std::lock_guard<std::mutex> lock(w.mu);
  const Entry* old = g_slots[slot].load(std::memory_order_seq_cst);
  if (old == nullptr) return;
  auto entry = std::make_unique<Entry>(
      Entry{old->mapping_id, old->ino, old->base, old->file_offset, old->length, layout});
  g_slots[slot].store(entry.release(), std::memory_order_seq_cst);
  RetireLocked(w, old);
}

void AddressDirectory::Unregister(size_t slot) {
  if (slot >= kMaxLiveMappings) return;
  Writers& w = writers();
  std::lock_guard<std::mutex> lock(w.mu);
  const Entry* old = g_slots[slot].exchange(nullptr, std::memory_order_seq_cst);
  if (old == nullptr) return;
  w.used[slot] = false;
  w.next_free_hint = std::min(w.next_free_hint, slot);
  RetireLocked(w, old);
}

bool AddressDirectory::Lookup(const void* addr, AddressInfo* out) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(addr);
  g_readers.fetch_add(1, std::memory_order_seq_cst);
  bool found = false;
  const size_t n = g_high_water.load(std::memory_order_seq_cst);
  for (size_t i = 0; i < n && !found; ++i) {
    const Entry* e = g_slots[i].load(std::memory_order_seq_cst);
    if (e == nullptr || a < e->base || a - e->base >= e->length) continue;
    const uintptr_t page = a & ~(fs::kPageBytes - 1);
    AddressInfo info;
    info.mapping_id = e->mapping_id;
    info.ino = e->ino;
    info.page = reinterpret_cast<uint8_t*>(page);
    info.file_offset = e->file_offset + (page - e->base);
    const fs::MapSegment* s = FindSegment(*e, info.file_offset);
    if (s == nullptr) {
      info.kind = fs::SegmentKind::kBeyondEof;  // a layout with a gap: treat as inaccessible
    } else {
      info.kind = s->kind;
      bool has_device = s->kind == fs::SegmentKind::kData ||
                        (s->kind == fs::SegmentKind::kLost && s->device_offset != fs::kNoDevice);
      if (has_device) info.device_offset = s->device_offset + (info.file_offset - s->file_offset);
    }
    *out = info;
    found = true;
  }
  g_readers.fetch_sub(1, std::memory_order_seq_cst);
  return found;
}

}  // namespace daxfs::dax
