// Reflink operations: clone, clone range, dedupe, unshare, copy_file_range.
// PLACEHOLDER until the reflink work lands: every call reports EOPNOTSUPP.
#include "fs/fs_impl.h"

namespace daxfs::fs {

Status FsImpl::Clone(Ino, Ino) { return Status::NotSupported("reflink is not implemented yet"); }
Status FsImpl::CloneRange(Ino, uint64_t, Ino, uint64_t, uint64_t) {
  return Status::NotSupported("reflink is not implemented yet");
}
Result<DedupeResult> FsImpl::Dedupe(Ino, uint64_t, Ino, uint64_t, uint64_t) {
  return Status::NotSupported("dedupe is not implemented yet");
}
Status FsImpl::Unshare(Ino, uint64_t, uint64_t) {
  return Status::NotSupported("unshare is not implemented yet");
}
Result<uint64_t> FsImpl::CopyFileRange(Ino, uint64_t, Ino, uint64_t, uint64_t) {
  return Status::NotSupported("copy_file_range is not implemented yet");
}

}  // namespace daxfs::fs
