// Media failures and the poison tree; the DAX hooks (layouts, the mapping observer).
// PLACEHOLDER: implemented by the media-failure work of issue 5.
#include "fs/fs_impl.h"

namespace daxfs {

const char* RangeKindName(RangeKind kind) {
  switch (kind) {
    case RangeKind::kSuperblock: return "superblock";
    case RangeKind::kMetadata: return "metadata";
    case RangeKind::kData: return "data";
    case RangeKind::kFree: return "free";
    case RangeKind::kOutside: return "outside";
  }
  return "unknown";
}

namespace fs {

Result<MediaFailureRecord> FsImpl::RecordMediaFailure(uint64_t, uint64_t, uint32_t) {
  return Status::NotSupported("RecordMediaFailure: not implemented yet");
}
Result<MediaErrorList> FsImpl::MediaErrors() {
  return Status::NotSupported("MediaErrors: not implemented yet");
}
Result<std::vector<RangePiece>> FsImpl::ClassifyRange(uint64_t, uint64_t) {
  return Status::NotSupported("ClassifyRange: not implemented yet");
}
Status FsImpl::ForEachLostRangeLocked(Ino, uint64_t, uint64_t,
                                     const std::function<void(uint64_t, uint64_t, uint64_t)>&) {
  return Status::Ok();  // placeholder: no losses yet
}

}  // namespace fs
}  // namespace daxfs
