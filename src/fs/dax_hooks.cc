// What the DAX layer needs from the filesystem: preparing a file range for mapping and telling
// the mapping observer when layouts change. PLACEHOLDER (issue 5, DAX work).
#include "fs/fs_impl.h"

namespace daxfs::fs {

void FsImpl::SetMappingObserver(MappingObserver* observer) { observer_ = observer; }
Status FsImpl::PrepareMapping(Ino, uint64_t, uint64_t, bool,
                              const std::function<Status(const MapLayout&)>&) {
  return Status::NotSupported("PrepareMapping: not implemented yet");
}
void FsImpl::NoteLayoutChange(Ino, uint64_t, uint64_t) {}
void FsImpl::PublishLayoutChangesLocked() {}

}  // namespace daxfs::fs
