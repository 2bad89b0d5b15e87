// Metadata repairs from twins (metadata_repairs.h): relocation before each commit, the poison
// records of retired slots, the repair reports.
#include "fs/metadata_repairs.h"

#include <fmt/core.h>

#include <algorithm>

#include "base/log.h"
#include "device/device.h"
#include "format/records.h"
#include "fs/blocks.h"
#include "fs/node_budget.h"
#include "fs/poison.h"
#include "fs/trees.h"

namespace daxfs {

const char* MetadataRepairKindName(MetadataRepair::Kind kind) {
  switch (kind) {
    case MetadataRepair::Kind::kRelocated:
      return "relocated";
    case MetadataRepair::Kind::kRetired:
      return "retired";
    case MetadataRepair::Kind::kLost:
      return "lost";
  }
  return "?";
}

namespace fs {

Result<std::vector<uint64_t>> MetadataRepairs::LoadAtMount(const ReadOp& op) {
  std::vector<uint64_t> slots;
  ASSIGN_OR_RETURN(std::vector<format::BadRecord> bad, poison_->BadRecords(op, 0, kNoEnd));
  for (const format::BadRecord& r : bad) {
    if (!(r.flags & format::kBadMetadata)) continue;
    for (uint64_t b = r.device_block; b < r.device_block + r.blocks; ++b) {
      recorded_.insert(b);
      recorded_at_mount_.insert(b);
      std::optional<std::pair<uint64_t, bool>> slot = pool_->NodeSlotOf(b);
      if (slot) slots.push_back(slot->first);
    }
  }
  std::sort(slots.begin(), slots.end());
  slots.erase(std::unique(slots.begin(), slots.end()), slots.end());
  return slots;
}

std::vector<uint64_t> MetadataRepairs::BadCopies(uint64_t slot, uint64_t twin, bool primary_bad,
                                                 bool twin_bad) const {
  std::vector<uint64_t> out;
  if (primary_bad) out.push_back(slot);
  if (twin_bad && twin != 0) out.push_back(twin);
  return out;
}

Status MetadataRepairs::BeforeCommit(WriteOp& op) {
  if (pool_->PendingRepairs() > 0) {
    Status repaired = op.txn().Repair();
    if (repaired.code() == ENOSPC) {
      stalled_.store(true);
      base::Log(base::LogLevel::kError, "metadata repair waits for space: {}", repaired.ToString());
    } else {
      RETURN_IF_ERROR(repaired);
      stalled_.store(false);
    }
  }
  // Every bad copy this commit takes out of service: the relocated and retired slots, the slots
  // still queued (retired once released), and those reported earlier without a record.
  std::set<uint64_t> blocks = unrecorded_;
  for (const txn::RepairEvent& e : op.txn().repairs()) {
    for (uint64_t b : BadCopies(e.block, e.twin_block, e.primary_bad, e.twin_bad)) blocks.insert(b);
  }
  for (const auto& [slot, why] : pool_->QueuedRepairs()) {
    for (uint64_t b : BadCopies(slot, pool_->TwinBlock(slot), why.primary_bad, why.twin_bad)) {
      blocks.insert(b);
    }
  }
  std::vector<format::BadRecord> records;
  for (uint64_t b : blocks) {
    if (recorded_.count(b)) continue;
    ASSIGN_OR_RETURN(std::vector<format::BadRecord> there, poison_->BadRecords(op, b, b + 1));
    if (!there.empty()) continue;  // recorded some other way already
    uint32_t flags = format::kBadMetadata;
    if (!device_->IsBad(b * kBlock, kBlock)) flags |= format::kBadChecksum;
    records.push_back({.device_block = b, .blocks = 1, .flags = flags});
  }
  recording_.clear();
  if (records.empty()) return Status::Ok();
  ASSIGN_OR_RETURN(uint64_t nodes,
                   budget_->WorstCaseNodes(op, op.poison(), records.size(), records.size()));
  RETURN_IF_ERROR(op.txn().EnsureNodes(nodes));
  op.txn().AddRoCompat(format::feature::kRoCompatPoison);
  for (const format::BadRecord& r : records) {
    RETURN_IF_ERROR(PoisonIndex::RecordBad(op, r));
    recording_.push_back(r.device_block);
  }
  return Status::Ok();
}

void MetadataRepairs::Committed() {
  for (uint64_t b : recording_) {
    recorded_.insert(b);
    unrecorded_.erase(b);
  }
  recording_.clear();
  unrecorded_count_.store(unrecorded_.size());
  Absorb(pool_->TakeRepairEvents());
}

void MetadataRepairs::Aborted() {
  recording_.clear();  // not durable: still in unrecorded_ or in the pool's queue
}

MetadataRepair MetadataRepairs::ToReport(const txn::RepairEvent& e) const {
  MetadataRepair r{.kind = e.kind == txn::RepairEvent::kRelocated ? MetadataRepair::Kind::kRelocated
                           : e.kind == txn::RepairEvent::kRetired ? MetadataRepair::Kind::kRetired
                                                                  : MetadataRepair::Kind::kLost,
                   .block = e.block,
                   .twin_block = e.twin_block,
                   .primary_bad = e.primary_bad,
                   .twin_bad = e.twin_bad,
                   .reason = e.reason,
                   .tree = e.tree != 0 ? TreeName(e.tree) : "",
                   .level = e.level,
                   .new_block = e.new_block,
                   .new_twin_block = e.new_block != 0 ? pool_->TwinBlock(e.new_block) : 0,
                   .generation = e.generation};
  return r;
}

void MetadataRepairs::Absorb(std::vector<txn::RepairEvent> events) {
  std::vector<MetadataRepair> fresh;
  for (const txn::RepairEvent& e : events) {
    std::vector<uint64_t> bad = BadCopies(e.block, e.twin_block, e.primary_bad, e.twin_bad);
    bool news = e.kind != txn::RepairEvent::kRetired;
    for (uint64_t b : bad) {
      if (!recorded_.count(b)) unrecorded_.insert(b);
      if (!recorded_at_mount_.count(b)) news = true;
    }
    // A slot retired again at mount (its copy is still on the bad-block list) is old news.
    if (!news || (e.kind == txn::RepairEvent::kRetired && announced_.count(e.block))) continue;
    announced_.insert(e.block);
    fresh.push_back(ToReport(e));
  }
  unrecorded_count_.store(unrecorded_.size());
  if (fresh.empty()) return;
  log_.insert(log_.end(), fresh.begin(), fresh.end());
  if (observer_ != nullptr) observer_->Repaired(fresh);
}

bool MetadataRepairs::WantsCommit() const {
  return (pool_->PendingRepairs() > 0 && !stalled_.load()) || unrecorded_count_.load() > 0;
}

void MetadataRepairs::SetObserver(RepairObserver* observer) {
  observer_ = observer;
  if (observer_ != nullptr && !log_.empty()) observer_->Repaired(log_);
}

std::vector<MetadataRepair> MetadataRepairs::Since(size_t mark) const {
  if (mark >= log_.size()) return {};
  return {log_.begin() + static_cast<ptrdiff_t>(mark), log_.end()};
}

}  // namespace fs
}  // namespace daxfs
