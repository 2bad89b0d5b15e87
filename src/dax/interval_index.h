// An index of half-open intervals [start, end) of uint64_t, each with an id, answering "which
// intervals overlap [a, b)?" in O(c log n + k), c the number of length classes in use (at most
// 64). Intervals are kept by length class (lengths in [2^c, 2^(c+1))), each class ordered by
// start: an interval of class c that overlaps [a, b) starts in (a - 2^(c+1), b), and at most the
// intervals of that class lying wholly inside a window of 2^(c+1) before `a` are looked at in
// vain. The mapping table keeps one per file (the kernel's i_mmap). Not thread-safe.
#pragma once

#include <bit>
#include <cstdint>
#include <map>
#include <utility>

namespace daxfs::dax {

class IntervalIndex {
 public:
  // `end > start`; (start, id) must be unique.
  void Insert(uint64_t start, uint64_t end, uint64_t id) {
    classes_[ClassOf(end - start)].emplace(std::make_pair(start, id), end);
    ++size_;
  }
  // Removes what Insert(start, end, id) added; false if it is not there.
  bool Erase(uint64_t start, uint64_t end, uint64_t id) {
    auto c = classes_.find(ClassOf(end - start));
    if (c == classes_.end() || c->second.erase(std::make_pair(start, id)) == 0) return false;
    if (c->second.empty()) classes_.erase(c);
    --size_;
    return true;
  }
  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }

  // Calls fn(start, end, id) for every interval overlapping [a, b) (none when a >= b), by class
  // and then by start.
  template <typename Fn>
  void ForEachOverlap(uint64_t a, uint64_t b, Fn&& fn) const {
    if (a >= b) return;
    for (const auto& [c, by_start] : classes_) {
      uint64_t longest = c >= 63 ? ~0ULL : (2ULL << c) - 1;  // the class's longest interval
      uint64_t lowest = a > longest ? a - longest : 0;       // the lowest start that may reach a
      for (auto it = by_start.lower_bound({lowest, 0}); it != by_start.end() && it->first.first < b;
           ++it) {
        if (it->second > a) fn(it->first.first, it->second, it->first.second);
      }
    }
  }

 private:
  static int ClassOf(uint64_t length) { return std::bit_width(length) - 1; }
  // class -> (start, id) -> end
  std::map<int, std::map<std::pair<uint64_t, uint64_t>, uint64_t>> classes_;
  size_t size_ = 0;
};

}  // namespace daxfs::dax
