// What both tracking designs keep per live mapping to turn an owner back into an address:
// (ino, base, file offset), and how many of its pages are joined so it is dropped with its last
// page. Not thread-safe: each design holds it under its own lock. Knows nothing of devices.
#pragma once

#include <cstdint>
#include <functional>
#include <map>

#include "dax/tracker.h"
#include "tracking/counting_allocator.h"

namespace daxfs::tracking {

class MappingRegistry {
 public:
  struct Info {
    Ino ino = 0;
    uint8_t* base = nullptr;
    uint64_t file_offset = 0;
    uint64_t pages = 0;  // joined pages
  };

  explicit MappingRegistry(std::atomic<uint64_t>* bytes) : infos_(Alloc(bytes)) {}

  void AddPages(const dax::TrackedMapping& m, uint64_t pages) {
    if (pages == 0) return;
    auto [it, inserted] = infos_.try_emplace(m.id);
    if (inserted) it->second = Info{m.ino, m.base, m.file_offset, 0};
    it->second.pages += pages;
  }
  void RemovePages(uint64_t mapping_id, uint64_t pages) {
    auto it = infos_.find(mapping_id);
    if (it == infos_.end()) return;
    it->second.pages = it->second.pages > pages ? it->second.pages - pages : 0;
    if (it->second.pages == 0) infos_.erase(it);
  }
  const Info* Find(uint64_t mapping_id) const {
    auto it = infos_.find(mapping_id);
    return it == infos_.end() ? nullptr : &it->second;
  }

  // The victim for `length` bytes of mapping `mapping_id` at `file_offset` backed by
  // `device_offset`. False if the mapping is unknown.
  bool MakeVictim(uint64_t mapping_id, uint64_t file_offset, uint64_t length,
                  uint64_t device_offset, Victim* out) const {
    const Info* info = Find(mapping_id);
    if (info == nullptr) return false;
    *out = Victim{mapping_id, info->base + (file_offset - info->file_offset), length, info->ino,
                  file_offset, device_offset};
    return true;
  }

 private:
  using Alloc = CountingAllocator<std::pair<const uint64_t, Info>>;
  std::map<uint64_t, Info, std::less<uint64_t>, Alloc> infos_;
};

}  // namespace daxfs::tracking
