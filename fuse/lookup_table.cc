// The kernel's lookup counts per inode (see lookup_table.h). Knows nothing about the engine.
#include "lookup_table.h"

namespace daxfs::fusefs {

LookupTable::LookupTable() { Add(kRoot, 1); }

bool LookupTable::Add(Ino ino, uint64_t n) {
  if (n == 0) return false;
  Shard& s = ShardOf(ino);
  std::lock_guard<std::mutex> lock(s.mu);
  uint64_t& count = s.counts[ino];
  const bool was_unknown = count == 0;
  count += n;
  if (was_unknown) known_.fetch_add(1, std::memory_order_relaxed);
  return was_unknown;
}

uint64_t LookupTable::Forget(Ino ino, uint64_t n) {
  Shard& s = ShardOf(ino);
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.counts.find(ino);
  if (it == s.counts.end()) {
    if (n > 0) underflows_.fetch_add(1, std::memory_order_relaxed);
    return 0;
  }
  if (n > it->second) underflows_.fetch_add(1, std::memory_order_relaxed);
  it->second -= std::min(n, it->second);
  if (it->second > 0) return it->second;
  s.counts.erase(it);
  known_.fetch_sub(1, std::memory_order_relaxed);
  return 0;
}

uint64_t LookupTable::Count(Ino ino) const {
  const Shard& s = ShardOf(ino);
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.counts.find(ino);
  return it == s.counts.end() ? 0 : it->second;
}

}  // namespace daxfs::fusefs
