// Metadata repairs from twins (metadup, docs/media.md "Metadata with twins"): the filesystem's
// half of the pool's repair queue. Before every commit it has the pool relocate the queued nodes
// and records each bad copy's block in the poison tree (a bad range with kBadMetadata), in the
// same transaction, so the retirement survives remount; at mount it hands those slots back to
// the pool (RetireNodes). It turns the pool's repair events into MetadataRepair reports for the
// mount's observer (the event log) and for the failure path. Knows the poison tree and the pool's
// repair API; nothing of files, mappings or how a bad copy was found.
#pragma once

#include <atomic>
#include <cstdint>
#include <set>
#include <vector>

#include "daxfs/media.h"
#include "fs/face.h"
#include "fs/op.h"
#include "txn/pool.h"

namespace daxfs::device {
class Device;
}

namespace daxfs::fs {

class NodeBudget;
class PoisonIndex;

class MetadataRepairs {
 public:
  MetadataRepairs(txn::Pool* pool, const device::Device* device, const PoisonIndex* poison,
                  NodeBudget* budget)
      : pool_(pool), device_(device), poison_(poison), budget_(budget) {}

  // Mount: the slots the poison tree records as retired (kBadMetadata), by their bad copy's
  // block; returns the node slots to hand to Pool::RetireNodes.
  Result<std::vector<uint64_t>> LoadAtMount(const ReadOp& op);

  // Just before a commit (TxnHooks::BeforeCommit): relocates the queued nodes now
  // (WriteTxn::Repair; ENOSPC leaves them queued) and records in the poison tree every bad copy
  // of a slot this commit repairs or retires, or an earlier one did without a record.
  Status BeforeCommit(WriteOp& op);
  // After the commit (or its abort): takes the pool's repair events, reports the new ones.
  void Committed();
  void Aborted();
  // Takes repair events that happened outside a commit of ours (at mount).
  void Absorb(std::vector<txn::RepairEvent> events);

  // Whether a commit would repair or record something now (cheap: two atomic loads).
  bool WantsCommit() const;

  // The observer hears every repair (under the filesystem lock), those before it was set first.
  void SetObserver(RepairObserver* observer);
  // Repairs reported so far this mount (a mark for Since).
  size_t reported() const { return log_.size(); }
  std::vector<MetadataRepair> Since(size_t mark) const;

 private:
  std::vector<uint64_t> BadCopies(uint64_t slot, uint64_t twin, bool primary_bad,
                                  bool twin_bad) const;
  MetadataRepair ToReport(const txn::RepairEvent& e) const;

  txn::Pool* pool_;
  const device::Device* device_;
  const PoisonIndex* poison_;
  NodeBudget* budget_;
  RepairObserver* observer_ = nullptr;
  std::set<uint64_t> recorded_;           // bad copies' blocks in the poison tree (committed)
  std::set<uint64_t> recorded_at_mount_;  // ... of those, the ones recorded before this mount
  std::set<uint64_t> unrecorded_;         // bad copies a commit must still record
  std::vector<uint64_t> recording_;       // recorded by the running commit
  std::set<uint64_t> announced_;          // slots whose repair was reported this mount
  std::atomic<size_t> unrecorded_count_{0};
  std::atomic<bool> stalled_{false};  // the last Repair ran out of space: wait for a change
  std::vector<MetadataRepair> log_;   // every repair reported this mount
};

}  // namespace daxfs::fs
