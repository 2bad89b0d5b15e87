// The namespace: directories and names (the dirent tree, key {dir ino, name-hash slot}), path
// resolution, create / link / unlink / rmdir / rename with POSIX rules, readdir batches, paths
// for display, attributes. Inodes come from Inodes; file data (symlink targets, freeing an
// unlinked file) only through FileData, never the extent map's layout or the data allocator.
// The home of name rules to come: rename flags, caller credentials on create, special files.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "daxfs/filesystem.h"
#include "format/records.h"
#include "fs/op.h"

namespace daxfs::fs {

class ExtentMap;
class FileData;
class NodeBudget;
class Orphans;

class Namespace {
 public:
  // Entries ReadDir gathers per read operation (handed to the caller outside it).
  static constexpr size_t kReadDirBatch = 128;

  Namespace(FileData* files, NodeBudget* budget, const ExtentMap* extents, Orphans* orphans)
      : files_(files), budget_(budget), extents_(extents), orphans_(orphans) {}

  // ENOENT, ENOTDIR, EINVAL for a bad name.
  Result<format::Inode> Lookup(const ReadOp& op, Ino dir, std::string_view name) const;
  // An absolute path; symlinks in the middle are followed (at most 40: ELOOP), the last one only
  // when `follow`. ENAMETOOLONG past 4096 bytes.
  Result<format::Inode> Resolve(const ReadOp& op, std::string_view path, bool follow) const;
  Result<std::string> ReadLink(const ReadOp& op, Ino ino) const;  // EINVAL if not a symlink
  // The entries of `dir` after `cookie` ("." 1, ".." 2, an entry its slot), at most `max`.
  Status ReadDirBatch(const ReadOp& op, Ino dir, uint64_t cookie, size_t max,
                      std::vector<DirEntry>* out) const;
  // A path naming `ino` ("/" for the root), for display; ENOENT if none.
  Result<std::string> PathOf(const ReadOp& op, Ino ino) const;

  Result<format::Inode> SetAttr(WriteOp& op, Ino ino, const SetAttrRequest& request);
  // A file, directory, symlink (`target`) or special file (`rdev` for a device node) named
  // `name` in `dir`, owned by `cred` (set-gid directories: filesystem.h). EEXIST, EMLINK, ENOSPC.
  Result<format::Inode> Create(WriteOp& op, Ino dir, std::string_view name, format::FileType type,
                               uint32_t mode, std::string_view target,
                               const Credentials& cred = {}, uint64_t rdev = 0);
  // A hard link: `ino` gets the new name. EPERM for directories, EMLINK.
  Result<format::Inode> Link(WriteOp& op, Ino ino, Ino new_dir, std::string_view new_name);
  Status Unlink(WriteOp& op, Ino dir, std::string_view name);  // EISDIR for directories
  Status Rmdir(WriteOp& op, Ino dir, std::string_view name);   // ENOTEMPTY, ENOTDIR, EBUSY
  // `flags`: RenameFlags (filesystem.h). EINVAL for a bad combination, EEXIST (no-replace),
  // ENOENT (exchange without a target).
  Status Rename(WriteOp& op, Ino old_dir, std::string_view old_name, Ino new_dir,
                std::string_view new_name, uint32_t flags = 0);
  // An orphan (an inode with no link left and an orphan record) that nothing references any more
  // goes: its data, the inode and the record. Does nothing (Ok) when `ino` is no orphan or is
  // referenced again.
  Status FreeOrphan(WriteOp& op, Ino ino);

 private:
  struct NameSlot;    // where a name is, or could go, in a directory
  struct RenamePlan;  // everything Rename checked, ready to apply

  Result<format::Inode> GetDirectory(const ReadOp& op, Ino dir) const;  // ENOENT, ENOTDIR
  Result<NameSlot> FindName(const ReadOp& op, Ino dir, std::string_view name) const;
  static Result<uint64_t> FreeSlotFor(const NameSlot& where, Ino dir, std::string_view name);
  // EUCLEAN if the entry names a missing inode.
  Result<format::Inode> EntryInode(const ReadOp& op, Ino dir, const format::Dirent& entry) const;
  Result<format::Inode> LookupIn(const ReadOp& op, const format::Inode& dir,
                                 std::string_view name) const;
  Result<std::string> LinkTarget(const ReadOp& op, const format::Inode& link) const;
  static Status PutEntry(WriteOp& op, Ino dir, uint64_t slot, const format::Inode& inode,
                         std::string_view name);
  static Status DeleteEntry(WriteOp& op, Ino dir, uint64_t slot);
  Result<bool> HasEntries(const ReadOp& op, Ino dir) const;
  // Tree updates that dropping the last link of `inode` costs on top of deleting it.
  Result<uint64_t> TreeUpdatesToFree(const ReadOp& op, const format::Inode& inode) const;
  // One link goes away; at the last, the data and the inode go too (data first), unless the
  // inode is referenced: it then stays as an orphan.
  Status DropLink(WriteOp& op, format::Inode* inode, int64_t now);
  // Deletes `inode` and its extended attributes.
  Status DeleteInode(WriteOp& op, const format::Inode& inode);
  Status CheckNotInside(const ReadOp& op, Ino moving_dir, Ino new_parent) const;
  Result<RenamePlan> PlanRename(const ReadOp& op, Ino old_dir, std::string_view old_name,
                                Ino new_dir, std::string_view new_name, uint32_t flags) const;
  Status CheckReplace(const ReadOp& op, const RenamePlan& plan) const;
  Status ApplyRename(WriteOp& op, RenamePlan* plan, std::string_view new_name);
  Status CheckExchange(const ReadOp& op, const RenamePlan& plan) const;
  Status ApplyExchange(WriteOp& op, RenamePlan* plan, std::string_view old_name,
                       std::string_view new_name);

  FileData* files_;
  NodeBudget* budget_;
  const ExtentMap* extents_;
  Orphans* orphans_;
};

}  // namespace daxfs::fs
