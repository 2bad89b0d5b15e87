// Arithmetic on runs of blocks (space::Run: start, count): union, gaps, difference and
// intersection of sorted run lists. Pure functions; knows nothing of what the blocks hold.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "space/extent_allocator.h"

namespace daxfs::fs {

// Sorted, merged union of runs (empty ones dropped).
inline std::vector<space::Run> Union(std::vector<space::Run> runs) {
  std::sort(runs.begin(), runs.end(), [](auto& a, auto& b) { return a.start < b.start; });
  std::vector<space::Run> out;
  for (const space::Run& r : runs) {
    if (r.count == 0) continue;
    if (!out.empty() && out.back().start + out.back().count >= r.start) {
      uint64_t end = std::max(out.back().start + out.back().count, r.start + r.count);
      out.back().count = end - out.back().start;
    } else {
      out.push_back(r);
    }
  }
  return out;
}

// The runs of [first, end) not covered by `covered` (sorted runs, may overlap).
inline std::vector<space::Run> Gaps(uint64_t first, uint64_t end,
                                    const std::vector<space::Run>& covered) {
  std::vector<space::Run> out;
  uint64_t at = first;
  for (const space::Run& r : covered) {
    if (r.start + r.count <= at) continue;
    if (r.start >= end) break;
    if (r.start > at) out.push_back({at, r.start - at});
    at = std::max(at, r.start + r.count);
    if (at >= end) break;
  }
  if (at < end) out.push_back({at, end - at});
  return out;
}

// Sorted, disjoint runs: a minus b.
inline std::vector<space::Run> Subtract(const std::vector<space::Run>& a,
                                        const std::vector<space::Run>& b) {
  std::vector<space::Run> out;
  size_t j = 0;
  for (const space::Run& r : a) {
    uint64_t at = r.start, end = r.start + r.count;
    while (j < b.size() && b[j].start + b[j].count <= at) ++j;
    for (size_t k = j; k < b.size() && b[k].start < end && at < end; ++k) {
      if (b[k].start > at) out.push_back({at, b[k].start - at});
      at = std::max(at, b[k].start + b[k].count);
    }
    if (at < end) out.push_back({at, end - at});
  }
  return out;
}

// Sorted, disjoint runs: a intersected with b.
inline std::vector<space::Run> Intersect(const std::vector<space::Run>& a,
                                         const std::vector<space::Run>& b) {
  std::vector<space::Run> out;
  for (size_t i = 0, j = 0; i < a.size() && j < b.size();) {
    uint64_t s = std::max(a[i].start, b[j].start);
    uint64_t e = std::min(a[i].start + a[i].count, b[j].start + b[j].count);
    if (s < e) out.push_back({s, e - s});
    (a[i].start + a[i].count < b[j].start + b[j].count) ? ++i : ++j;
  }
  return out;
}

}  // namespace daxfs::fs
