// Offline repair of the reverse map and refcount tree.
// PLACEHOLDER until the reverse-map work lands: reports EOPNOTSUPP.
#include "fs/fs_impl.h"

namespace daxfs::fs {

Result<RepairReport> FsImpl::RebuildReverseMaps() {
  return Status::NotSupported("repair is not implemented yet");
}

}  // namespace daxfs::fs
