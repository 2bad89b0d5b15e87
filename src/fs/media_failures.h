// Media failures, the filesystem half of notify_failure (docs/media.md): classifying a failed
// device range by address (superblock, metadata, data, free), planning what it means (every
// file owner of the data pieces, the losses and bad ranges not known yet, the free space to
// retire), recording that in the poison tree in one write operation (or, read-only, in memory
// for this mount), shutting down on a metadata hit, and the list of everything known to be bad.
// Changes extent maps never; knows nothing of mappings or signals (they hear of lost ranges as
// layout changes).
#pragma once

#include <cstdint>
#include <vector>

#include "daxfs/media.h"
#include "fs/face.h"
#include "fs/op.h"

namespace daxfs::device {
class Device;
}
namespace daxfs::txn {
class Pool;
}

namespace daxfs::fs {

class DataSpace;
class Layouts;
class MetadataRepairs;
class Namespace;
class NodeBudget;
class OpRunner;
class Owners;
class PoisonIndex;

class MediaFailures {
 public:
  struct Parts {
    OpRunner* runner;
    txn::Pool* pool;
    device::Device* device;
    DataSpace* data;
    PoisonIndex* poison;
    NodeBudget* budget;
    const Owners* owners;
    const Namespace* names;
    const Layouts* layouts;
    const MetadataRepairs* repairs;
  };
  explicit MediaFailures(const Parts& parts) : p_(parts) {}

  // See FsFace::RecordCheckedFailure (`range` is checked: CheckFailedRange). Plans once, under
  // one hold of the filesystem lock with the write operation that records the plan. Runs its
  // own operations.
  Result<MediaFailureRecord> Record(const DeviceRange& range, uint32_t flags,
                                    FailurePlanObserver* observer);
  // See FsImpl::ClassifyRange. Runs its own read operation.
  Result<std::vector<RangePiece>> Classify(uint64_t offset, uint64_t length);
  // See Filesystem::MediaErrors.
  Result<MediaErrorList> List();

 private:
  struct Plan;  // what a failure hit and what recording it changes
  std::vector<RangePiece> ClassifyNow(uint64_t offset, uint64_t length) const;
  Status MakePlan(const ReadOp& op, uint64_t offset, uint64_t length, Plan* plan) const;
  Status Apply(WriteOp& op, const Plan& plan);
  void KeepInMemory(const ReadOp& op, const Plan& plan);

  Parts p_;
};

}  // namespace daxfs::fs
