// Reflink operations (docs/reflink.md): clone, clone range, dedupe, unshare and copy_file_range,
// with the semantics and errors of Linux's FICLONE, FICLONERANGE, FIDEDUPERANGE,
// FALLOC_FL_UNSHARE_RANGE and copy_file_range(2). Each is one write operation that validates,
// then reserves (nodes for every extent it shares, from a count of the extents involved), then
// applies through Remapper and FileData. Knows nothing of names or mappings beyond refusing to
// share the blocks of a file with a live writable mapping.
#pragma once

#include <cstdint>

#include "daxfs/filesystem.h"
#include "format/records.h"
#include "fs/op.h"

namespace daxfs::fs {

class FileData;
class NodeBudget;
class Remapper;

class Reflink {
 public:
  Reflink(bool has_reflink, FileData* files, Remapper* remap, NodeBudget* budget)
      : has_reflink_(has_reflink), files_(files), remap_(remap), budget_(budget) {}

  // EOPNOTSUPP on a filesystem made without reflink (before any operation).
  Status Available() const;
  // EINVAL / EFBIG for an unshare range that can never be valid (before any operation).
  static Status CheckUnshare(uint64_t offset, uint64_t length);

  Status Clone(WriteOp& op, Ino src, Ino dst);
  Status CloneRange(WriteOp& op, Ino src, uint64_t src_offset, Ino dst, uint64_t dst_offset,
                    uint64_t length);
  Status Dedupe(WriteOp& op, Ino src, uint64_t src_offset, Ino dst, uint64_t dst_offset,
                uint64_t length, DedupeResult* result);
  Status Unshare(WriteOp& op, Ino ino, uint64_t offset, uint64_t length);
  // Works without reflink too (then every byte is copied, at most 64 MiB per call).
  Status CopyFileRange(WriteOp& op, Ino src, uint64_t src_offset, Ino dst, uint64_t dst_offset,
                       uint64_t length, uint64_t* copied);

 private:
  struct InodePair;  // the source and destination inodes of a two-file operation (maybe one)
  // Loads both (ENOENT) and checks they are regular files (EISDIR, EINVAL) without a live
  // writable mapping (ETXTBSY).
  Status LoadInodePair(const WriteOp& op, Ino src, Ino dst, InodePair* pair);

  bool has_reflink_;
  FileData* files_;
  Remapper* remap_;
  NodeBudget* budget_;
};

}  // namespace daxfs::fs
