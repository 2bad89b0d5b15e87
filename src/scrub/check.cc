// The filesystem consistency checker: the pool's node-level check plus every cross-structure
// rule of the filesystem (entries, link counts, parents, sizes, extents, data space) and the
// scrub of the reverse map and refcount tree against the extent maps and the chunk table.
// Read-only; reports every discrepancy with what and where (device block, owner, file block).
#include "scrub/check.h"

#include <fmt/core.h>

#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <tuple>

#include "fs/blocks.h"
#include "fs/data_space.h"
#include "fs/inodes.h"
#include "fs/op_runner.h"
#include "fs/owners.h"
#include "fs/poison.h"
#include "fs/refcount.h"
#include "fs/rmap.h"

namespace daxfs::scrub {

using fs::OpRunner;
using fs::ReadOp;
using fs::WriteOp;

using format::FileType;
using format::Inode;

namespace {

struct InodeFacts {
  Inode inode;
  uint64_t entries_naming_it = 0;  // directory entries that point to it
  uint64_t entries_inside = 0;     // directories: entries they hold
  uint64_t subdirs = 0;            // directories: entries that are directories
  uint64_t containing_dir = 0;     // the directory holding the (last seen) entry
  uint64_t mapped_blocks = 0;
};

using format::RefcountRecord;
using format::RmapRecord;

std::map<uint64_t, bool> inodes_are_files(const std::map<uint64_t, InodeFacts>& inodes) {
  std::map<uint64_t, bool> out;
  for (auto& [ino, f] : inodes) out[ino] = f.inode.type == FileType::kRegular;
  return out;
}

// With ro_compat posix the header exists, its next number is above every inode's and its counts
// are the inodes there are by type.
void CheckInodeTableHeader(const std::optional<format::InodeTableHeader>& header,
                           const std::map<uint64_t, InodeFacts>& inodes, bool posix,
                           FsCheckResult* result) {
  auto problem = [&](std::string text) { result->problems.push_back(std::move(text)); };
  if (!header) {
    if (posix) {
      problem("the inode table has no header (key 0) but the image has the posix feature");
    }
    return;
  }
  if (!inodes.empty() && header->next_ino <= inodes.rbegin()->first) {
    problem(fmt::format("the inode table's header says the next inode is {} but inode {} exists",
                        header->next_ino, inodes.rbegin()->first));
  }
  uint64_t counts[format::kFileTypeSlots] = {};
  for (auto& [ino, f] : inodes) ++counts[static_cast<size_t>(f.inode.type)];
  for (size_t t = 1; t < format::kFileTypeSlots; ++t) {
    if (counts[t] != header->counts[t]) {
      problem(fmt::format(
          "the inode table's header counts {} inodes of type {} ({}) but there are {}",
          header->counts[t], t, format::FileTypeName(static_cast<FileType>(t)), counts[t]));
    }
  }
}

}  // namespace

// The xattr tree: every name is a head (part 0) followed by exactly the value parts its length
// needs, at a slot of its name's hash. The inodes owning records go to `owners`.
static Status WalkXattrs(const btree::BTree* tree, std::set<uint64_t>* owners,
                  const std::function<void(std::string)>& problem) {
  struct Group {
    uint64_t ino = 0, slot = 0, records = 0;
    std::optional<format::XattrHead> head;
  };
  std::optional<Group> g;
  auto finish = [&] {
    if (!g) return;
    if (!g->head) {
      problem(fmt::format("xattr of inode {} at slot 0x{:x}: value parts without a head", g->ino,
                          g->slot));
      return;
    }
    uint64_t want = format::XattrParts(g->head->name.size(), g->head->value_len);
    if (g->records != want) {
      problem(fmt::format("xattr '{}' of inode {}: {} parts, its value of {} bytes needs {}",
                          g->head->name, g->ino, g->records, g->head->value_len, want));
    }
    if ((g->slot & ~format::kSlotCollisionMask) != format::NameHashSlot(g->head->name)) {
      problem(fmt::format("xattr '{}' of inode {}: slot 0x{:x} is not of its name's hash",
                          g->head->name, g->ino, g->slot));
    }
  };
  btree::Cursor x(tree);
  for (Status s = x.SeekFirst();; s = x.Next()) {
    RETURN_IF_ERROR(s);
    if (!x.Valid()) break;
    const btree::Key& k = x.key();
    if (!g || g->ino != k.w[0] || g->slot != k.w[1]) {
      finish();
      g = Group{.ino = k.w[0], .slot = k.w[1]};
      owners->insert(k.w[0]);
    }
    if (k.w[2] != g->records) {
      problem(fmt::format("xattr of inode {} at slot 0x{:x}: part {} where part {} belongs",
                          k.w[0], k.w[1], k.w[2], g->records));
    }
    if (k.w[2] == 0) {
      Result<format::XattrHead> h = format::DecodeXattrHead(k.w[0], k.w[1], x.value().data());
      if (h.ok()) {
        g->head = *h;
      } else {
        problem(h.status().message());
      }
    }
    g->records = k.w[2] + 1;
  }
  finish();
  return Status::Ok();
}

Result<FsCheckResult> Checker::Run() {
  RETURN_IF_ERROR(a_.runner->Sync());
  FsCheckResult result;
  auto problem = [&](std::string text) { result.problems.push_back(std::move(text)); };

  a_.runner->Exclusive([&] {
    txn::CheckReport pool_report = a_.pool->Check();
    for (auto& p : pool_report.problems) problem("metadata: " + p);
    for (auto& d : pool_report.damage) result.damage.push_back("metadata: " + d);
    result.nodes_checked = pool_report.nodes_checked;
  });

  std::map<uint64_t, InodeFacts> inodes;
  std::vector<RmapRecord> used;  // every extent turned around: what the rmap must hold for files
  std::vector<RmapRecord> rmap;
  std::vector<RefcountRecord> refcounts;
  std::vector<format::LostRecord> lost;
  std::vector<format::BadRecord> bad_ranges;
  std::vector<RmapRecord> retired;  // bad space no file owns (owner `bad`)
  std::optional<format::InodeTableHeader> header;
  std::set<uint64_t> orphans;  // inodes with an orphan record
  std::set<uint64_t> xattr_owners;  // inodes with xattr records
  Status walked = a_.runner->Read([&](const ReadOp& op) -> Status {
    btree::Cursor c(op.inodes());
    for (Status s = c.SeekFirst();; s = c.Next()) {
      RETURN_IF_ERROR(s);
      if (!c.Valid()) break;
      if (c.key().w[0] == format::kInodeTableHeaderIno) {
        Result<format::InodeTableHeader> h = format::DecodeInodeTableHeader(c.value().data());
        if (h.ok()) {
          header = *h;
        } else {
          problem(h.status().message());
        }
        continue;
      }
      Result<Inode> n = format::DecodeInode(c.key().w[0], c.value().data());
      if (!n.ok()) {
        problem(n.status().message());
        continue;
      }
      inodes[n->ino].inode = *n;
    }
    btree::Cursor d(op.dirents());
    for (Status s = d.SeekFirst();; s = d.Next()) {
      RETURN_IF_ERROR(s);
      if (!d.Valid()) break;
      uint64_t dir = d.key().w[0], slot = d.key().w[1];
      Result<format::Dirent> e = format::DecodeDirent(dir, slot, d.value().data());
      if (!e.ok()) {
        problem(e.status().message());
        continue;
      }
      auto parent = inodes.find(dir);
      if (parent == inodes.end() || parent->second.inode.type != FileType::kDirectory) {
        problem(
            fmt::format("entry '{}' lives in inode {}, which is not a directory", e->name, dir));
        continue;
      }
      if ((slot & ~format::kSlotCollisionMask) != format::NameHashSlot(e->name)) {
        problem(fmt::format("directory {}: entry '{}' is at slot 0x{:x}, not under its hash", dir,
                            e->name, slot));
      }
      ++parent->second.entries_inside;
      auto target = inodes.find(e->ino);
      if (target == inodes.end()) {
        problem(fmt::format("directory {}: entry '{}' points to missing inode {}", dir, e->name,
                            e->ino));
        continue;
      }
      if (target->second.inode.type != e->type) {
        problem(fmt::format("directory {}: entry '{}' says {} but inode {} is a {}", dir, e->name,
                            format::FileTypeName(e->type), e->ino,
                            format::FileTypeName(target->second.inode.type)));
      }
      ++target->second.entries_naming_it;
      target->second.containing_dir = dir;
      if (e->type == FileType::kDirectory) ++parent->second.subdirs;
    }
    btree::Cursor x(op.extents());
    uint64_t last_ino = 0, last_end = 0;
    for (Status s = x.SeekFirst();; s = x.Next()) {
      RETURN_IF_ERROR(s);
      if (!x.Valid()) break;
      uint64_t ino = x.key().w[0], fblock = x.key().w[1];
      ++result.extents_checked;
      Result<format::ExtentRecord> ext = format::DecodeExtent(ino, fblock, x.value().data());
      if (!ext.ok()) {
        problem(ext.status().message());
        continue;
      }
      auto owner = inodes.find(ino);
      if (owner == inodes.end() || owner->second.inode.type == FileType::kDirectory) {
        problem(fmt::format("extent at file block {} belongs to inode {}, which is not a file",
                            fblock, ino));
      } else {
        owner->second.mapped_blocks += ext->blocks;
      }
      if (ino == last_ino && fblock < last_end) {
        problem(fmt::format("inode {}: extent at file block {} overlaps the previous one", ino,
                            fblock));
      }
      last_ino = ino;
      last_end = fblock + ext->blocks;
      used.push_back({.device_block = ext->device_block,
                      .owner = ino,
                      .file_block = fblock,
                      .blocks = ext->blocks,
                      .flags = ext->flags});
    }
    std::vector<std::string> bad;
    if (op.rmap() != nullptr) RETURN_IF_ERROR(fs::Rmap::ReadAll(op, &rmap, &bad, nullptr));
    if (op.refcount() != nullptr)
      RETURN_IF_ERROR(fs::Refcount::ReadAll(op, &refcounts, &bad, nullptr));
    for (auto& b : bad) problem(std::move(b));
    // Media damage: the poison tree's records and the retired space they imply.
    btree::Cursor p(op.poison());
    for (Status s = p.SeekFirst();; s = p.Next()) {
      RETURN_IF_ERROR(s);
      if (!p.Valid()) break;
      const btree::Key& k = p.key();
      if (k.w[0] == format::kPoisonLost) {
        Result<format::LostRecord> r = format::DecodeLost(k.w[1], k.w[2], p.value().data());
        if (r.ok())
          lost.push_back(*r);
        else
          problem(r.status().message());
      } else if (k.w[0] == format::kPoisonBad) {
        Result<format::BadRecord> r = format::DecodeBad(k.w[1], k.w[2], p.value().data());
        if (r.ok())
          bad_ranges.push_back(*r);
        else
          problem(r.status().message());
      } else {
        problem(fmt::format("poison: record of unknown kind {}", k.w[0]));
      }
    }
    ASSIGN_OR_RETURN(retired, a_.poison->RetiredRecords(op, used));
    btree::Cursor o(op.orphans());
    for (Status s = o.SeekFirst();; s = o.Next()) {
      RETURN_IF_ERROR(s);
      if (!o.Valid()) break;
      if (std::any_of(o.value().begin(), o.value().end(), [](uint8_t b) { return b != 0; })) {
        problem(fmt::format("orphan record of inode {}: a reserved byte is set", o.key().w[0]));
      }
      orphans.insert(o.key().w[0]);
    }
    return WalkXattrs(op.xattrs(), &xattr_owners, problem);
  });
  if (!walked.ok()) {
    problem("walk stopped: " + walked.ToString());
    return result;
  }
  result.inodes_checked = inodes.size();
  CheckInodeTableHeader(header, inodes,
                        a_.pool->superblock().ro_compat & format::feature::kRoCompatPosix, &result);

  for (uint64_t ino : xattr_owners) {
    if (!inodes.count(ino)) problem(fmt::format("xattrs of inode {}, which does not exist", ino));
  }

  // Orphans: nlink 0 exactly when there is an orphan record; an orphan has no entry (and a
  // directory orphan no entries inside); its blocks are checked as any file's below.
  for (uint64_t ino : orphans) {
    auto it = inodes.find(ino);
    if (it == inodes.end()) {
      problem(fmt::format("orphan record of inode {}, which does not exist", ino));
    } else if (it->second.inode.nlink != 0) {
      problem(fmt::format("orphan record of inode {}, which has {} links", ino,
                          it->second.inode.nlink));
    }
  }
  for (auto& [ino, f] : inodes) {
    const Inode& n = f.inode;
    if (n.nlink == 0 && ino != format::kRootIno) {
      if (!orphans.count(ino)) {
        problem(fmt::format("inode {} ({}) has no link and no orphan record", ino,
                            format::FileTypeName(n.type)));
      }
      if (f.entries_naming_it != 0) {
        problem(fmt::format("orphan {} is named by {} entries", ino, f.entries_naming_it));
      }
      if (n.type == FileType::kDirectory && (f.entries_inside != 0 || n.size != 0)) {
        problem(fmt::format("orphan directory {} is not empty (size {}, {} entries)", ino, n.size,
                            f.entries_inside));
      }
      if (n.type != FileType::kDirectory && n.blocks != f.mapped_blocks) {
        problem(fmt::format("inode {}: says {} blocks but its extents map {}", ino, n.blocks,
                            f.mapped_blocks));
      }
      continue;
    }
    if (ino == format::kRootIno) {
      if (n.type != FileType::kDirectory) problem("inode 1 (root) is not a directory");
      if (f.entries_naming_it != 0) problem("the root directory is named by an entry");
    } else if (f.entries_naming_it == 0) {
      problem(fmt::format("inode {} ({}) is named by no directory entry (orphan)", ino,
                          format::FileTypeName(n.type)));
      continue;
    }
    if (n.type == FileType::kDirectory) {
      if (ino != format::kRootIno && f.entries_naming_it != 1) {
        problem(fmt::format("directory {} is named by {} entries", ino, f.entries_naming_it));
      }
      uint64_t parent = ino == format::kRootIno ? format::kRootIno : f.containing_dir;
      if (n.parent != parent) {
        problem(
            fmt::format("directory {}: parent field {} but it lives in {}", ino, n.parent, parent));
      }
      if (n.nlink != 2 + f.subdirs) {
        problem(
            fmt::format("directory {}: link count {} but it has {} subdirectories (expected {})",
                        ino, n.nlink, f.subdirs, 2 + f.subdirs));
      }
      if (n.size != f.entries_inside) {
        problem(fmt::format("directory {}: size {} but it holds {} entries", ino, n.size,
                            f.entries_inside));
      }
    } else {
      if (n.nlink != f.entries_naming_it) {
        problem(fmt::format("inode {}: link count {} but {} entries name it", ino, n.nlink,
                            f.entries_naming_it));
      }
      if (n.blocks != f.mapped_blocks) {
        problem(fmt::format("inode {}: says {} blocks but its extents map {}", ino, n.blocks,
                            f.mapped_blocks));
      }
      if (format::IsSpecial(n.type) && (n.size != 0 || f.mapped_blocks != 0)) {
        problem(fmt::format("{} {}: holds data (size {}, {} blocks mapped)",
                            format::FileTypeName(n.type), ino, n.size, f.mapped_blocks));
      }
    }
  }

  // Data space: every extent inside DATA chunks, none both owned and free, and without reflink
  // no block owned twice (with it, sharing is judged by the refcount scrub below).
  a_.runner->Exclusive([&] {
    format::Superblock sb = a_.pool->superblock();
    std::vector<int8_t> chunk_type(sb.chunk_count, -1);
    for (auto& [c, t] : a_.pool->Chunks()) chunk_type[c] = static_cast<int8_t>(t);
    std::vector<RmapRecord> by_device = used;
    std::sort(by_device.begin(), by_device.end(),
              [](auto& a, auto& b) { return a.device_block < b.device_block; });
    uint64_t used_blocks = 0;  // blocks owned at least once
    uint64_t covered_end = 0;  // the highest end of the ranges so far
    for (size_t i = 0; i < by_device.size(); ++i) {
      const RmapRecord& r = by_device[i];
      uint64_t end = r.device_block + r.blocks;
      uint64_t from = std::max(r.device_block, covered_end);
      if (end > from) used_blocks += end - from;
      covered_end = std::max(covered_end, end);
      uint64_t first_chunk = r.device_block / sb.chunk_blocks();
      uint64_t last_chunk = (end - 1) / sb.chunk_blocks();
      for (uint64_t c = first_chunk; c <= last_chunk; ++c) {
        if (c >= sb.chunk_count || chunk_type[c] != static_cast<int8_t>(format::ChunkType::kData)) {
          problem(
              fmt::format("inode {} file block {}: device blocks {}..{} are not in a DATA chunk",
                          r.owner, r.file_block, r.device_block, end - 1));
          break;
        }
      }
      if (!a_.has_reflink && i > 0 &&
          by_device[i - 1].device_block + by_device[i - 1].blocks > r.device_block) {
        problem(fmt::format(
            "device block {} is owned twice: inode {} file block {} and inode {} file block {}",
            r.device_block, by_device[i - 1].owner, by_device[i - 1].file_block, r.owner,
            r.file_block));
      }
      for (uint64_t b = r.device_block; b < end; ++b) {
        if (a_.data->blocks().IsFree(b)) {
          problem(fmt::format("device block {} is mapped by inode {} but the allocator has it free",
                              b, r.owner));
          break;
        }
      }
    }
    uint64_t data_chunk_blocks = 0;
    for (uint64_t c = 0; c < sb.chunk_count; ++c) {
      if (chunk_type[c] == static_cast<int8_t>(format::ChunkType::kData))
        data_chunk_blocks += sb.ChunkBlockCount(c);
    }
    uint64_t retired_blocks = 0;
    for (const RmapRecord& r : retired) retired_blocks += r.blocks;
    uint64_t accounted = used_blocks + retired_blocks + a_.data->blocks().free_blocks() +
                         a_.data->blocks().deferred_blocks();
    if (accounted != data_chunk_blocks) {
      problem(fmt::format(
          "data space: {} blocks in DATA chunks but {} mapped + {} retired + {} free + {} deferred "
          "= {}",
          data_chunk_blocks, used_blocks, retired_blocks, a_.data->blocks().free_blocks(),
          a_.data->blocks().deferred_blocks(), accounted));
    }
    CheckMediaDamage(inodes_are_files(inodes), used, lost, bad_ranges, retired, &result);
    std::vector<RmapRecord> owners = used;  // the rmap holds retired space as owner `bad`
    owners.insert(owners.end(), retired.begin(), retired.end());
    CheckReverseMaps(owners, rmap, refcounts, &result);
  });
  return result;
}

// Lost records name regular files whose blocks map exactly where the record says, inside bad
// ranges; bad ranges never overlap and are never free; known damage is reported, not a problem;
// bad bytes under metadata are.
void Checker::CheckMediaDamage(const std::map<uint64_t, bool>& regular_files,
                               const std::vector<RmapRecord>& used,
                               const std::vector<format::LostRecord>& lost,
                               const std::vector<format::BadRecord>& bad_ranges,
                               const std::vector<RmapRecord>& retired, FsCheckResult* result) {
  auto problem = [&](std::string text) { result->problems.push_back(std::move(text)); };
  for (size_t i = 1; i < bad_ranges.size(); ++i) {
    const format::BadRecord &a = bad_ranges[i - 1], &b = bad_ranges[i];
    if (a.device_block + a.blocks > b.device_block) {
      problem(fmt::format("poison: bad ranges at device blocks {} and {} overlap", a.device_block,
                          b.device_block));
    }
  }
  auto in_bad = [&](uint64_t block) {
    auto it =
        std::upper_bound(bad_ranges.begin(), bad_ranges.end(), block,
                         [](uint64_t b, const format::BadRecord& r) { return b < r.device_block; });
    return it != bad_ranges.begin() && std::prev(it)->device_block + std::prev(it)->blocks > block;
  };
  for (const format::BadRecord& r : bad_ranges) {
    for (uint64_t b = r.device_block; b < r.device_block + r.blocks; ++b) {
      if (a_.data->blocks().IsFree(b) || a_.data->blocks().IsFresh(b)) {
        problem(fmt::format("poison: bad device block {} is in free space", b));
        break;
      }
    }
  }
  for (const format::LostRecord& l : lost) {
    result->damage.push_back(fmt::format(
        "lost: inode {} file offset {} (+{} bytes) on bad media at device offset {}", l.ino,
        l.file_block * fs::kBlock, l.blocks * fs::kBlock, l.device_block * fs::kBlock));
    auto file = regular_files.find(l.ino);
    if (file == regular_files.end() || !file->second) {
      problem(fmt::format("poison: lost range of inode {} at file block {}: no such regular file",
                          l.ino, l.file_block));
      continue;
    }
    // `used` is in extent-key order: (inode, file block).
    auto it =
        std::lower_bound(used.begin(), used.end(), std::make_pair(l.ino, l.file_block),
                         [](const RmapRecord& r, const std::pair<uint64_t, uint64_t>& k) {
                           return std::tie(r.owner, r.file_block) < std::tie(k.first, k.second);
                         });
    if (it != used.begin()) --it;
    uint64_t mapped = 0;
    for (; it != used.end() && it->owner <= l.ino; ++it) {
      if (it->owner != l.ino) continue;
      uint64_t s = std::max(it->file_block, l.file_block);
      uint64_t e = std::min(it->file_block + it->blocks, l.file_block + l.blocks);
      if (s >= e) continue;
      if (it->device_block + (s - it->file_block) != l.device_block + (s - l.file_block)) {
        problem(
            fmt::format("poison: inode {} file block {} is lost at device block {} but maps "
                        "device block {}",
                        l.ino, s, l.device_block + (s - l.file_block),
                        it->device_block + (s - it->file_block)));
      }
      mapped += e - s;
    }
    if (mapped != l.blocks) {
      problem(
          fmt::format("poison: lost range of inode {} at file block {} ({} blocks): only {} "
                      "of them are mapped",
                      l.ino, l.file_block, l.blocks, mapped));
    }
    for (uint64_t b = l.device_block; b < l.device_block + l.blocks; ++b) {
      if (!in_bad(b)) {
        problem(fmt::format("poison: inode {} lost device block {}, which is not in a bad range",
                            l.ino, b));
        break;
      }
    }
  }
  for (const RmapRecord& r : retired) {
    result->damage.push_back(fmt::format("retired: device offset {} (+{} bytes)",
                                         r.device_block * fs::kBlock, r.blocks * fs::kBlock));
  }
  // With twins, a bad copy that a repair retired (a kBadMetadata bad range) and a bad copy of a
  // superblock slot (the other copy serves) are known damage; any other bad byte under metadata
  // is a problem (a repair still pending, or a node without a good copy).
  const bool dup = a_.pool->metadata_dup();
  const uint64_t sb_twin = a_.pool->TwinBlock(0);
  auto retired_slot = [&](uint64_t block) {
    auto it =
        std::upper_bound(bad_ranges.begin(), bad_ranges.end(), block,
                         [](uint64_t b, const format::BadRecord& r) { return b < r.device_block; });
    if (it == bad_ranges.begin()) return false;
    --it;
    return (it->flags & format::kBadMetadata) && it->device_block + it->blocks > block;
  };
  auto superblock_copy = [&](uint64_t block) {
    return block < format::kFirstNodeBlock ||
           (sb_twin != 0 && block >= sb_twin && block < sb_twin + format::kFirstNodeBlock);
  };
  for (const device::BadRange& r : a_.pool->MetadataDamage()) {
    uint64_t first = r.offset / fs::kBlock,
             end = (r.offset + r.length + fs::kBlock - 1) / fs::kBlock;
    for (uint64_t b = first; b < end; ++b) {
      if (dup && retired_slot(b)) {
        result->damage.push_back(fmt::format(
            "metadata: device block {} (a copy of a metadata node slot) is on bad media: retired, "
            "the node moved",
            b));
      } else if (dup && superblock_copy(b)) {
        result->damage.push_back(fmt::format(
            "metadata: superblock copy at device block {} is on bad media: the other copy serves",
            b));
      } else {
        problem(fmt::format(
            "media: bad bytes under metadata at device offset {} (+{} bytes, chunk {})",
            b * fs::kBlock, fs::kBlock, b * fs::kBlock / a_.pool->superblock().chunk_size));
      }
    }
  }
}

// ---- The reverse-map scrub.

namespace {

std::string Blocks(uint64_t first, uint64_t count) {
  return count == 1 ? fmt::format("device block {}", first)
                    : fmt::format("device blocks {}..{}", first, first + count - 1);
}

std::string Describe(const RmapRecord& r) {
  if (format::IsSpecialOwner(r.owner)) {
    const char* name = format::SpecialOwnerName(r.owner);
    return fmt::format("'{}' space at {}", name ? name : "?", Blocks(r.device_block, r.blocks));
  }
  return fmt::format("inode {} file block {} at {}", r.owner, r.file_block,
                     Blocks(r.device_block, r.blocks));
}

std::string Shape(uint64_t blocks, uint32_t flags) {
  return fmt::format("{} block{}{}", blocks, blocks == 1 ? "" : "s",
                     (flags & format::kRmapUnwritten) ? ", unwritten" : "");
}

// The file owners of device block `b` ("inode 5 file block 3, ..."), from records sorted by key.
std::string OwnersAt(const std::vector<RmapRecord>& want, uint64_t b, uint64_t* count) {
  std::string list;
  *count = 0;
  for (const RmapRecord& r : want) {
    if (r.device_block > b) break;
    if (format::IsSpecialOwner(r.owner) || r.device_block + r.blocks <= b) continue;
    if (++*count <= 8) {
      list += fmt::format("{}inode {} file block {}", list.empty() ? "" : ", ", r.owner,
                          r.file_block + (b - r.device_block));
    }
  }
  if (*count > 8) list += ", ...";
  return list;
}

// A refcount tree (or what it should be) as disjoint steps: overlapping records are cut so that
// each block is counted once (the overlap itself is reported elsewhere).
struct Step {
  uint64_t start, end;
  uint32_t count;
};
std::vector<Step> Steps(const std::vector<RefcountRecord>& records) {
  std::vector<Step> out;
  uint64_t floor = 0;
  for (const RefcountRecord& r : records) {
    uint64_t s = std::max(r.device_block, floor), e = r.device_block + r.blocks;
    if (s < e) out.push_back({s, e, r.refcount});
    floor = std::max(floor, e);
  }
  return out;
}

}  // namespace

void DiffReverseMaps(const std::vector<RmapRecord>& want_rmap,
                     const std::vector<RmapRecord>& have_rmap,
                     const std::vector<RefcountRecord>& want_refcount,
                     const std::vector<RefcountRecord>& have_refcount,
                     std::vector<std::string>* out) {
  // The rmap: a merge of two lists in key order.
  for (size_t i = 0, j = 0; i < want_rmap.size() || j < have_rmap.size();) {
    if (j == have_rmap.size() ||
        (i < want_rmap.size() && fs::RmapOrder(want_rmap[i]) < fs::RmapOrder(have_rmap[j]))) {
      out->push_back("rmap: no record for " + Describe(want_rmap[i++]));
    } else if (i == want_rmap.size() || fs::RmapOrder(have_rmap[j]) < fs::RmapOrder(want_rmap[i])) {
      const RmapRecord& h = have_rmap[j++];
      out->push_back(fmt::format(
          "rmap: record for {} matches no {}", Describe(h),
          format::IsSpecialOwner(h.owner) ? "superblock slot or METADATA chunk" : "extent"));
    } else {
      const RmapRecord &w = want_rmap[i++], &h = have_rmap[j++];
      if (w.blocks != h.blocks || w.flags != h.flags) {
        out->push_back(fmt::format(
            "rmap: record for {} says {} but {} says {}", Describe(h), Shape(h.blocks, h.flags),
            format::IsSpecialOwner(w.owner) ? "the chunk table" : "the extent",
            Shape(w.blocks, w.flags)));
      }
    }
  }

  // Refcounts: walk both step functions boundary by boundary; report maximal ranges where they
  // differ with one (wanted, found) pair.
  std::vector<Step> want = Steps(want_refcount), have = Steps(have_refcount);
  struct Diff {
    uint64_t start, end;
    uint32_t want, have;
  };
  std::vector<Diff> diffs;
  constexpr uint64_t kNone = UINT64_MAX;
  uint64_t p = 0;
  for (size_t i = 0, j = 0;;) {
    while (i < want.size() && want[i].end <= p) ++i;
    while (j < have.size() && have[j].end <= p) ++j;
    if (i == want.size() && j == have.size()) break;
    p = std::max(p, std::min(i < want.size() ? want[i].start : kNone,
                             j < have.size() ? have[j].start : kNone));
    uint32_t wc = i < want.size() && want[i].start <= p ? want[i].count : 0;
    uint32_t hc = j < have.size() && have[j].start <= p ? have[j].count : 0;
    uint64_t q = kNone;
    if (i < want.size()) q = std::min(q, want[i].start > p ? want[i].start : want[i].end);
    if (j < have.size()) q = std::min(q, have[j].start > p ? have[j].start : have[j].end);
    if (wc != hc) {
      if (!diffs.empty() && diffs.back().end == p && diffs.back().want == wc &&
          diffs.back().have == hc) {
        diffs.back().end = q;
      } else {
        diffs.push_back({p, q, wc, hc});
      }
    }
    p = q;
  }
  for (const Diff& d : diffs) {
    uint64_t owners = 0;
    std::string list = OwnersAt(want_rmap, d.start, &owners);
    out->push_back(fmt::format("refcount: {}: {} owner{}{} but the refcount tree {}",
                               Blocks(d.start, d.end - d.start), owners, owners == 1 ? "" : "s",
                               list.empty() ? "" : " (" + list + ")",
                               d.have == 0 ? std::string("has no record (at most one owner)")
                                           : fmt::format("says {}", d.have)));
  }
}

void Checker::CheckReverseMaps(const std::vector<RmapRecord>& file_owners,
                               const std::vector<RmapRecord>& rmap,
                               const std::vector<RefcountRecord>& refcounts,
                               FsCheckResult* result) {
  auto problem = [&](std::string text) { result->problems.push_back(std::move(text)); };
  format::Superblock sb = a_.pool->superblock();
  auto expect_empty = [&](format::TreeId id, const char* what) {
    const format::TreeRoot& t = sb.tree(id);
    if (t.root != 0 || t.records != 0) {
      problem(
          fmt::format("{}: the filesystem has no {} tree but it holds {} records (root node {})",
                      what, what, t.records, t.root));
    }
  };
  if (!a_.has_rmap) {
    expect_empty(format::TreeId::kRmap, "rmap");
    expect_empty(format::TreeId::kRefcount, "refcount");
    return;
  }
  if (!a_.has_reflink) expect_empty(format::TreeId::kRefcount, "refcount");

  std::vector<RmapRecord> want = file_owners;
  for (const RmapRecord& s : a_.owners->SpecialOwnerRecords()) want.push_back(s);
  std::sort(want.begin(), want.end(),
            [](auto& a, auto& b) { return fs::RmapOrder(a) < fs::RmapOrder(b); });
  // Without reflink sharing is already reported as "owned twice".
  std::vector<RefcountRecord> want_refcounts;
  if (a_.has_reflink) want_refcounts = fs::RefcountsOf(file_owners);

  // The refcount tree's own shape: no overlap, equal neighbours merged (count >= 2 is checked
  // when a record is decoded).
  for (size_t i = 1; i < refcounts.size(); ++i) {
    const RefcountRecord &a = refcounts[i - 1], &b = refcounts[i];
    if (a.device_block + a.blocks > b.device_block) {
      problem(fmt::format("refcount: records at device blocks {} ({} blocks) and {} overlap",
                          a.device_block, a.blocks, b.device_block));
    } else if (a.device_block + a.blocks == b.device_block && a.refcount == b.refcount) {
      problem(
          fmt::format("refcount: records at device blocks {} and {} are adjacent with the same "
                      "count {} and should be one record",
                      a.device_block, b.device_block, a.refcount));
    }
  }
  // Unwritten extents are never shared.
  for (const RmapRecord& r : file_owners) {
    if (!(r.flags & format::kExtentUnwritten)) continue;
    auto it = std::upper_bound(
        want_refcounts.begin(), want_refcounts.end(), r.device_block,
        [](uint64_t b, const RefcountRecord& s) { return b < s.device_block + s.blocks; });
    if (it != want_refcounts.end() && it->device_block < r.device_block + r.blocks) {
      problem(fmt::format(
          "inode {} file block {}: unwritten extent at {} shares blocks with another owner",
          r.owner, r.file_block, Blocks(r.device_block, r.blocks)));
    }
  }
  DiffReverseMaps(want, rmap, want_refcounts, refcounts, &result->problems);
  // No free block is owned: an rmap record that no extent explains must not cover free space.
  for (const RmapRecord& r : rmap) {
    if (format::IsSpecialOwner(r.owner)) continue;
    auto it = std::lower_bound(want.begin(), want.end(), r, [](auto& a, auto& b) {
      return fs::RmapOrder(a) < fs::RmapOrder(b);
    });
    if (it != want.end() && fs::RmapOrder(*it) == fs::RmapOrder(r)) continue;
    uint64_t end = std::min(r.device_block + r.blocks, sb.total_blocks());
    for (uint64_t b = r.device_block; b < end; ++b) {
      if (a_.data->blocks().IsFree(b)) {
        problem(fmt::format("rmap: record for {} covers device block {}, which is free",
                            Describe(r), b));
        break;
      }
    }
  }
}

}  // namespace daxfs::scrub
