// Refcount maintenance (refcount.h): raising and lowering counts by writing only the records
// that change, the shared runs of a range, reading the tree back, and the sweep that computes
// what the tree must hold. Knows device blocks and the refcount tree only.
#include "fs/refcount.h"

#include <fmt/core.h>

#include <algorithm>
#include <limits>

namespace daxfs::fs {

using format::RefcountRecord;
using format::RmapRecord;

namespace {

// A count that reached the largest value stays there for good (as XFS's MAXREFCOUNT): the
// blocks are then never freed, which is safe.
constexpr uint32_t kStuckCount = std::numeric_limits<uint32_t>::max();

uint64_t End(const RefcountRecord& r) { return r.device_block + r.blocks; }

// The records overlapping [start, end) and those touching it at either end (they may merge with
// what the adjustment leaves), in order.
Result<std::vector<RefcountRecord>> RecordsAround(const btree::BTree* tree, uint64_t start,
                                                  uint64_t end) {
  std::vector<RefcountRecord> out;
  if (tree->root() == 0) return out;
  btree::Cursor c(tree);
  uint64_t probe = start > 0 ? start - 1 : 0;  // the left neighbour may end exactly at start
  RETURN_IF_ERROR(c.SeekLE(RefcountKey(probe)));
  if (!c.Valid()) RETURN_IF_ERROR(c.SeekGE(RefcountKey(probe)));
  while (c.Valid() && c.key().w[0] <= end) {
    ASSIGN_OR_RETURN(RefcountRecord r, format::DecodeRefcount(c.key().w[0], c.value().data()));
    if (End(r) >= start) {
      if (!out.empty() && End(out.back()) > r.device_block) {
        return Status::Corruption(
            fmt::format("refcount: records at device blocks {} and {} overlap",
                        out.back().device_block, r.device_block));
      }
      out.push_back(r);
    }
    RETURN_IF_ERROR(c.Next());
  }
  return out;
}

// Appends [start, end) with `count` to `want` (records of count >= 2 only, merged with an equal
// neighbour) or, at zero, to `freed`.
void Emit(uint64_t start, uint64_t end, uint32_t count, std::vector<RefcountRecord>* want,
          std::vector<space::Run>* freed) {
  if (start >= end) return;
  if (count == 0) {
    if (!freed->empty() && freed->back().start + freed->back().count == start) {
      freed->back().count += end - start;
    } else {
      freed->push_back({start, end - start});
    }
    return;
  }
  if (count == 1) return;
  if (!want->empty() && End(want->back()) == start && want->back().refcount == count) {
    want->back().blocks += end - start;
    return;
  }
  want->push_back({start, end - start, count});
}

// Lowers or raises by one the count of every block of [start, start + count): reads the records
// around the range, computes what they become (split at the range's edges, adjusted inside,
// holes inside counted as one owner, merged where equal), and writes only the difference.
Status Adjust(TreeWriter& tree, uint64_t start, uint64_t count, int delta,
              std::vector<space::Run>* freed) {
  if (count == 0) return Status::Ok();
  uint64_t end = start + count;
  ASSIGN_OR_RETURN(std::vector<RefcountRecord> old, RecordsAround(tree.tree(), start, end));
  auto adjusted = [&](uint32_t c) -> uint32_t {
    if (c == kStuckCount) return c;
    return delta > 0 ? c + 1 : c - 1;
  };
  // Emits [from, to) whose count is `base` outside the range and adjusted inside it.
  std::vector<RefcountRecord> want;
  std::vector<space::Run> zero;
  auto emit = [&](uint64_t from, uint64_t to, uint32_t base) {
    uint64_t in_from = std::clamp(from, start, end), in_to = std::clamp(to, start, end);
    if (in_from >= in_to) {
      Emit(from, to, base, &want, &zero);
      return;
    }
    Emit(from, in_from, base, &want, &zero);
    Emit(in_from, in_to, adjusted(base), &want, &zero);
    Emit(in_to, to, base, &want, &zero);
  };
  uint64_t pos = old.empty() ? start : std::min(start, old.front().device_block);
  for (const RefcountRecord& r : old) {
    emit(pos, r.device_block, 1);  // a hole between records: one owner
    emit(r.device_block, End(r), r.refcount);
    pos = End(r);
  }
  emit(pos, std::max(pos, end), 1);
  if (delta > 0 && !zero.empty()) {
    return Status::Corruption("refcount: raising a count gave zero");  // cannot happen
  }

  // Write the difference: records that vanish or change, then new ones.
  size_t j = 0;
  for (const RefcountRecord& o : old) {
    while (j < want.size() && want[j].device_block < o.device_block) ++j;
    if (j < want.size() && want[j].device_block == o.device_block) {
      if (want[j].blocks != o.blocks || want[j].refcount != o.refcount) {
        RETURN_IF_ERROR(tree.Update(RefcountKey(o.device_block), RefcountValue(want[j]).bytes));
      }
    } else {
      RETURN_IF_ERROR(tree.Delete(RefcountKey(o.device_block)));
    }
  }
  size_t i = 0;
  for (const RefcountRecord& w : want) {
    while (i < old.size() && old[i].device_block < w.device_block) ++i;
    if (i < old.size() && old[i].device_block == w.device_block) continue;
    RETURN_IF_ERROR(tree.Insert(RefcountKey(w.device_block), RefcountValue(w).bytes));
  }
  if (freed != nullptr) freed->insert(freed->end(), zero.begin(), zero.end());
  return Status::Ok();
}

}  // namespace

Status Refcount::Raise(WriteOp& op, uint64_t device_block, uint64_t count) {
  if (op.refcount() == nullptr) {
    return Status::NotSupported("sharing blocks needs a filesystem made with reflink");
  }
  return Adjust(op.writer(FsTree::kRefcount), device_block, count, +1, nullptr)
      .WithContext(fmt::format("raising the refcount of device blocks {}..{}", device_block,
                               device_block + count - 1));
}

Status Refcount::Lower(WriteOp& op, uint64_t device_block, uint64_t count,
                       std::vector<space::Run>* freed) {
  if (op.refcount() == nullptr) {  // nothing is ever shared
    if (count > 0) freed->push_back({device_block, count});
    return Status::Ok();
  }
  return Adjust(op.writer(FsTree::kRefcount), device_block, count, -1, freed);
}

Result<std::vector<space::Run>> Refcount::SharedRuns(const ReadOp& op, uint64_t device_block,
                                                     uint64_t count) {
  std::vector<space::Run> out;
  if (op.refcount() == nullptr || op.refcount()->root() == 0 || count == 0) return out;
  uint64_t end = device_block + count;
  btree::Cursor c(op.refcount());
  RETURN_IF_ERROR(c.SeekLE(RefcountKey(device_block)));
  if (!c.Valid()) RETURN_IF_ERROR(c.SeekGE(RefcountKey(device_block)));
  while (c.Valid() && c.key().w[0] < end) {
    ASSIGN_OR_RETURN(RefcountRecord r, RefcountAt(c));
    uint64_t from = std::max(r.device_block, device_block), to = std::min(End(r), end);
    if (from < to) {
      if (!out.empty() && out.back().start + out.back().count == from) {
        out.back().count += to - from;
      } else {
        out.push_back({from, to - from});
      }
    }
    RETURN_IF_ERROR(c.Next());
  }
  return out;
}

Result<bool> Refcount::AnyShared(const ReadOp& op, uint64_t device_block, uint64_t blocks) {
  if (op.refcount() == nullptr) return false;
  btree::Cursor c(op.refcount());
  RETURN_IF_ERROR(c.SeekLE(RefcountKey(device_block)));
  if (c.Valid()) {
    ASSIGN_OR_RETURN(RefcountRecord r, RefcountAt(c));
    if (r.device_block + r.blocks > device_block) return true;
    RETURN_IF_ERROR(c.Next());
  } else {
    RETURN_IF_ERROR(c.SeekGE(RefcountKey(device_block)));
  }
  return c.Valid() && c.key().w[0] < device_block + blocks;
}

Status Refcount::ReadAll(const ReadOp& op, std::vector<RefcountRecord>* out,
                         std::vector<std::string>* bad, std::vector<btree::Key>* bad_keys) {
  btree::Cursor c(op.refcount());
  for (Status s = c.SeekFirst();; s = c.Next()) {
    RETURN_IF_ERROR(s);
    if (!c.Valid()) break;
    Result<RefcountRecord> r = RefcountAt(c);
    if (r.ok()) {
      out->push_back(*r);
    } else {
      bad->push_back(r.status().message());
      if (bad_keys) bad_keys->push_back(c.key());
    }
  }
  return Status::Ok();
}

std::vector<RefcountRecord> RefcountsOf(const std::vector<RmapRecord>& ranges) {
  constexpr uint64_t kNoEnd = std::numeric_limits<uint64_t>::max();
  std::vector<std::pair<uint64_t, int>> events;  // (device block, +1 start / -1 end)
  events.reserve(2 * ranges.size());
  for (const RmapRecord& r : ranges) {
    if (format::IsSpecialOwner(r.owner) || r.blocks == 0) continue;
    events.push_back({r.device_block, +1});
    events.push_back({r.blocks > kNoEnd - r.device_block ? kNoEnd : r.device_block + r.blocks, -1});
  }
  std::sort(events.begin(), events.end());
  std::vector<RefcountRecord> out;
  int64_t depth = 0;
  uint64_t prev = 0;
  for (size_t i = 0; i < events.size();) {
    uint64_t at = events[i].first;
    if (depth >= 2 && at > prev) {
      uint32_t count = static_cast<uint32_t>(std::min<int64_t>(depth, UINT32_MAX));
      if (!out.empty() && out.back().device_block + out.back().blocks == prev &&
          out.back().refcount == count) {
        out.back().blocks += at - prev;
      } else {
        out.push_back({.device_block = prev, .blocks = at - prev, .refcount = count});
      }
    }
    for (; i < events.size() && events[i].first == at; ++i) depth += events[i].second;
    prev = at;
  }
  return out;
}

}  // namespace daxfs::fs
