// extent-space, Wilcox's 2020 suggestion: one registry (the "address space" of a mapped device
// extent) per stretch of device bytes with one set of mappers; every mapping that maps a device
// range joins the registries covering it. Knows nothing of the filesystem: members are mappings.
//
// Invariants (under mu_):
//  - registries_ maps start -> [start, end) with its members; ranges never overlap; a device
//    byte is in a registry iff some live mapping has it joined.
//  - A member is (mapping id, file offset of the registry's first byte in that mapping); the
//    members of a registry are sorted and distinct (one mapping may appear at several file
//    offsets: a file cloned within itself, or two overlapping mappings of one file are two ids).
//  - Canonical form: two adjacent registries whose members continue each other (same mappings,
//    file offsets advancing with the device offset) are merged. Join and Leave split registries
//    at the bounds of the segment they change, then merge again around it.
//
// Cost: per registry one map node plus 16 bytes per member, paid on every map and unmap, and on
// every split or merge when sharing changes; a failure costs one lookup plus the overlapping
// registries.
#include <algorithm>
#include <map>
#include <mutex>
#include <vector>

#include "tracking/counting_allocator.h"
#include "tracking/mapping_registry.h"
#include "tracking/trackers.h"

namespace daxfs::tracking {
namespace {


struct Member {
  uint64_t mapping_id;
  uint64_t file_offset;  // of the registry's first byte, in that mapping's file
  auto operator<=>(const Member&) const = default;
};
using MemberAlloc = CountingAllocator<Member>;
using Members = std::vector<Member, MemberAlloc>;

struct Registry {
  Registry(uint64_t end_offset, Members m) : end(end_offset), members(std::move(m)) {}
  uint64_t end;
  Members members;
};

class ExtentSpaceTracker final : public dax::OwnerTracker {
 public:
  ExtentSpaceTracker() : registries_(RegistryAlloc(&bytes_)), mappings_(&bytes_) {}

  Tracking design() const override { return Tracking::kExtentSpace; }

  void Join(const dax::TrackedMapping& m, std::span<const fs::MapSegment> segments) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (const fs::MapSegment& s : segments) {
      if (s.kind != fs::SegmentKind::kData || s.length == 0) continue;
      const uint64_t start = s.device_offset, end = s.device_offset + s.length;
      SplitAt(start);
      SplitAt(end);
      uint64_t cursor = start;
      auto it = registries_.lower_bound(start);
      while (cursor < end) {
        if (it != registries_.end() && it->first == cursor) {
          AddMember(&it->second.members, Member{m.id, s.file_offset + (cursor - start)});
          cursor = it->second.end;
          ++it;
        } else {  // a gap nobody maps yet: a new registry with this mapping alone
          uint64_t gap_end = it != registries_.end() ? std::min(it->first, end) : end;
          Registry r{gap_end, Members(MemberAlloc(&bytes_))};
          r.members.push_back(Member{m.id, s.file_offset + (cursor - start)});
          registries_.emplace_hint(it, cursor, std::move(r));
          cursor = gap_end;
        }
      }
      mappings_.AddPages(m, s.length / fs::kPageBytes);
      MergeAround(start, end);
    }
  }

  void Leave(const dax::TrackedMapping& m, std::span<const fs::MapSegment> segments) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (const fs::MapSegment& s : segments) {
      if (s.kind != fs::SegmentKind::kData || s.length == 0) continue;
      const uint64_t start = s.device_offset, end = s.device_offset + s.length;
      SplitAt(start);
      SplitAt(end);
      uint64_t left = 0;
      for (auto it = registries_.lower_bound(start); it != registries_.end() && it->first < end;) {
        Members& members = it->second.members;
        Member gone{m.id, s.file_offset + (it->first - start)};
        auto pos = std::lower_bound(members.begin(), members.end(), gone);
        if (pos != members.end() && *pos == gone) {
          members.erase(pos);
          left += (it->second.end - it->first) / fs::kPageBytes;
        }
        if (members.empty()) {
          it = registries_.erase(it);
        } else {
          ++it;
        }
      }
      mappings_.RemovePages(m.id, left);
      MergeAround(start, end);
    }
  }

  Result<std::vector<Victim>> FindVictims(uint64_t offset, uint64_t length) override {
    std::vector<Victim> victims;
    if (length == 0) return victims;
    const uint64_t first = offset / fs::kPageBytes * fs::kPageBytes;
    const uint64_t end = (offset + length + fs::kPageBytes - 1) / fs::kPageBytes * fs::kPageBytes;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto it = FirstOverlapping(first); it != registries_.end() && it->first < end; ++it) {
        const uint64_t from = std::max(first, it->first);
        const uint64_t to = std::min(end, it->second.end);
        for (const Member& member : it->second.members) {
          Victim v;
          if (mappings_.MakeVictim(member.mapping_id, member.file_offset + (from - it->first),
                                   to - from, from, &v)) {
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
  using RegistryAlloc = CountingAllocator<std::pair<const uint64_t, Registry>>;
  using Registries = std::map<uint64_t, Registry, std::less<uint64_t>, RegistryAlloc>;

  // The first registry that ends after `offset`.
  Registries::iterator FirstOverlapping(uint64_t offset) {
    auto it = registries_.upper_bound(offset);
    if (it != registries_.begin()) {
      auto prev = std::prev(it);
      if (prev->second.end > offset) return prev;
    }
    return it;
  }

  // Cuts the registry holding `at` (strictly inside it) in two.
  void SplitAt(uint64_t at) {
    auto it = FirstOverlapping(at);
    if (it == registries_.end() || it->first >= at) return;
    const uint64_t shift = at - it->first;
    Registry tail{it->second.end, Members(MemberAlloc(&bytes_))};
    tail.members.reserve(it->second.members.size());
    for (const Member& member : it->second.members) {
      tail.members.push_back(Member{member.mapping_id, member.file_offset + shift});
    }
    it->second.end = at;
    registries_.emplace_hint(std::next(it), at, std::move(tail));
  }

  static void AddMember(Members* members, const Member& member) {
    auto pos = std::lower_bound(members->begin(), members->end(), member);
    if (pos == members->end() || !(*pos == member)) members->insert(pos, member);
  }

  // Whether `b` continues `a`: adjacent, and every member of `a` goes on in `b`.
  static bool Continues(uint64_t a_start, const Registry& a, uint64_t b_start, const Registry& b) {
    if (a.end != b_start || a.members.size() != b.members.size()) return false;
    const uint64_t shift = b_start - a_start;
    for (size_t i = 0; i < a.members.size(); ++i) {
      if (b.members[i].mapping_id != a.members[i].mapping_id ||
          b.members[i].file_offset != a.members[i].file_offset + shift) {
        return false;
      }
    }
    return true;
  }

  // Restores the canonical form over the registries touching [start, end].
  void MergeAround(uint64_t start, uint64_t end) {
    auto it = FirstOverlapping(start == 0 ? 0 : start - 1);
    while (it != registries_.end() && it->first <= end) {
      auto next = std::next(it);
      if (next == registries_.end()) break;
      if (Continues(it->first, it->second, next->first, next->second)) {
        it->second.end = next->second.end;
        registries_.erase(next);
      } else {
        it = next;
      }
    }
  }

  std::atomic<uint64_t> bytes_{0};
  std::mutex mu_;
  Registries registries_;
  MappingRegistry mappings_;
};

}  // namespace

std::unique_ptr<dax::OwnerTracker> NewExtentSpaceTracker() {
  return std::make_unique<ExtentSpaceTracker>();
}

}  // namespace daxfs::tracking
