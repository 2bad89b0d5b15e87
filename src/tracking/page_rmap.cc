// page-rmap, the 2020 RFC design: for every mapped device page, an ordered tree (std::set, a
// red-black tree) of its owners (mapping id, file page index), filled page by page when pages
// are mapped and emptied when they are unmapped. FindVictims reads the trees of the failed
// pages. Knows nothing of the filesystem: owners are mappings, never files.
//
// Cost: one tree node per (mapped page, mapping) plus one map node per distinct device page,
// paid on every map and unmap; a failure costs one lookup per failed page.
#include <map>
#include <mutex>
#include <set>

#include "tracking/counting_allocator.h"
#include "tracking/mapping_registry.h"
#include "tracking/trackers.h"

namespace daxfs::tracking {
namespace {


class PageRmapTracker final : public dax::OwnerTracker {
 public:
  PageRmapTracker() : pages_(PageAlloc(&bytes_)), mappings_(&bytes_) {}

  Tracking design() const override { return Tracking::kPageRmap; }

  void Join(const dax::TrackedMapping& m, std::span<const fs::MapSegment> segments) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (const fs::MapSegment& s : segments) {
      if (s.kind != fs::SegmentKind::kData) continue;
      uint64_t joined = 0;
      for (uint64_t i = 0; i < s.length / fs::kPageBytes; ++i) {
        auto it = pages_.try_emplace(s.device_offset / fs::kPageBytes + i, OwnerAlloc(&bytes_)).first;
        if (it->second.insert(Owner{m.id, s.file_offset / fs::kPageBytes + i}).second) ++joined;
      }
      mappings_.AddPages(m, joined);
    }
  }

  void Leave(const dax::TrackedMapping& m, std::span<const fs::MapSegment> segments) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (const fs::MapSegment& s : segments) {
      if (s.kind != fs::SegmentKind::kData) continue;
      uint64_t left = 0;
      for (uint64_t i = 0; i < s.length / fs::kPageBytes; ++i) {
        auto it = pages_.find(s.device_offset / fs::kPageBytes + i);
        if (it == pages_.end()) continue;
        left += it->second.erase(Owner{m.id, s.file_offset / fs::kPageBytes + i});
        if (it->second.empty()) pages_.erase(it);
      }
      mappings_.RemovePages(m.id, left);
    }
  }

  Result<std::vector<Victim>> FindVictims(uint64_t offset, uint64_t length) override {
    std::vector<Victim> victims;
    if (length == 0) return victims;
    const uint64_t first = offset / fs::kPageBytes;
    const uint64_t end = (offset + length + fs::kPageBytes - 1) / fs::kPageBytes;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto it = pages_.lower_bound(first); it != pages_.end() && it->first < end; ++it) {
        for (const Owner& o : it->second) {
          Victim v;
          if (mappings_.MakeVictim(o.mapping_id, o.page_index * fs::kPageBytes, fs::kPageBytes, it->first * fs::kPageBytes,
                                   &v)) {
            victims.push_back(v);
          }
        }
      }
    }
    dax::NormalizeVictims(&victims);
    return victims;
  }

  uint64_t TrackingBytes() const override { return bytes_.load(); }

 private:
  struct Owner {
    uint64_t mapping_id;
    uint64_t page_index;  // file offset / 4 KiB
    auto operator<=>(const Owner&) const = default;
  };
  using OwnerAlloc = CountingAllocator<Owner>;
  using OwnerTree = std::set<Owner, std::less<Owner>, OwnerAlloc>;
  using PageAlloc = CountingAllocator<std::pair<const uint64_t, OwnerTree>>;

  std::atomic<uint64_t> bytes_{0};
  std::mutex mu_;
  std::map<uint64_t, OwnerTree, std::less<uint64_t>, PageAlloc> pages_;  // device page -> owners
  MappingRegistry mappings_;
};

}  // namespace

std::unique_ptr<dax::OwnerTracker> NewPageRmapTracker() {
  return std::make_unique<PageRmapTracker>();
}

}  // namespace daxfs::tracking
