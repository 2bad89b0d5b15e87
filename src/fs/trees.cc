// The table of filesystem trees (trees.h): one entry per tree, in FsTree order.
#include "fs/trees.h"

#include <fmt/core.h>

namespace daxfs::fs {
namespace {

using format::TreeId;

uint64_t RmapEnd(const btree::Key& k, const uint8_t* v) {
  return format::RmapIntervalEnd(k.w[0], v);
}

const FsTreeDef kTrees[] = {
    {FsTree::kInodes,
     {.id = TreeId::kInodes,
      .name = "inodes",
      .key_words = 1,
      .value_size = format::kInodeValueSize},
     TreeKept::kAlways},
    {FsTree::kDirents,
     {.id = TreeId::kDirents,
      .name = "dirents",
      .key_words = 2,
      .value_size = format::kDirentValueSize},
     TreeKept::kAlways},
    {FsTree::kExtents,
     {.id = TreeId::kExtents,
      .name = "extents",
      .key_words = 2,
      .value_size = format::kExtentValueSize},
     TreeKept::kAlways},
    {FsTree::kRmap,  // an interval tree: each record covers its device blocks
     {.id = TreeId::kRmap,
      .name = "rmap",
      .key_words = 3,
      .value_size = format::kRmapValueSize,
      .interval_end = RmapEnd},
     TreeKept::kWithRmap},
    {FsTree::kRefcount,
     {.id = TreeId::kRefcount,
      .name = "refcount",
      .key_words = 1,
      .value_size = format::kRefcountValueSize},
     TreeKept::kWithReflink},
    {FsTree::kPoison,  // media damage: every filesystem has it, empty unless damaged
     {.id = TreeId::kPoison,
      .name = "poison",
      .key_words = 3,
      .value_size = format::kPoisonValueSize},
     TreeKept::kAlways},
    {FsTree::kOrphans,  // inodes with no link left, kept for open references; usually empty
     {.id = TreeId::kOrphans,
      .name = "orphans",
      .key_words = 1,
      .value_size = format::kOrphanValueSize},
     TreeKept::kAlways},
    {FsTree::kXattrs,  // extended attributes: a head and value parts per name
     {.id = TreeId::kXattrs,
      .name = "xattrs",
      .key_words = 3,
      .value_size = format::kXattrValueSize},
     TreeKept::kAlways},
};
static_assert(std::size(kTrees) == kFsTreeCount);

}  // namespace

std::span<const FsTreeDef> FsTrees() { return kTrees; }

const btree::TreeSpec& SpecOf(FsTree tree) { return kTrees[static_cast<size_t>(tree)].spec; }

std::string TreeName(uint16_t id) {
  for (const FsTreeDef& d : kTrees) {
    if (static_cast<uint16_t>(d.spec.id) == id) return d.spec.name;
  }
  if (id == static_cast<uint16_t>(TreeId::kChunks)) return "chunks";
  if (id == static_cast<uint16_t>(TreeId::kScratch)) return "scratch";
  return fmt::format("tree{}", id);
}

}  // namespace daxfs::fs
