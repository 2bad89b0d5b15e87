// GETFSMAP queries and owner paths.
// PLACEHOLDER until the reverse-map work lands: every call reports EOPNOTSUPP.
#include "fs/fs_impl.h"

namespace daxfs::fs {

Result<std::vector<FsmapRecord>> FsImpl::Fsmap(uint64_t, uint64_t, const std::optional<FsmapKey>&,
                                               size_t) {
  return Status::NotSupported("fsmap is not implemented yet");
}
Result<std::string> FsImpl::PathOf(Ino) { return Status::NotSupported("not implemented yet"); }

}  // namespace daxfs::fs
