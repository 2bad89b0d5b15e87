// Data-block allocation over interval maps: free runs, runs fresh in the running transaction,
// and deferred releases tagged with the releasing generation.
// Knows block numbers only: nothing about files, trees, chunks or devices.
#include "space/extent_allocator.h"

#include <fmt/core.h>

#include <algorithm>
#include <cassert>
#include <iterator>
#include <optional>

namespace daxfs::space {

// ---- Interval-map helpers.

void ExtentAllocator::Insert(RunMap* map, uint64_t start, uint64_t count) {
  if (count == 0) return;
  uint64_t end = start + count;
  auto next = map->lower_bound(start);
  if (next != map->begin()) {
    auto prev = std::prev(next);
    assert(prev->first + prev->second <= start);  // no overlap
    if (prev->first + prev->second == start) {
      start = prev->first;
      map->erase(prev);
    }
  }
  if (next != map->end()) {
    assert(next->first >= end);  // no overlap
    if (next->first == end) {
      end += next->second;
      map->erase(next);
    }
  }
  (*map)[start] = end - start;
}

bool ExtentAllocator::Erase(RunMap* map, uint64_t start, uint64_t count) {
  if (count == 0) return true;
  auto it = map->upper_bound(start);
  if (it == map->begin()) return false;
  --it;
  uint64_t run_start = it->first, run_end = it->first + it->second;
  if (start + count > run_end) return false;  // runs are merged: all of it is in this one run
  map->erase(it);
  if (run_start < start) (*map)[run_start] = start - run_start;
  if (start + count < run_end) (*map)[start + count] = run_end - (start + count);
  return true;
}

bool ExtentAllocator::Contains(const RunMap& map, uint64_t block) {
  auto it = map.upper_bound(block);
  if (it == map.begin()) return false;
  --it;
  return block < it->first + it->second;
}

// ---- Free space.

void ExtentAllocator::AddFree(uint64_t start, uint64_t count) {
  Insert(&free_, start, count);
  free_blocks_ += count;
}

Status ExtentAllocator::MarkUsed(uint64_t start, uint64_t count) {
  if (Erase(&free_, start, count)) {
    free_blocks_ -= count;
    return Status::Ok();
  }
  uint64_t first_bad = start;
  while (first_bad < start + count && IsFree(first_bad)) ++first_bad;
  return Status::Corruption(fmt::format(
      "data block {} is not free: owned twice, or outside every DATA chunk", first_bad));
}

namespace {

// The runs to take for `count` blocks when no single run fits: the largest first (fewest runs),
// ties in address order; the last one only in part. Returned in address order.
std::vector<Run> LargestRuns(const std::map<uint64_t, uint64_t>& free, uint64_t count) {
  std::vector<Run> by_size;
  for (auto& [start, n] : free) by_size.push_back({start, n});
  std::stable_sort(by_size.begin(), by_size.end(),
                   [](const Run& a, const Run& b) { return a.count > b.count; });
  std::vector<Run> out;
  for (const Run& r : by_size) {
    if (count == 0) break;
    uint64_t take = std::min(r.count, count);
    out.push_back({r.start, take});
    count -= take;
  }
  std::sort(out.begin(), out.end(), [](const Run& a, const Run& b) { return a.start < b.start; });
  return out;
}

// One run of `count` blocks: at `goal` if free there, else the first that fits at or after
// `goal`, else the first that fits anywhere.
std::optional<uint64_t> FindSingleRun(const std::map<uint64_t, uint64_t>& free, uint64_t count,
                                      uint64_t goal) {
  auto at = free.upper_bound(goal);
  if (at != free.begin()) {
    auto holder = std::prev(at);
    if (goal + count <= holder->first + holder->second) return goal;
  }
  for (auto it = at; it != free.end(); ++it) {
    if (it->second >= count) return it->first;
  }
  for (auto it = free.begin(); it != at; ++it) {
    if (it->second >= count) return it->first;
  }
  return std::nullopt;
}

}  // namespace

Result<std::vector<Run>> ExtentAllocator::Allocate(uint64_t count, uint64_t goal) {
  if (count == 0) return std::vector<Run>{};
  if (count > free_blocks_) {
    return Status::NoSpace(fmt::format("need {} data blocks, {} free", count, free_blocks_));
  }
  std::vector<Run> runs;
  if (std::optional<uint64_t> start = FindSingleRun(free_, count, goal)) {
    runs.push_back({*start, count});
  } else {
    runs = LargestRuns(free_, count);
  }
  for (const Run& r : runs) {
    bool erased = Erase(&free_, r.start, r.count);
    assert(erased);
    (void)erased;
    Insert(&fresh_, r.start, r.count);
  }
  free_blocks_ -= count;
  fresh_blocks_ += count;
  return runs;
}

void ExtentAllocator::Release(uint64_t start, uint64_t count, uint64_t generation) {
  uint64_t end = start + count;
  uint64_t pos = start;
  while (pos < end) {
    // The fresh run holding `pos`, or the next one after it.
    auto it = fresh_.upper_bound(pos);
    if (it != fresh_.begin() && std::prev(it)->first + std::prev(it)->second > pos) --it;
    uint64_t fresh_start = it == fresh_.end() ? end : std::max(pos, it->first);
    fresh_start = std::min(fresh_start, end);
    if (fresh_start > pos) {  // committed part: deferred until the release is durable
      assert(!IsFree(pos));
      deferred_.push_back({pos, fresh_start - pos, generation});
      deferred_blocks_ += fresh_start - pos;
      pos = fresh_start;
      continue;
    }
    uint64_t fresh_end = std::min(end, it->first + it->second);
    bool erased = Erase(&fresh_, pos, fresh_end - pos);
    assert(erased);
    (void)erased;
    Insert(&free_, pos, fresh_end - pos);
    fresh_blocks_ -= fresh_end - pos;
    free_blocks_ += fresh_end - pos;
    pos = fresh_end;
  }
}

void ExtentAllocator::ReleaseDeferred(uint64_t safe_generation) {
  // Only committed transactions' deferrals; the running one's wait for its commit.
  auto committed_end = deferred_.begin() + static_cast<ptrdiff_t>(deferred_committed_);
  auto keep_end = std::stable_partition(deferred_.begin(), committed_end, [&](const Deferred& d) {
    return d.generation > safe_generation;
  });
  for (auto it = keep_end; it != committed_end; ++it) {
    Insert(&free_, it->start, it->count);
    free_blocks_ += it->count;
    deferred_blocks_ -= it->count;
  }
  size_t released = static_cast<size_t>(committed_end - keep_end);
  deferred_.erase(keep_end, committed_end);
  deferred_committed_ -= released;
}

void ExtentAllocator::Commit() {
  fresh_.clear();
  fresh_blocks_ = 0;
  deferred_committed_ = deferred_.size();
}

void ExtentAllocator::Abort() {
  for (auto& [start, count] : fresh_) Insert(&free_, start, count);
  free_blocks_ += fresh_blocks_;
  fresh_.clear();
  fresh_blocks_ = 0;
  for (size_t i = deferred_committed_; i < deferred_.size(); ++i)
    deferred_blocks_ -= deferred_[i].count;
  deferred_.resize(deferred_committed_);
}

// ---- Queries.

bool ExtentAllocator::IsFresh(uint64_t block) const { return Contains(fresh_, block); }

bool ExtentAllocator::AllFresh(uint64_t start, uint64_t count) const {
  if (count == 0) return true;
  auto it = fresh_.upper_bound(start);
  if (it == fresh_.begin()) return false;
  --it;
  return start + count <= it->first + it->second;
}

bool ExtentAllocator::IsFree(uint64_t block) const { return Contains(free_, block); }

std::vector<Run> ExtentAllocator::FreeRuns() const {
  std::vector<Run> out;
  out.reserve(free_.size());
  for (auto& [start, count] : free_) out.push_back({start, count});
  return out;
}

}  // namespace daxfs::space
