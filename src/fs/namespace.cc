// Directories and names (namespace.h). Names "." and ".." (POSIX leaves the errno to us in
// places; these follow Linux where it is clear): Lookup and Resolve treat them as path
// components; creating one (Create, Link) fails with EEXIST (the name always exists); Unlink of
// one fails with EISDIR (it is a directory); Rmdir and Rename with EINVAL (POSIX rmdir/rename).
#include "fs/namespace.h"

#include <fmt/core.h>
#include <sys/stat.h>

#include <algorithm>
#include <limits>

#include "fs/blocks.h"
#include "fs/extent_map.h"
#include "fs/file_data.h"
#include "fs/inodes.h"
#include "fs/node_budget.h"
#include "fs/xattrs.h"
#include "fs/orphans.h"

namespace daxfs::fs {

using format::Dirent;
using format::FileType;
using format::Inode;

namespace {

constexpr uint32_t kMaxLinks = 65000;          // link count limit (EMLINK), as ext4
constexpr int kMaxSymlinkFollows = 40;         // per resolution (ELOOP), as Linux MAXSYMLINKS
constexpr uint64_t kExtentsPerFreeUpdate = 8;  // extent records one reserved update covers

bool IsDotName(std::string_view name) { return name == "." || name == ".."; }

// A name as a directory entry: 1..255 bytes, no '/' or NUL. "." and ".." fail with `dot_errno`
// unless it is 0.
// A directory removed while open (an orphan) takes no new names (ENOENT, as Linux).
Status CheckAlive(const Inode& dir) {
  if (dir.nlink != 0) return Status::Ok();
  return Status::NotFound(fmt::format("directory {} was removed", dir.ino));
}

Status ValidateName(std::string_view name, int dot_errno) {
  if (name.empty()) return Status::Invalid("empty file name");
  if (name.size() > format::kMaxNameLen) {
    return Status::Error(ENAMETOOLONG, fmt::format("file name of {} bytes (at most {})",
                                                   name.size(), format::kMaxNameLen));
  }
  if (name.find('/') != std::string_view::npos || name.find('\0') != std::string_view::npos) {
    return Status::Invalid("file name contains '/' or a NUL byte");
  }
  if (dot_errno != 0 && IsDotName(name)) {
    return Status::Error(dot_errno, fmt::format("'{}' cannot be used here", name));
  }
  return Status::Ok();
}

Status ValidateSymlinkTarget(std::string_view target) {
  if (target.empty()) return Status::NotFound("empty symlink target");
  if (target.size() > format::kMaxSymlinkLen) {
    return Status::Error(ENAMETOOLONG, fmt::format("symlink target of {} bytes (at most {})",
                                                   target.size(), format::kMaxSymlinkLen));
  }
  if (target.find('\0') != std::string_view::npos) {
    return Status::Invalid("symlink target contains a NUL byte");
  }
  return Status::Ok();
}

Status NotADirectory(Ino ino) {
  return Status::Error(ENOTDIR, fmt::format("inode {} is not a directory", ino));
}

// Pushes the components of `path` onto `todo` so that the first is on top. A trailing slash
// adds a "." so the last name must be a directory (and is followed if it is a symlink).
void PushComponents(std::string_view path, std::vector<std::string>* todo) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i < path.size()) {
    size_t end = std::min(path.find('/', i), path.size());
    if (end > i) parts.emplace_back(path.substr(i, end - i));
    i = end + 1;
  }
  if (!parts.empty() && path.back() == '/') parts.emplace_back(".");
  todo->insert(todo->end(), parts.rbegin(), parts.rend());
}

Inode NewInode(Ino ino, FileType type, uint32_t mode, Ino dir, int64_t now) {
  bool is_dir = type == FileType::kDirectory;
  return Inode{.ino = ino,
               .type = type,
               .mode = static_cast<uint16_t>(mode & 07777),
               .nlink = is_dir ? 2u : 1u,
               .atime_ns = now,
               .mtime_ns = now,
               .ctime_ns = now,
               .btime_ns = now,
               .parent = is_dir ? dir : 0};
}

void Touch(Inode* dir, int64_t now) { dir->mtime_ns = dir->ctime_ns = now; }

// The owner of a new inode, as Linux's inode_init_owner and mode_strip_sgid: the caller's uid;
// the set-gid directory's group (a new directory inherits S_ISGID) or the caller's gid; a new
// non-directory in a set-gid directory loses a requested S_ISGID (with group execute) when the
// caller is neither root nor in that group.
void OwnNewInode(Inode* n, const Inode& dir, const Credentials& cred) {
  n->uid = cred.uid;
  if (!(dir.mode & S_ISGID)) {
    n->gid = cred.gid;
    return;
  }
  n->gid = dir.gid;
  if (n->type == FileType::kDirectory) {
    n->mode |= S_ISGID;
  } else if ((n->mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP) && cred.uid != 0 &&
             !cred.InGroup(dir.gid)) {
    n->mode &= ~S_ISGID;
  }
}

}  // namespace

// Where `name` is in a directory (when it exists) and the first unused slot of its hash.
struct Namespace::NameSlot {
  std::optional<uint64_t> slot;  // set when the name exists
  Dirent entry;                  // the entry, when it exists
  std::optional<uint64_t> free_slot;
};

struct Namespace::RenamePlan {
  Inode old_parent;
  Inode new_parent;  // unused when same_dir
  bool same_dir = false;
  bool no_op = false;  // both names already name the same inode
  Inode source;
  uint64_t source_slot = 0;
  std::optional<Inode> target;  // the inode the new name named, replaced
  uint64_t new_slot = 0;
  uint64_t free_updates = 0;  // tree updates for freeing the target's data
};

// ---- Helpers (inside an operation).

Result<Inode> Namespace::GetDirectory(const ReadOp& op, Ino dir) const {
  Result<Inode> n = Inodes::Get(op, dir);
  if (!n.ok()) {
    if (!n.status().IsNotFound()) return n.status();
    return Status::NotFound(fmt::format("directory {} does not exist", dir));
  }
  if (n->type != FileType::kDirectory) return NotADirectory(dir);
  return n;
}

// Scans the up-to-256 slots of the name's hash: SeekGE {dir, base}, stop past base | 0xff.
Result<Namespace::NameSlot> Namespace::FindName(const ReadOp& op, Ino dir,
                                                std::string_view name) const {
  const uint64_t base = format::NameHashSlot(name);
  const uint64_t last = base | format::kSlotCollisionMask;
  NameSlot out;
  uint64_t next = base;  // lowest slot of the hash not seen yet
  btree::Cursor c(op.dirents());
  for (Status s = c.SeekGE(DirentKey(dir, base));; s = c.Next()) {
    RETURN_IF_ERROR(s);
    if (!c.Valid() || c.key().w[0] != dir || c.key().w[1] > last) break;
    uint64_t slot = c.key().w[1];
    if (!out.free_slot && slot != next) out.free_slot = next;
    next = slot + 1;
    if (format::DirentNameIs(c.value().data(), name)) {
      ASSIGN_OR_RETURN(out.entry, format::DecodeDirent(dir, slot, c.value().data()));
      out.slot = slot;
      return out;
    }
  }
  if (!out.free_slot && next <= last) out.free_slot = next;
  return out;
}

// The slot a new entry `name` takes: EEXIST if the name is there, ENOSPC if its hash is full.
Result<uint64_t> Namespace::FreeSlotFor(const NameSlot& where, Ino dir, std::string_view name) {
  if (where.slot) {
    return Status::Exists(fmt::format("'{}' already exists in directory {}", name, dir));
  }
  if (!where.free_slot) {
    return Status::NoSpace(
        fmt::format("directory {}: too many names with the same hash as '{}' (256)", dir, name));
  }
  return *where.free_slot;
}

Result<Inode> Namespace::EntryInode(const ReadOp& op, Ino dir, const Dirent& entry) const {
  Result<Inode> n = Inodes::Get(op, entry.ino);
  if (n.ok() || !n.status().IsNotFound()) return n;
  return Status::Corruption(fmt::format("directory {}: entry '{}' points to missing inode {}", dir,
                                        entry.name, entry.ino));
}

Result<Inode> Namespace::LookupIn(const ReadOp& op, const Inode& dir, std::string_view name) const {
  RETURN_IF_ERROR(ValidateName(name, 0));
  if (dir.type != FileType::kDirectory) return NotADirectory(dir.ino);
  if (name == ".") return dir;
  if (name == "..") return Inodes::Get(op, dir.parent);
  ASSIGN_OR_RETURN(NameSlot where, FindName(op, dir.ino, name));
  if (!where.slot) {
    return Status::NotFound(fmt::format("'{}' does not exist in directory {}", name, dir.ino));
  }
  return EntryInode(op, dir.ino, where.entry);
}

Result<Inode> Namespace::Resolve(const ReadOp& op, std::string_view path, bool follow) const {
  if (path.empty() || path[0] != '/') {
    return Status::Invalid(fmt::format("'{}' is not an absolute path", path));
  }
  if (path.size() > format::kMaxPathLen) {
    return Status::Error(ENAMETOOLONG, fmt::format("path of {} bytes (at most {})", path.size(),
                                                   format::kMaxPathLen));
  }
  std::vector<std::string> todo;  // components left, the next one last
  PushComponents(path, &todo);
  ASSIGN_OR_RETURN(Inode cur, Inodes::Get(op, format::kRootIno));
  int follows = 0;
  while (!todo.empty()) {
    std::string part = std::move(todo.back());
    todo.pop_back();
    ASSIGN_OR_RETURN(Inode next, LookupIn(op, cur, part));
    if (next.type != FileType::kSymlink || (todo.empty() && !follow)) {
      cur = std::move(next);
      continue;
    }
    if (++follows > kMaxSymlinkFollows) {
      return Status::Error(ELOOP,
                           fmt::format("'{}': more than {} symlinks", path, kMaxSymlinkFollows));
    }
    ASSIGN_OR_RETURN(std::string target, LinkTarget(op, next));
    if (target[0] == '/') {
      ASSIGN_OR_RETURN(cur, Inodes::Get(op, format::kRootIno));
    }
    PushComponents(target, &todo);
  }
  return cur;
}

Result<std::string> Namespace::LinkTarget(const ReadOp& op, const Inode& link) const {
  if (link.type != FileType::kSymlink) {
    return Status::Invalid(fmt::format("inode {} is not a symlink", link.ino));
  }
  if (link.size == 0 || link.size > format::kMaxSymlinkLen) {
    return Status::Corruption(fmt::format("symlink {}: target length {}", link.ino, link.size));
  }
  std::string target(link.size, '\0');
  ASSIGN_OR_RETURN(
      size_t got,
      files_->ReadData(op, link, 0, {reinterpret_cast<uint8_t*>(target.data()), target.size()}));
  if (got != target.size()) {
    return Status::Corruption(
        fmt::format("symlink {}: read {} of {} target bytes", link.ino, got, target.size()));
  }
  return target;
}

Status Namespace::PutEntry(WriteOp& op, Ino dir, uint64_t slot, const Inode& inode,
                           std::string_view name) {
  uint8_t value[format::kDirentValueSize];
  format::EncodeDirent(Dirent{.ino = inode.ino, .type = inode.type, .name = std::string(name)},
                       value);
  ASSIGN_OR_RETURN(bool added, op.writer(FsTree::kDirents).Put(DirentKey(dir, slot), value));
  (void)added;
  return Status::Ok();
}

Status Namespace::DeleteEntry(WriteOp& op, Ino dir, uint64_t slot) {
  return op.writer(FsTree::kDirents).Delete(DirentKey(dir, slot));
}

Result<bool> Namespace::HasEntries(const ReadOp& op, Ino dir) const {
  btree::Cursor c(op.dirents());
  RETURN_IF_ERROR(c.SeekGE(DirentKey(dir, 0)));
  return c.Valid() && c.key().w[0] == dir;
}

// Tree updates that dropping the last link of `inode` costs on top of deleting it: deleting its
// xattr records and, for a file, freeing its extents (a generous share of one path copy per
// kExtentsPerFreeUpdate records).
Result<uint64_t> Namespace::TreeUpdatesToFree(const ReadOp& op, const Inode& inode) const {
  if (inode.type != FileType::kDirectory && inode.nlink > 1) return 0;
  ASSIGN_OR_RETURN(uint64_t xattrs, Xattrs::UpdatesToFree(op, inode.ino));
  if (inode.type == FileType::kDirectory) return xattrs;
  uint64_t extents = 0;
  RETURN_IF_ERROR(extents_->ForEach(op, inode.ino, 0, kMaxFileBlocks,
                                    [&](uint64_t, const format::ExtentRecord&) {
                                      ++extents;
                                      return true;
                                    }));
  return 2 + extents / kExtentsPerFreeUpdate + xattrs;
}

// An inode goes, with its extended attributes, in the operation that deletes it.
Status Namespace::DeleteInode(WriteOp& op, const Inode& inode) {
  RETURN_IF_ERROR(Xattrs::DeleteAll(op, inode.ino));
  return Inodes::Delete(op, inode);
}

// One link of a file or symlink goes away; at the last, its data and inode go too. The data is
// freed first, before any other change, so a failure there leaves everything as it was.
Status Namespace::DropLink(WriteOp& op, Inode* inode, int64_t now) {
  if (inode->nlink > 1) {
    --inode->nlink;
    inode->ctime_ns = now;
    return Inodes::Put(op, *inode);
  }
  if (orphans_->IsRetained(inode->ino)) return Orphans::Keep(op, inode, now);
  RETURN_IF_ERROR(files_->FreeAllData(op, inode));
  return DeleteInode(op, *inode);
}

// Tree updates (3 + freeing): the inode (and the header), the orphan record, freeing the data.
Status Namespace::FreeOrphan(WriteOp& op, Ino ino) {
  if (orphans_->IsRetained(ino)) return Status::Ok();
  ASSIGN_OR_RETURN(bool orphan, Orphans::IsOrphan(op, ino));
  if (!orphan) return Status::Ok();
  Result<Inode> n = Inodes::Get(op, ino);
  if (!n.ok() && n.status().IsNotFound()) {
    return Status::Corruption(fmt::format("orphan record for inode {}, which does not exist", ino));
  }
  RETURN_IF_ERROR(n.status());
  if (n->nlink != 0) {
    return Status::Corruption(
        fmt::format("orphan record for inode {}, which has {} links", ino, n->nlink));
  }
  n->nlink = 1;  // as TreeUpdatesToFree counts a last link
  ASSIGN_OR_RETURN(uint64_t free_updates, TreeUpdatesToFree(op, *n));
  n->nlink = 0;
  RETURN_IF_ERROR(budget_->ReserveNodes(op, 3 + free_updates));
  if (n->type != FileType::kDirectory) RETURN_IF_ERROR(files_->FreeAllData(op, &*n));
  RETURN_IF_ERROR(DeleteInode(op, *n));
  return Orphans::DeleteRecord(op, ino);
}

// ---- Lookup and attributes.

Result<Inode> Namespace::Lookup(const ReadOp& op, Ino dir, std::string_view name) const {
  RETURN_IF_ERROR(ValidateName(name, 0));
  ASSIGN_OR_RETURN(Inode d, GetDirectory(op, dir));
  return LookupIn(op, d, name);
}

Result<Inode> Namespace::SetAttr(WriteOp& op, Ino ino, const SetAttrRequest& request) {
  ASSIGN_OR_RETURN(Inode n, Inodes::Get(op, ino));
  RETURN_IF_ERROR(budget_->ReserveNodes(op, 1));
  if (request.size) {  // first: it validates and reserves before it changes anything
    RETURN_IF_ERROR(files_->Truncate(op, ino, *request.size));
    ASSIGN_OR_RETURN(n, Inodes::Get(op, ino));  // (its leaf is already written: no new node)
  }
  const int64_t now = NowNs();
  if (request.mode) n.mode = static_cast<uint16_t>(*request.mode & 07777);
  if (request.uid) n.uid = *request.uid;
  if (request.gid) n.gid = *request.gid;
  if (request.atime_ns) n.atime_ns = *request.atime_ns;
  if (request.mtime_ns) n.mtime_ns = *request.mtime_ns;
  if (request.atime_now) n.atime_ns = now;
  if (request.mtime_now) n.mtime_ns = now;
  n.ctime_ns = now;
  RETURN_IF_ERROR(Inodes::Put(op, n));
  return n;
}

Result<std::string> Namespace::ReadLink(const ReadOp& op, Ino ino) const {
  ASSIGN_OR_RETURN(Inode n, Inodes::Get(op, ino));
  return LinkTarget(op, n);
}

// ---- Creating names.

// Tree updates: the new inode, its entry, the parent inode, the inode table's header; a
// symlink's data adds an extent.
Result<Inode> Namespace::Create(WriteOp& op, Ino dir, std::string_view name, FileType type,
                                uint32_t mode, std::string_view target, const Credentials& cred,
                                uint64_t rdev) {
  const bool is_dir = type == FileType::kDirectory;
  RETURN_IF_ERROR(ValidateName(name, EEXIST));
  if (type == FileType::kSymlink) RETURN_IF_ERROR(ValidateSymlinkTarget(target));
  ASSIGN_OR_RETURN(Inode parent, GetDirectory(op, dir));
  RETURN_IF_ERROR(CheckAlive(parent));
  if (is_dir && parent.nlink >= kMaxLinks) {
    return Status::Error(EMLINK, fmt::format("directory {} has too many subdirectories", dir));
  }
  ASSIGN_OR_RETURN(NameSlot where, FindName(op, dir, name));
  ASSIGN_OR_RETURN(uint64_t slot, FreeSlotFor(where, dir, name));
  ASSIGN_OR_RETURN(Ino ino, Inodes::NextNumber(op));
  RETURN_IF_ERROR(budget_->ReserveNodes(op, type == FileType::kSymlink ? 9 : 4));

  const int64_t now = NowNs();
  Inode n = NewInode(ino, type, mode, dir, now);
  OwnNewInode(&n, parent, cred);
  n.rdev = rdev;
  if (type == FileType::kSymlink) {  // first: it allocates data, all or nothing
    RETURN_IF_ERROR(files_->WriteData(
        op, &n, 0, {reinterpret_cast<const uint8_t*>(target.data()), target.size()}));
  }
  RETURN_IF_ERROR(Inodes::Allocate(op, ino, type));
  RETURN_IF_ERROR(Inodes::Put(op, n));
  RETURN_IF_ERROR(PutEntry(op, dir, slot, n, name));
  ++parent.size;
  if (is_dir) ++parent.nlink;
  Touch(&parent, now);
  RETURN_IF_ERROR(Inodes::Put(op, parent));
  return n;
}

// Tree updates: the inode, the new entry, the parent inode.
Result<Inode> Namespace::Link(WriteOp& op, Ino ino, Ino new_dir, std::string_view new_name) {
  RETURN_IF_ERROR(ValidateName(new_name, EEXIST));
  ASSIGN_OR_RETURN(Inode n, Inodes::Get(op, ino));
  if (n.type == FileType::kDirectory) {
    return Status::Error(EPERM, fmt::format("inode {} is a directory: no hard links", ino));
  }
  if (n.nlink >= kMaxLinks) {
    return Status::Error(EMLINK, fmt::format("inode {} has {} links already", ino, n.nlink));
  }
  if (n.nlink == 0) {  // an orphan: as Linux, no new name for an unlinked file
    return Status::NotFound(fmt::format("inode {} has no link left (unlinked while open)", ino));
  }
  ASSIGN_OR_RETURN(Inode parent, GetDirectory(op, new_dir));
  RETURN_IF_ERROR(CheckAlive(parent));
  ASSIGN_OR_RETURN(NameSlot where, FindName(op, new_dir, new_name));
  ASSIGN_OR_RETURN(uint64_t slot, FreeSlotFor(where, new_dir, new_name));
  RETURN_IF_ERROR(budget_->ReserveNodes(op, 3));

  const int64_t now = NowNs();
  ++n.nlink;
  n.ctime_ns = now;
  RETURN_IF_ERROR(Inodes::Put(op, n));
  RETURN_IF_ERROR(PutEntry(op, new_dir, slot, n, new_name));
  ++parent.size;
  Touch(&parent, now);
  RETURN_IF_ERROR(Inodes::Put(op, parent));
  return n;
}

// ---- Removing names.

// Tree updates: the entry, the parent, the inode (updated or deleted, with the header) and
// freeing its data.
Status Namespace::Unlink(WriteOp& op, Ino dir, std::string_view name) {
  RETURN_IF_ERROR(ValidateName(name, EISDIR));
  ASSIGN_OR_RETURN(Inode parent, GetDirectory(op, dir));
  ASSIGN_OR_RETURN(NameSlot where, FindName(op, dir, name));
  if (!where.slot) {
    return Status::NotFound(fmt::format("'{}' does not exist in directory {}", name, dir));
  }
  ASSIGN_OR_RETURN(Inode n, EntryInode(op, dir, where.entry));
  if (n.type == FileType::kDirectory) {
    return Status::Error(EISDIR, fmt::format("'{}' is a directory (use rmdir)", name));
  }
  ASSIGN_OR_RETURN(uint64_t free_updates, TreeUpdatesToFree(op, n));
  RETURN_IF_ERROR(budget_->ReserveNodes(op, 5 + free_updates));

  const int64_t now = NowNs();
  RETURN_IF_ERROR(DropLink(op, &n, now));
  RETURN_IF_ERROR(DeleteEntry(op, dir, *where.slot));
  --parent.size;
  Touch(&parent, now);
  return Inodes::Put(op, parent);
}

// Tree updates: the entry, the directory's inode, the parent inode, the header.
Status Namespace::Rmdir(WriteOp& op, Ino dir, std::string_view name) {
  RETURN_IF_ERROR(ValidateName(name, EINVAL));
  ASSIGN_OR_RETURN(Inode parent, GetDirectory(op, dir));
  ASSIGN_OR_RETURN(NameSlot where, FindName(op, dir, name));
  if (!where.slot) {
    return Status::NotFound(fmt::format("'{}' does not exist in directory {}", name, dir));
  }
  ASSIGN_OR_RETURN(Inode child, EntryInode(op, dir, where.entry));
  if (child.type != FileType::kDirectory) {
    return Status::Error(ENOTDIR, fmt::format("'{}' is not a directory", name));
  }
  if (child.ino == format::kRootIno) return Status::Busy("the root directory cannot be removed");
  ASSIGN_OR_RETURN(bool has_entries, HasEntries(op, child.ino));
  if (has_entries) {
    return Status::Error(ENOTEMPTY, fmt::format("directory '{}' is not empty", name));
  }
  ASSIGN_OR_RETURN(uint64_t free_updates, TreeUpdatesToFree(op, child));
  RETURN_IF_ERROR(budget_->ReserveNodes(op, 5 + free_updates));

  const int64_t now = NowNs();
  if (orphans_->IsRetained(child.ino)) {
    RETURN_IF_ERROR(Orphans::Keep(op, &child, now));
  } else {
    RETURN_IF_ERROR(DeleteInode(op, child));
  }
  RETURN_IF_ERROR(DeleteEntry(op, dir, *where.slot));
  --parent.size;
  --parent.nlink;
  Touch(&parent, now);
  return Inodes::Put(op, parent);
}

// ---- Rename.

Status Namespace::Rename(WriteOp& op, Ino old_dir, std::string_view old_name, Ino new_dir,
                         std::string_view new_name, uint32_t flags) {
  if (flags & ~static_cast<uint32_t>(kRenameNoReplace | kRenameExchange)) {
    return Status::Invalid(fmt::format("rename: unsupported flags 0x{:x}", flags));
  }
  if ((flags & kRenameNoReplace) && (flags & kRenameExchange)) {
    return Status::Invalid("rename: RENAME_NOREPLACE and RENAME_EXCHANGE together");
  }
  ASSIGN_OR_RETURN(RenamePlan plan, PlanRename(op, old_dir, old_name, new_dir, new_name, flags));
  if (plan.no_op) return Status::Ok();
  if (flags & kRenameExchange) {
    RETURN_IF_ERROR(budget_->ReserveNodes(op, 6));
    return ApplyExchange(op, &plan, old_name, new_name);
  }
  RETURN_IF_ERROR(budget_->ReserveNodes(op, 8 + plan.free_updates));
  return ApplyRename(op, &plan, new_name);
}

Result<Namespace::RenamePlan> Namespace::PlanRename(const ReadOp& op, Ino old_dir,
                                                    std::string_view old_name, Ino new_dir,
                                                    std::string_view new_name,
                                                    uint32_t flags) const {
  RETURN_IF_ERROR(ValidateName(old_name, EINVAL));
  RETURN_IF_ERROR(ValidateName(new_name, EINVAL));
  RenamePlan plan;
  ASSIGN_OR_RETURN(plan.old_parent, GetDirectory(op, old_dir));
  ASSIGN_OR_RETURN(plan.new_parent, GetDirectory(op, new_dir));
  RETURN_IF_ERROR(CheckAlive(plan.new_parent));
  plan.same_dir = old_dir == new_dir;
  ASSIGN_OR_RETURN(NameSlot from, FindName(op, old_dir, old_name));
  if (!from.slot) {
    return Status::NotFound(fmt::format("'{}' does not exist in directory {}", old_name, old_dir));
  }
  plan.source_slot = *from.slot;
  ASSIGN_OR_RETURN(plan.source, EntryInode(op, old_dir, from.entry));
  ASSIGN_OR_RETURN(NameSlot to, FindName(op, new_dir, new_name));
  if (to.slot && (flags & kRenameNoReplace)) {
    return Status::Exists(fmt::format("rename: '{}' exists in directory {}", new_name, new_dir));
  }
  if (!to.slot && (flags & kRenameExchange)) {
    return Status::NotFound(
        fmt::format("rename: '{}' does not exist in directory {} to exchange", new_name, new_dir));
  }
  if (to.slot) {
    if (to.entry.ino == plan.source.ino) {
      plan.no_op = true;
      return plan;
    }
    plan.new_slot = *to.slot;
    ASSIGN_OR_RETURN(plan.target, EntryInode(op, new_dir, to.entry));
    ASSIGN_OR_RETURN(plan.free_updates, TreeUpdatesToFree(op, *plan.target));
  } else {
    ASSIGN_OR_RETURN(plan.new_slot, FreeSlotFor(to, new_dir, new_name));
  }
  if (plan.source.type == FileType::kDirectory && !plan.same_dir) {
    RETURN_IF_ERROR(CheckNotInside(op, plan.source.ino, new_dir));
  }
  if (flags & kRenameExchange) {
    RETURN_IF_ERROR(CheckExchange(op, plan));
  } else {
    RETURN_IF_ERROR(CheckReplace(op, plan));
  }
  return plan;
}

// RENAME_EXCHANGE across parents: the target directory must not be above the old name, and a
// parent that gains a subdirectory must have room for its link.
Status Namespace::CheckExchange(const ReadOp& op, const RenamePlan& plan) const {
  if (plan.same_dir) return Status::Ok();
  const bool source_dir = plan.source.type == FileType::kDirectory;
  const bool target_dir = plan.target->type == FileType::kDirectory;
  if (target_dir) RETURN_IF_ERROR(CheckNotInside(op, plan.target->ino, plan.old_parent.ino));
  if (source_dir && !target_dir && plan.new_parent.nlink >= kMaxLinks) {
    return Status::Error(
        EMLINK, fmt::format("directory {} has too many subdirectories", plan.new_parent.ino));
  }
  if (target_dir && !source_dir && plan.old_parent.nlink >= kMaxLinks) {
    return Status::Error(
        EMLINK, fmt::format("directory {} has too many subdirectories", plan.old_parent.ino));
  }
  return Status::Ok();
}

// Tree updates (6): both entries, both inodes, both parents. Each name keeps its slot and gets
// the other inode; a directory that changes parent gets its ".." and the link counts follow.
Status Namespace::ApplyExchange(WriteOp& op, RenamePlan* plan, std::string_view old_name,
                                std::string_view new_name) {
  const int64_t now = NowNs();
  Inode& source = plan->source;
  Inode& target = *plan->target;
  Inode* old_parent = &plan->old_parent;
  Inode* np = plan->same_dir ? &plan->old_parent : &plan->new_parent;
  RETURN_IF_ERROR(PutEntry(op, old_parent->ino, plan->source_slot, target, old_name));
  RETURN_IF_ERROR(PutEntry(op, np->ino, plan->new_slot, source, new_name));
  if (!plan->same_dir) {
    if (source.type == FileType::kDirectory) {
      source.parent = np->ino;
      --old_parent->nlink;
      ++np->nlink;
    }
    if (target.type == FileType::kDirectory) {
      target.parent = old_parent->ino;
      ++old_parent->nlink;
      --np->nlink;
    }
  }
  source.ctime_ns = now;
  target.ctime_ns = now;
  RETURN_IF_ERROR(Inodes::Put(op, source));
  RETURN_IF_ERROR(Inodes::Put(op, target));
  Touch(old_parent, now);
  Touch(np, now);
  RETURN_IF_ERROR(Inodes::Put(op, *old_parent));
  return plan->same_dir ? Status::Ok() : Inodes::Put(op, *np);
}

// The type rules of POSIX rename, and the new parent's link count.
Status Namespace::CheckReplace(const ReadOp& op, const RenamePlan& plan) const {
  const bool source_dir = plan.source.type == FileType::kDirectory;
  const bool target_dir = plan.target && plan.target->type == FileType::kDirectory;
  if (plan.target && source_dir && !target_dir) {
    return Status::Error(ENOTDIR, "rename: a directory cannot replace a non-directory");
  }
  if (plan.target && !source_dir && target_dir) {
    return Status::Error(EISDIR, "rename: a non-directory cannot replace a directory");
  }
  if (target_dir) {
    ASSIGN_OR_RETURN(bool has_entries, HasEntries(op, plan.target->ino));
    if (has_entries) {
      return Status::Error(ENOTEMPTY,
                           fmt::format("rename: directory {} is not empty", plan.target->ino));
    }
  }
  if (source_dir && !plan.same_dir && !target_dir && plan.new_parent.nlink >= kMaxLinks) {
    return Status::Error(
        EMLINK, fmt::format("directory {} has too many subdirectories", plan.new_parent.ino));
  }
  return Status::Ok();
}

// EINVAL when `new_parent` is `moving_dir` or inside it: walks parent pointers up to the root.
Status Namespace::CheckNotInside(const ReadOp& op, Ino moving_dir, Ino new_parent) const {
  Ino cur = new_parent;
  for (uint64_t steps = 0; cur != format::kRootIno; ++steps) {
    if (cur == moving_dir) {
      return Status::Invalid(
          fmt::format("rename: directory {} would move inside itself", moving_dir));
    }
    if (steps > (1u << 20)) {
      return Status::Corruption(
          fmt::format("directory {}: parent chain does not reach the root", new_parent));
    }
    ASSIGN_OR_RETURN(Inode n, Inodes::Get(op, cur));
    cur = n.parent;
  }
  return moving_dir == format::kRootIno ? Status::Invalid("rename: cannot move the root")
                                        : Status::Ok();
}

// Tree updates (7 + freeing): the replaced inode (and the header), both entries, the source
// inode, both parents.
Status Namespace::ApplyRename(WriteOp& op, RenamePlan* plan, std::string_view new_name) {
  const int64_t now = NowNs();
  const bool source_dir = plan->source.type == FileType::kDirectory;
  const Ino old_dir = plan->old_parent.ino;
  Inode* old_parent = &plan->old_parent;
  Inode* np = plan->same_dir ? &plan->old_parent : &plan->new_parent;
  if (plan->target) {  // first: freeing its data is the one step that may still fail
    if (plan->target->type == FileType::kDirectory) {
      if (orphans_->IsRetained(plan->target->ino)) {
        RETURN_IF_ERROR(Orphans::Keep(op, &*plan->target, now));
      } else {
        RETURN_IF_ERROR(DeleteInode(op, *plan->target));
      }
      --np->nlink;
    } else {
      RETURN_IF_ERROR(DropLink(op, &*plan->target, now));
    }
  } else {
    ++np->size;
  }
  RETURN_IF_ERROR(DeleteEntry(op, old_dir, plan->source_slot));
  RETURN_IF_ERROR(PutEntry(op, np->ino, plan->new_slot, plan->source, new_name));
  plan->source.ctime_ns = now;
  if (source_dir) {
    plan->source.parent = np->ino;
    --old_parent->nlink;
    ++np->nlink;
  }
  RETURN_IF_ERROR(Inodes::Put(op, plan->source));
  --old_parent->size;
  Touch(old_parent, now);
  Touch(np, now);
  RETURN_IF_ERROR(Inodes::Put(op, *old_parent));
  return plan->same_dir ? Status::Ok() : Inodes::Put(op, *np);
}

// ---- ReadDir.

// Cookies: "." 1, ".." 2, an entry its slot; resuming after cookie c continues strictly
// after c.
Status Namespace::ReadDirBatch(const ReadOp& op, Ino dir, uint64_t cookie, size_t max,
                               std::vector<DirEntry>* out) const {
  ASSIGN_OR_RETURN(Inode d, GetDirectory(op, dir));
  if (cookie == 0) out->push_back({".", d.ino, ::daxfs::FileType::kDirectory, 1});
  if (cookie <= 1) out->push_back({"..", d.parent, ::daxfs::FileType::kDirectory, 2});
  if (cookie == std::numeric_limits<uint64_t>::max()) return Status::Ok();
  btree::Cursor c(op.dirents());
  for (Status s = c.SeekGE(DirentKey(dir, cookie <= 2 ? 0 : cookie + 1));; s = c.Next()) {
    RETURN_IF_ERROR(s);
    if (!c.Valid() || c.key().w[0] != dir || out->size() >= max) break;
    uint64_t slot = c.key().w[1];
    ASSIGN_OR_RETURN(Dirent e, format::DecodeDirent(dir, slot, c.value().data()));
    out->push_back({std::move(e.name), e.ino, static_cast<::daxfs::FileType>(e.type), slot});
  }
  return Status::Ok();
}

// ---- Paths, for display.
//
// A directory's path comes from its parent pointers, looking its name up in each parent (a scan
// of that directory's entries). A file has no parent pointer: the whole dirent tree is scanned
// for an entry naming it (O(entries in the filesystem)); with several hard links the first entry
// in (directory, slot) order wins.

namespace {

// The name under which `dir` holds `ino`, or nullopt.
Result<std::optional<std::string>> NameIn(const btree::BTree* dirents, Ino dir, Ino ino) {
  btree::Cursor c(dirents);
  for (Status s = c.SeekGE(btree::Key{{dir, 0}});; s = c.Next()) {
    RETURN_IF_ERROR(s);
    if (!c.Valid() || c.key().w[0] != dir) break;
    ASSIGN_OR_RETURN(format::Dirent e, format::DecodeDirent(dir, c.key().w[1], c.value().data()));
    if (e.ino == ino) return std::optional<std::string>(std::move(e.name));
  }
  return std::optional<std::string>();
}

// Some entry naming `ino`: (its directory, its name), or nullopt.
Result<std::optional<std::pair<Ino, std::string>>> AnyEntryNaming(const btree::BTree* dirents,
                                                                  Ino ino) {
  btree::Cursor c(dirents);
  for (Status s = c.SeekFirst();; s = c.Next()) {
    RETURN_IF_ERROR(s);
    if (!c.Valid()) break;
    ASSIGN_OR_RETURN(format::Dirent e,
                     format::DecodeDirent(c.key().w[0], c.key().w[1], c.value().data()));
    if (e.ino == ino) return std::optional<std::pair<Ino, std::string>>({c.key().w[0], e.name});
  }
  return std::optional<std::pair<Ino, std::string>>();
}

}  // namespace

Result<std::string> Namespace::PathOf(const ReadOp& op, Ino ino) const {
  ASSIGN_OR_RETURN(format::Inode inode, Inodes::Get(op, ino));
  std::vector<std::string> names;  // leaf first
  Ino current = ino;               // a directory whose name is still to be found
  if (inode.type != format::FileType::kDirectory) {
    ASSIGN_OR_RETURN(auto entry, AnyEntryNaming(op.dirents(), ino));
    if (!entry) return Status::NotFound(fmt::format("no directory entry names inode {}", ino));
    names.push_back(std::move(entry->second));
    current = entry->first;
  }
  for (size_t depth = 0; current != format::kRootIno; ++depth) {
    if (depth > format::kMaxPathLen) {
      return Status::Corruption(
          fmt::format("inode {}: its parent chain does not reach the root", ino));
    }
    ASSIGN_OR_RETURN(format::Inode dir, Inodes::Get(op, current));
    if (dir.type != format::FileType::kDirectory) {
      return Status::Corruption(
          fmt::format("inode {} holds entries but is not a directory", current));
    }
    ASSIGN_OR_RETURN(std::optional<std::string> name, NameIn(op.dirents(), dir.parent, current));
    if (!name) {
      return Status::Corruption(fmt::format(
          "directory {} says its parent is {}, which has no entry naming it", current, dir.parent));
    }
    names.push_back(std::move(*name));
    current = dir.parent;
  }
  if (names.empty()) return std::string("/");
  std::string path;
  for (auto it = names.rbegin(); it != names.rend(); ++it) path += "/" + *it;
  return path;
}

}  // namespace daxfs::fs
