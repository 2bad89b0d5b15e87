// Extended attributes: the xattr tree (key {ino, slot, part}, format/records.h), one head record
// per name and value parts after it. Setting, reading, listing and removing a name, and deleting
// every attribute of an inode when the inode goes. Each change reserves its nodes first, so
// ENOSPC changes nothing. Knows inodes (ctime); nothing of names in directories or file data.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "daxfs/filesystem.h"
#include "fs/op.h"

namespace daxfs::fs {

class NodeBudget;

class Xattrs {
 public:
  explicit Xattrs(NodeBudget* budget) : budget_(budget) {}

  // Sets `name` to `value` on `ino` and bumps its ctime. `flags` are XattrFlags: kXattrCreate
  // fails with EEXIST when the name exists, kXattrReplace with ENODATA when it does not.
  // EINVAL for an empty name or unknown flags, ERANGE for a name over 255 bytes, E2BIG for a
  // value over 64 KiB, ENOENT for no such inode.
  Status Set(WriteOp& op, Ino ino, std::string_view name, std::span<const uint8_t> value,
             int flags);
  // The value's size; with a non-empty `out`, the value copied into it (ERANGE when it does not
  // fit). ENODATA when absent.
  Result<size_t> Get(const ReadOp& op, Ino ino, std::string_view name,
                     std::span<uint8_t> out) const;
  // Every name of `ino`, in slot order.
  Result<std::vector<std::string>> List(const ReadOp& op, Ino ino) const;
  // Removes `name` and bumps the ctime. ENODATA when absent.
  Status Remove(WriteOp& op, Ino ino, std::string_view name);

  // Deletes every attribute record of `ino` (the inode is going, in the same operation; the
  // caller reserved UpdatesToFree more tree updates).
  static Status DeleteAll(WriteOp& op, Ino ino);
  // Tree updates DeleteAll of `ino` takes: its record count.
  static Result<uint64_t> UpdatesToFree(const ReadOp& op, Ino ino);

 private:
  struct Found {
    uint64_t slot;
    uint64_t parts;
    uint32_t value_len;
  };
  // Where `name` lives (the head's slot), and the first free slot of its hash when absent.
  struct Place {
    std::optional<Found> found;
    std::optional<uint64_t> free_slot;
  };
  static Result<Place> Find(const ReadOp& op, Ino ino, std::string_view name);
  static Status CheckName(std::string_view name);

  NodeBudget* budget_;
};

}  // namespace daxfs::fs
