// Extended attributes (xattrs.h): heads and value parts in the xattr tree.
#include "fs/xattrs.h"

#include <fmt/core.h>

#include <algorithm>
#include <bitset>
#include <cerrno>
#include <cstring>

#include "format/records.h"
#include "fs/inodes.h"
#include "fs/node_budget.h"

namespace daxfs::fs {
namespace {

using format::kXattrValueSize;

// Where part `part` (>= 1) of a value starts in it, for a name of `name_len` bytes.
size_t PartOffset(size_t name_len, uint64_t part) {
  return format::XattrHeadValueBytes(name_len) + (part - 1) * kXattrValueSize;
}

Status BumpCtime(WriteOp& op, Ino ino) {
  ASSIGN_OR_RETURN(format::Inode n, Inodes::Get(op, ino));
  n.ctime_ns = NowNs();
  return Inodes::Put(op, n);
}

}  // namespace

Status Xattrs::CheckName(std::string_view name) {
  if (name.empty()) return Status::Invalid("xattr: empty name");
  if (name.size() > format::kMaxXattrNameLen) {
    return Status::Error(ERANGE, fmt::format("xattr: name of {} bytes (at most {})", name.size(),
                                             format::kMaxXattrNameLen));
  }
  return Status::Ok();
}

// The names of one hash live at slots base .. base + 255, the first free one taken by a new name;
// a removal may leave a hole, so the whole range is scanned (usually one seek finds nothing).
Result<Xattrs::Place> Xattrs::Find(const ReadOp& op, Ino ino, std::string_view name) {
  const uint64_t base = format::NameHashSlot(name);
  const uint64_t end = base + format::kSlotCollisionMask + 1;
  Place place;
  std::bitset<format::kSlotCollisionMask + 1> used;
  btree::Cursor c(op.xattrs());
  RETURN_IF_ERROR(c.SeekGE(XattrKey(ino, base, 0)));
  while (c.Valid() && c.key().w[0] == ino && c.key().w[1] < end) {
    const uint64_t slot = c.key().w[1];
    used.set(slot - base);
    if (c.key().w[2] == 0 && format::XattrNameIs(c.value().data(), name)) {
      ASSIGN_OR_RETURN(format::XattrHead head, format::DecodeXattrHead(ino, slot, c.value().data()));
      place.found = Found{slot, format::XattrParts(name.size(), head.value_len), head.value_len};
      return place;
    }
    if (slot + 1 == end) break;
    RETURN_IF_ERROR(c.SeekGE(XattrKey(ino, slot + 1, 0)));
  }
  for (uint64_t i = 0; i < used.size(); ++i) {
    if (!used.test(i)) {
      place.free_slot = base + i;
      break;
    }
  }
  return place;
}

Status Xattrs::Set(WriteOp& op, Ino ino, std::string_view name, std::span<const uint8_t> value,
                   int flags) {
  if (flags & ~(kXattrCreate | kXattrReplace)) {
    return Status::Invalid(fmt::format("xattr: unknown flags 0x{:x}", flags));
  }
  RETURN_IF_ERROR(CheckName(name));
  if (value.size() > format::kMaxXattrValueLen) {
    return Status::Error(E2BIG, fmt::format("xattr: value of {} bytes (at most {})", value.size(),
                                            format::kMaxXattrValueLen));
  }
  RETURN_IF_ERROR(Inodes::Get(op, ino).status());
  ASSIGN_OR_RETURN(Place place, Find(op, ino, name));
  if (place.found && (flags & kXattrCreate)) {
    return Status::Exists(fmt::format("xattr '{}' of inode {} exists", name, ino));
  }
  if (!place.found && (flags & kXattrReplace)) {
    return Status::Error(ENODATA, fmt::format("xattr '{}' of inode {} does not exist", name, ino));
  }
  if (!place.found && !place.free_slot) {
    return Status::NoSpace(fmt::format("xattr '{}': every slot of its hash is taken", name));
  }
  const uint64_t parts = format::XattrParts(name.size(), value.size());
  const uint64_t old_parts = place.found ? place.found->parts : 0;
  RETURN_IF_ERROR(budget_->ReserveNodes(op, std::max(parts, old_parts) + 1));

  const uint64_t slot = place.found ? place.found->slot : *place.free_slot;
  TreeWriter& w = op.writer(FsTree::kXattrs);
  uint8_t buf[kXattrValueSize];
  format::EncodeXattrHead(name, value.data(), value.size(), buf);
  RETURN_IF_ERROR(w.Put(XattrKey(ino, slot, 0), buf).status());
  for (uint64_t part = 1; part < parts; ++part) {
    size_t at = PartOffset(name.size(), part);
    size_t n = std::min<size_t>(kXattrValueSize, value.size() - at);
    std::memset(buf, 0, sizeof(buf));
    std::memcpy(buf, value.data() + at, n);
    RETURN_IF_ERROR(w.Put(XattrKey(ino, slot, part), buf).status());
  }
  for (uint64_t part = parts; part < old_parts; ++part) {
    RETURN_IF_ERROR(w.Delete(XattrKey(ino, slot, part)));
  }
  return BumpCtime(op, ino);
}

Result<size_t> Xattrs::Get(const ReadOp& op, Ino ino, std::string_view name,
                           std::span<uint8_t> out) const {
  RETURN_IF_ERROR(CheckName(name));
  RETURN_IF_ERROR(Inodes::Get(op, ino).status());
  ASSIGN_OR_RETURN(Place place, Find(op, ino, name));
  if (!place.found) {
    return Status::Error(ENODATA, fmt::format("xattr '{}' of inode {} does not exist", name, ino));
  }
  const Found& f = *place.found;
  if (out.empty()) return size_t{f.value_len};
  if (out.size() < f.value_len) {
    return Status::Error(ERANGE, fmt::format("xattr '{}': value of {} bytes, buffer of {}", name,
                                             f.value_len, out.size()));
  }
  uint8_t buf[kXattrValueSize];
  for (uint64_t part = 0; part < f.parts; ++part) {
    ASSIGN_OR_RETURN(bool present, op.xattrs()->Get(XattrKey(ino, f.slot, part), buf));
    if (!present) {
      return Status::Corruption(fmt::format("xattr '{}' of inode {}: part {} of {} is missing",
                                            name, ino, part, f.parts));
    }
    size_t at = part == 0 ? 0 : PartOffset(name.size(), part);
    const uint8_t* from = part == 0 ? buf + format::kXattrHeadSize + name.size() : buf;
    size_t room = part == 0 ? format::XattrHeadValueBytes(name.size()) : kXattrValueSize;
    size_t n = std::min<size_t>(room, f.value_len - at);
    if (n > 0) std::memcpy(out.data() + at, from, n);
  }
  return size_t{f.value_len};
}

Result<std::vector<std::string>> Xattrs::List(const ReadOp& op, Ino ino) const {
  RETURN_IF_ERROR(Inodes::Get(op, ino).status());
  std::vector<std::string> names;
  btree::Cursor c(op.xattrs());
  RETURN_IF_ERROR(c.SeekGE(XattrKey(ino, 0, 0)));
  while (c.Valid() && c.key().w[0] == ino) {
    const uint64_t slot = c.key().w[1];
    if (c.key().w[2] == 0) {
      ASSIGN_OR_RETURN(format::XattrHead head, format::DecodeXattrHead(ino, slot, c.value().data()));
      names.push_back(std::move(head.name));
    }
    if (slot == ~uint64_t{0}) break;
    RETURN_IF_ERROR(c.SeekGE(XattrKey(ino, slot + 1, 0)));
  }
  return names;
}

Status Xattrs::Remove(WriteOp& op, Ino ino, std::string_view name) {
  RETURN_IF_ERROR(CheckName(name));
  RETURN_IF_ERROR(Inodes::Get(op, ino).status());
  ASSIGN_OR_RETURN(Place place, Find(op, ino, name));
  if (!place.found) {
    return Status::Error(ENODATA, fmt::format("xattr '{}' of inode {} does not exist", name, ino));
  }
  RETURN_IF_ERROR(budget_->ReserveNodes(op, place.found->parts + 1));
  for (uint64_t part = 0; part < place.found->parts; ++part) {
    RETURN_IF_ERROR(op.writer(FsTree::kXattrs).Delete(XattrKey(ino, place.found->slot, part)));
  }
  return BumpCtime(op, ino);
}

namespace {

Result<std::vector<btree::Key>> KeysOf(const ReadOp& op, Ino ino) {
  std::vector<btree::Key> keys;
  btree::Cursor c(op.xattrs());
  RETURN_IF_ERROR(c.SeekGE(XattrKey(ino, 0, 0)));
  while (c.Valid() && c.key().w[0] == ino) {
    keys.push_back(c.key());
    RETURN_IF_ERROR(c.Next());
  }
  return keys;
}

}  // namespace

Status Xattrs::DeleteAll(WriteOp& op, Ino ino) {
  ASSIGN_OR_RETURN(std::vector<btree::Key> keys, KeysOf(op, ino));
  for (const btree::Key& k : keys) RETURN_IF_ERROR(op.writer(FsTree::kXattrs).Delete(k));
  return Status::Ok();
}

Result<uint64_t> Xattrs::UpdatesToFree(const ReadOp& op, Ino ino) {
  ASSIGN_OR_RETURN(std::vector<btree::Key> keys, KeysOf(op, ino));
  return uint64_t{keys.size()};
}

}  // namespace daxfs::fs
