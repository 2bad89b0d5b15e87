// Whole-image operations behind include/daxfs/image.h: mkfs, inspect, check.
// Uses the fs, device and txn layers; the CLI sees none of them.
#include "daxfs/image.h"

#include <fmt/core.h>
#include <sys/stat.h>

#include <cctype>
#include <cstring>

#include "btree/btree.h"
#include "device/device.h"
#include "format/superblock.h"
#include "fs/fs_impl.h"
#include "fs/trees.h"
#include "scrub/mount.h"
#include "txn/pool.h"

namespace daxfs {
namespace {

std::vector<std::string> FeatureNames(const format::Superblock& sb) {
  std::vector<std::string> out;
  if (sb.ro_compat & format::feature::kRoCompatRmap) out.push_back("rmap");
  if (sb.ro_compat & format::feature::kRoCompatReflink) out.push_back("reflink");
  if (sb.ro_compat & format::feature::kRoCompatPoison) out.push_back("poison");
  if (sb.ro_compat & format::feature::kRoCompatMetadup) out.push_back("metadup");
  if (sb.ro_compat & format::feature::kRoCompatPosix) out.push_back("posix");
  return out;
}

bool HoldsDaxfs(const device::Device& dev) {
  if (dev.size() < 2 * format::kBlockSize) return false;
  return format::SelectSuperblock(dev.At(0), dev.At(format::kBlockSize), nullptr).ok();
}

}  // namespace

Result<uint64_t> ParseSize(const std::string& text) {
  if (text.empty() || !std::isdigit(static_cast<unsigned char>(text[0]))) {
    return Status::Invalid(fmt::format("'{}' is not a size (examples: 4096, 64M, 1G)", text));
  }
  size_t end = 0;
  uint64_t value = 0;
  while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end]))) {
    uint64_t digit = text[end] - '0';
    if (value > (UINT64_MAX - digit) / 10)
      return Status::Invalid(fmt::format("size '{}' is too large", text));
    value = value * 10 + digit;
    ++end;
  }
  std::string suffix = text.substr(end);
  int shift = 0;
  if (suffix.empty())
    shift = 0;
  else if (suffix == "K" || suffix == "k" || suffix == "KiB")
    shift = 10;
  else if (suffix == "M" || suffix == "m" || suffix == "MiB")
    shift = 20;
  else if (suffix == "G" || suffix == "g" || suffix == "GiB")
    shift = 30;
  else if (suffix == "T" || suffix == "t" || suffix == "TiB")
    shift = 40;
  else
    return Status::Invalid(
        fmt::format("'{}' has an unknown size suffix '{}' (use K, M, G or T)", text, suffix));
  if (shift && value > (UINT64_MAX >> shift))
    return Status::Invalid(fmt::format("size '{}' is too large", text));
  return value << shift;
}

Status Mkfs(const std::string& path, const MkfsOptions& options) {
  struct stat st;
  bool existed = ::stat(path.c_str(), &st) == 0;
  if (!existed) {
    if (options.create_size == 0) {
      return Status::NotFound(fmt::format("{}: no such file (give a size to create it)", path));
    }
    if (options.create_size < txn::kMinDeviceSize || options.create_size % format::kBlockSize) {
      return Status::Invalid(fmt::format("{}: size {} must be a multiple of 4096 and at least {}",
                                         path, options.create_size, txn::kMinDeviceSize));
    }
    RETURN_IF_ERROR(device::CreateDeviceFile(path, options.create_size));
  } else if (options.create_size != 0 && S_ISREG(st.st_mode) &&
             static_cast<uint64_t>(st.st_size) != options.create_size) {
    return Status::Exists(fmt::format("{}: exists with size {}, not {} (remove it first)", path,
                                      st.st_size, options.create_size));
  }
  auto undo_create = [&](Status s) {
    if (!existed) ::unlink(path.c_str());
    return s;
  };
  Result<std::unique_ptr<device::Device>> dev = device::OpenDevice(path);
  if (!dev.ok()) return undo_create(dev.status());
  if (existed && !options.force && HoldsDaxfs(**dev)) {
    return Status::Exists(
        fmt::format("{}: already holds a daxfs filesystem (use --force to replace it)", path));
  }
  FormatOptions fo{.chunk_size = options.chunk_size,
                   .label = options.label,
                   .rmap = options.rmap,
                   .reflink = options.reflink,
                   .metadata_dup = options.metadata_dup};
  Status formatted = fs::FsImpl::FormatDevice(dev->get(), fo);
  if (!formatted.ok()) return undo_create(formatted.WithContext(path));
  return Status::Ok();
}

Result<ImageInfo> Inspect(const std::string& path) {
  ASSIGN_OR_RETURN(auto dev, device::OpenDevice(path, {.read_only = true}));
  Result<std::unique_ptr<txn::Pool>> opened = txn::Pool::Open(dev.get(), {.read_only = true});
  if (!opened.ok()) return opened.status().WithContext(path);
  txn::Pool& pool = **opened;
  format::Superblock sb = pool.superblock();
  txn::SpaceInfo space = pool.Space();
  ImageInfo info;
  info.device = dev->Describe();
  info.real_pmem = dev->IsPmem();
  info.uuid = sb.UuidString();
  info.label = sb.Label();
  info.version = sb.version;
  info.generation = sb.generation;
  info.superblock_slot = pool.superblock_slot();
  info.clean = pool.was_clean();
  info.features = FeatureNames(sb);
  info.device_size = sb.device_size;
  info.block_size = sb.block_size;
  info.chunk_size = sb.chunk_size;
  info.chunk_count = sb.chunk_count;
  info.metadata_chunks = space.metadata_chunks;
  info.metadata_twin_chunks = space.metadata_twin_chunks;
  info.data_chunks = space.data_chunks;
  info.free_chunks = space.free_chunks;
  info.metadata_nodes_total = space.nodes.total;
  info.metadata_nodes_used = space.nodes.used;
  info.metadata_nodes_free = space.nodes.free + space.nodes.deferred;
  auto typed = pool.Chunks();
  size_t next = 0;
  for (uint64_t c = 0; c < sb.chunk_count; ++c) {
    ChunkInfo ci{.index = c,
                 .offset = c * sb.chunk_size,
                 .length = sb.ChunkBlockCount(c) * format::kBlockSize,
                 .type = "free"};
    if (next < typed.size() && typed[next].first == c)
      ci.type = format::ChunkTypeName(typed[next++].second);
    info.chunks.push_back(ci);
  }
  for (const format::TwinPair& p : sb.twins()) {
    if (p.primary < info.chunks.size()) info.chunks[p.primary].partner = p.twin;
    if (p.twin < info.chunks.size()) info.chunks[p.twin].partner = p.primary;
  }
  auto view = pool.BeginRead();
  for (uint16_t id = 1; id < format::kMaxTrees; ++id) {
    const format::TreeRoot& t = sb.trees[id];
    if (t.key_words == 0) continue;
    TreeInfo ti{.name = fs::TreeName(id),
                .id = id,
                .root = t.root,
                .records = t.records,
                .key_bytes = static_cast<uint16_t>(t.key_words * 8),
                .value_bytes = t.value_size};
    if (t.root != 0) {
      btree::TreeSpec spec{.id = static_cast<format::TreeId>(id),
                           .name = "walk",
                           .key_words = t.key_words,
                           .value_size = t.value_size};
      if (t.flags & format::kTreeInterval) {
        spec.interval_end = [](const btree::Key& k, const uint8_t*) { return k.w[0] + 1; };
      }
      btree::BTree tree(spec, view.get(), t.root);
      int top = -1;
      Status s = tree.VisitNodes([&](uint64_t, int level) {
        ++ti.nodes;
        top = std::max(top, level);
        return Status::Ok();
      });
      if (!s.ok()) return s.WithContext(fmt::format("{}: {} tree", path, ti.name));
      ti.height = static_cast<uint32_t>(top + 1);
    }
    info.trees.push_back(ti);
  }
  return info;
}

Result<TuneReport> Tune(const std::string& path, const TuneOptions& options) {
  if (!options.metadata_dup) return Status::Invalid("nothing to change (try --metadata-dup)");
  ASSIGN_OR_RETURN(auto dev, device::OpenDevice(path));
  device::Device* raw = dev.get();
  Result<std::unique_ptr<fs::FsFace>> mounted = scrub::Mount(raw, std::move(dev), {});
  if (!mounted.ok()) return mounted.status().WithContext(path);
  // Every FsFace is the FsImpl scrub::Mount made.
  auto* fs = static_cast<fs::FsImpl*>(mounted->get());
  TuneReport report;
  if (options.metadata_dup) {
    Status enabled = fs->EnableMetadataDup();
    if (!enabled.ok()) return enabled.WithContext(path);
    txn::SpaceInfo space = fs->pool()->Space();
    report.changes.push_back(fmt::format(
        "metadata twins on: {} metadata chunk(s), each with a METADATA_TWIN chunk holding a copy "
        "of every node; the superblock copied into chunk {}",
        space.metadata_chunks, fs->pool()->TwinBlock(0) / fs->pool()->superblock().chunk_blocks()));
  }
  RETURN_IF_ERROR((*mounted)->Unmount().WithContext(path));
  return report;
}

Result<CheckResult> Check(const std::string& path) {
  ASSIGN_OR_RETURN(auto fs, Filesystem::Open(path, {.read_only = true}));
  ASSIGN_OR_RETURN(FsCheckResult report, fs->Check());
  return CheckResult{.problems = report.problems,
                     .damage = report.damage,
                     .nodes_checked = report.nodes_checked,
                     .records_checked = report.inodes_checked + report.extents_checked};
}

}  // namespace daxfs
