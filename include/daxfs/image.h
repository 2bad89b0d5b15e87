// The public entry points for whole images: make a filesystem, describe it, check it.
// This is what the `daxfs` command uses; it hides devices, pools and trees.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "daxfs/filesystem.h"
#include "daxfs/status.h"

namespace daxfs {

struct MkfsOptions {
  // Create the image file with this size in bytes when it does not exist (0: it must exist).
  uint64_t create_size = 0;
  // Replace an existing file's contents (an existing daxfs image included). Without it, mkfs
  // refuses a file that already holds a daxfs superblock.
  bool force = false;
  uint64_t chunk_size = 0;  // 0: chosen from the device size
  std::string label;
  bool rmap = true;     // keep the reverse map (feature flag)
  bool reflink = true;  // allow shared blocks (needs rmap)
  bool metadata_dup = true;  // twin copies of every metadata node and the superblock
};

// What Tune changes on an existing image (each only when set).
struct TuneOptions {
  // Adds metadata twins (metadup) to an image made without them, in one commit: a twin chunk for
  // every metadata chunk, every node and the superblock copied. EEXIST when on already; ENOSPC
  // (nothing changed) without enough free chunks.
  bool metadata_dup = false;
};

// What Tune did.
struct TuneReport {
  std::vector<std::string> changes;  // one line each
};

struct TreeInfo {
  std::string name;
  uint16_t id = 0;
  uint64_t root = 0;
  uint64_t records = 0;
  uint64_t nodes = 0;
  uint32_t height = 0;
  uint16_t key_bytes = 0;
  uint16_t value_bytes = 0;
};

struct ChunkInfo {
  uint64_t index = 0;
  uint64_t offset = 0;
  uint64_t length = 0;
  std::string type;  // "METADATA", "DATA", "METADATA_TWIN" or "free"
  // metadup: a METADATA chunk's twin chunk, a METADATA_TWIN chunk's primary; else -1.
  int64_t partner = -1;
};

struct ImageInfo {
  std::string device;  // path and kind
  bool real_pmem = false;
  std::string uuid;
  std::string label;
  uint32_t version = 0;
  uint64_t generation = 0;
  int superblock_slot = 0;
  bool clean = false;
  std::vector<std::string> features;
  uint64_t device_size = 0;
  uint64_t block_size = 0;
  uint64_t chunk_size = 0;
  uint64_t chunk_count = 0;
  uint64_t metadata_chunks = 0;
  uint64_t metadata_twin_chunks = 0;  // metadup: one per metadata chunk
  uint64_t data_chunks = 0;
  uint64_t free_chunks = 0;
  uint64_t metadata_nodes_total = 0;
  uint64_t metadata_nodes_used = 0;
  uint64_t metadata_nodes_free = 0;
  std::vector<ChunkInfo> chunks;
  std::vector<TreeInfo> trees;
};

struct CheckResult {
  std::vector<std::string> problems;
  std::vector<std::string> damage;  // recorded media damage (lost ranges, retired space): not a problem
  uint64_t nodes_checked = 0;
  uint64_t records_checked = 0;
  bool ok() const { return problems.empty(); }
};

// Makes a new, empty filesystem on `path` (a file or a pmem device). On any error nothing on
// the device has changed.
Status Mkfs(const std::string& path, const MkfsOptions& options);

// Changes features of an existing (unmounted) image; see TuneOptions. EINVAL when nothing is
// asked.
Result<TuneReport> Tune(const std::string& path, const TuneOptions& options);

// Mounts read-only and describes the image.
Result<ImageInfo> Inspect(const std::string& path);

// Mounts read-only and runs the full consistency check. A corrupt image that cannot even be
// mounted is an error (EUCLEAN, naming what and where); damage found inside is in `problems`.
Result<CheckResult> Check(const std::string& path);

// Parses sizes such as "4096", "64K", "256M", "1G", "2T" (powers of 1024). EINVAL otherwise.
Result<uint64_t> ParseSize(const std::string& text);

}  // namespace daxfs
