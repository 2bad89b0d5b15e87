// Offline repair of the reverse map and the refcount tree, as xfs_repair rebuilds its rmapbt and
// refcountbt: the extent maps and the chunk table are the truth; both trees are emptied and
// rebuilt from them in one write operation (atomic like every other). Changes no other tree;
// afterwards the in-memory free data space, which mount derived from the old rmap, is made to
// agree with the extent maps too. Offline: meant for a freshly opened filesystem.
//
// Order (docs/fs.md, "Operations and atomicity"): observe everything and refuse what cannot be
// rebuilt (sharing without reflink means the extent maps themselves are damaged); reserve every
// metadata node the rebuild can need; compare the trees with what they should hold (the report's
// `fixed`); then delete every record and insert the rebuilt ones.
#include "scrub/repair.h"

#include <fmt/core.h>

#include <algorithm>
#include <tuple>

#include "fs/blocks.h"
#include "fs/data_space.h"
#include "fs/inodes.h"
#include "fs/op_runner.h"
#include "fs/owners.h"
#include "fs/poison.h"
#include "fs/refcount.h"
#include "fs/rmap.h"
#include "fs/runs.h"
#include "scrub/check.h"
#include "space/extent_allocator.h"

namespace daxfs::scrub {

using fs::OpRunner;
using fs::ReadOp;
using fs::WriteOp;

using format::RefcountRecord;
using format::RmapRecord;

namespace {

// The most nodes a tree built by inserting `records` records into an empty tree can have: after
// inserts alone every non-root node holds at least MinFill entries (a split leaves both halves
// at least that full).
uint64_t BuiltTreeNodesBound(const btree::BTree& tree, uint64_t records) {
  uint64_t nodes = 0, entries = records;
  for (int level = 0; level < format::kBTreeMaxLevels; ++level) {
    uint64_t per = static_cast<uint64_t>(std::max(1, tree.MinFill(level)));
    uint64_t n = (entries + per - 1) / per;
    nodes += std::max<uint64_t>(n, 1);
    if (n <= 1) break;
    entries = n;
  }
  return nodes;
}

}  // namespace

void Repairer::ResyncDataSpace(const std::vector<RmapRecord>& file_owners) {
  std::vector<space::Run> owned;  // the union of the file ranges, in order
  std::vector<RmapRecord> by_device = file_owners;
  std::sort(by_device.begin(), by_device.end(),
            [](auto& a, auto& b) { return a.device_block < b.device_block; });
  for (const RmapRecord& r : by_device) {
    uint64_t end = r.device_block + r.blocks;
    if (!owned.empty() && owned.back().start + owned.back().count >= r.device_block) {
      owned.back().count =
          std::max(owned.back().start + owned.back().count, end) - owned.back().start;
    } else {
      owned.push_back({r.device_block, r.blocks});
    }
  }
  format::Superblock sb = a_.pool->superblock();
  std::vector<space::Run> data_chunks;
  for (auto& [chunk, type] : a_.pool->Chunks()) {
    if (type == format::ChunkType::kData)
      data_chunks.push_back({sb.ChunkFirstBlock(chunk), sb.ChunkBlockCount(chunk)});
  }
  std::vector<space::Run> free = a_.data->blocks().FreeRuns();
  // Owned but free (the old rmap missed them): take them out of the free set.
  for (const space::Run& r : fs::Intersect(free, owned))
    a_.data->MarkUsed(r.start, r.count).IgnoreError();
  // Free in truth but not in the allocator (the old rmap had stray records): give them back.
  if (a_.data->blocks().deferred_blocks() == 0 && a_.data->blocks().fresh_blocks() == 0) {
    for (const space::Run& r : fs::Subtract(fs::Subtract(data_chunks, owned), free))
      a_.data->AddFree(r.start, r.count);
  }
}

Status Repairer::ReserveRebuild(WriteOp& op, uint64_t rmap_records, uint64_t refcount_records) {
  // Deleting every record copies each old node at most once (a copy is fresh and then changed in
  // place); the new trees are bounded above; each single update also reserves its own worst case
  // for a moment.
  uint64_t old_nodes = 0;
  for (const btree::BTree* t : {op.rmap(), op.refcount()}) {
    if (t == nullptr) continue;
    RETURN_IF_ERROR(t->VisitNodes([&](uint64_t, int) {
      ++old_nodes;
      return Status::Ok();
    }));
  }
  uint64_t need =
      old_nodes + BuiltTreeNodesBound(*op.rmap(), rmap_records) + 4 * format::kBTreeMaxLevels;
  if (op.refcount() != nullptr) need += BuiltTreeNodesBound(*op.refcount(), refcount_records);
  return op.txn().EnsureNodes(need);
}

Result<RepairReport> Repairer::Run() {
  const bool dup = a_.pool->metadata_dup();
  if (!a_.has_rmap && !dup) {
    return Status::NotSupported(
        "the filesystem keeps no reverse map (made with rmap = false) and no metadata twins: "
        "nothing to rebuild");
  }
  // Start from a transaction of our own, so that a failure part-way aborts only the repair.
  RETURN_IF_ERROR(a_.runner->Sync());
  RepairReport report;
  if (dup) {
    // The twins first (the pool's own commit, under the filesystem lock with no transaction
    // open), so that the rebuild below reads sound metadata; repairs it queued are recorded by
    // the next commit of the filesystem.
    Result<txn::TwinRebuildReport> twins =
        a_.runner->Exclusive([&] { return a_.pool->RebuildTwins(); });
    RETURN_IF_ERROR(twins.status());
    report.twins_rebuilt = true;
    report.twin_nodes_checked = twins->nodes_checked;
    report.twins_fixed = twins->rewritten;
    report.twins_fixed.insert(report.twins_fixed.end(), twins->relocated.begin(),
                              twins->relocated.end());
    if (twins->superblock_rewritten) report.twins_fixed.push_back("superblock copy rewritten");
    report.twins_lost = twins->lost;
    RETURN_IF_ERROR(a_.runner->CommitIfWanted());
    if (!a_.has_rmap) return report;
  }
  RETURN_IF_ERROR(a_.runner->Write([&](WriteOp& op) -> Status {
    // 1. Observe: what the trees must hold, and what they hold.
    std::vector<RmapRecord> files;
    RETURN_IF_ERROR(fs::Owners::ScanFileOwners(op, &files));
    std::vector<RefcountRecord> refcounts = fs::RefcountsOf(files);
    ASSIGN_OR_RETURN(std::vector<RmapRecord> retired,
                     a_.poison->RetiredRecords(op, files));  // owner `bad`
    if (!a_.has_reflink && !refcounts.empty()) {
      const RefcountRecord& r = refcounts.front();
      return Status::Corruption(fmt::format(
          "device blocks {}..{} are mapped by {} files on a filesystem without reflink: the extent "
          "maps themselves are damaged, so the reverse map cannot be rebuilt from them (nothing "
          "was changed)",
          r.device_block, r.device_block + r.blocks - 1, r.refcount));
    }
    std::vector<RmapRecord> have_rmap;
    std::vector<RefcountRecord> have_refcounts;
    std::vector<std::string> unreadable;
    std::vector<btree::Key> bad_rmap_keys, bad_refcount_keys;
    RETURN_IF_ERROR(fs::Rmap::ReadAll(op, &have_rmap, &unreadable, &bad_rmap_keys));
    if (op.refcount() != nullptr) {
      RETURN_IF_ERROR(fs::Refcount::ReadAll(op, &have_refcounts, &unreadable, &bad_refcount_keys));
    }

    // 2. Reserve (this may type METADATA chunks, so their owners are read after it).
    uint64_t special_bound = a_.pool->superblock().chunk_count + 1 + retired.size();
    RETURN_IF_ERROR(ReserveRebuild(op, files.size() + special_bound, refcounts.size()));
    std::vector<RmapRecord> want = files;
    want.insert(want.end(), retired.begin(), retired.end());
    for (const RmapRecord& s : a_.owners->SpecialOwnerRecords()) want.push_back(s);
    std::sort(want.begin(), want.end(), fs::RmapKeyLess);
    report.fixed = unreadable;
    DiffReverseMaps(want, have_rmap, refcounts, have_refcounts, &report.fixed);

    // 3. Apply.
    for (const RmapRecord& r : have_rmap)
      RETURN_IF_ERROR(op.writer(fs::FsTree::kRmap).Delete(fs::RmapKey(r)));
    for (const btree::Key& k : bad_rmap_keys)
      RETURN_IF_ERROR(op.writer(fs::FsTree::kRmap).Delete(k));
    for (const RefcountRecord& r : have_refcounts) {
      RETURN_IF_ERROR(op.writer(fs::FsTree::kRefcount).Delete(btree::Key{{r.device_block}}));
    }
    for (const btree::Key& k : bad_refcount_keys)
      RETURN_IF_ERROR(op.writer(fs::FsTree::kRefcount).Delete(k));
    uint8_t value[std::max(format::kRmapValueSize, format::kRefcountValueSize)];
    auto insert_rmap = [&](const RmapRecord& r) {
      format::EncodeRmapValue(r, value);
      return op.writer(fs::FsTree::kRmap).Insert(fs::RmapKey(r), {value, format::kRmapValueSize});
    };
    for (const RmapRecord& r : want) RETURN_IF_ERROR(insert_rmap(r));
    for (const RefcountRecord& r : refcounts) {
      format::EncodeRefcountValue(r, value);
      RETURN_IF_ERROR(
          op.writer(fs::FsTree::kRefcount)
              .Insert(btree::Key{{r.device_block}}, {value, format::kRefcountValueSize}));
    }
    // The reservation is a bound: should the inserts still have typed a METADATA chunk, it gets
    // its owner record too (inserting one may type another: repeat until nothing is new).
    for (bool added = true; added;) {
      added = false;
      for (const RmapRecord& s : a_.owners->SpecialOwnerRecords()) {
        if (std::binary_search(want.begin(), want.end(), s, fs::RmapKeyLess)) continue;
        RETURN_IF_ERROR(insert_rmap(s));
        want.insert(std::upper_bound(want.begin(), want.end(), s, fs::RmapKeyLess), s);
        added = true;
      }
    }
    // The allocator's free space came from the old rmap at mount.
    std::vector<RmapRecord> in_use = files;  // retired space is never free either
    in_use.insert(in_use.end(), retired.begin(), retired.end());
    ResyncDataSpace(in_use);
    report.rmap_records = want.size();
    report.refcount_records = refcounts.size();
    return Status::Ok();
  }));
  return report;
}

}  // namespace daxfs::scrub
