// Whole-image subcommands of `daxfs`: mkfs, info, df, check.
// Knows only the public API in include/daxfs/ (image.h for mkfs/info/check, Filesystem for df).
#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include "cli.h"

namespace daxfs::cli {
namespace {

nlohmann::json InfoJson(const ImageInfo& info) {
  nlohmann::json j = {{"device", info.device},
                      {"real_pmem", info.real_pmem},
                      {"uuid", info.uuid},
                      {"label", info.label},
                      {"format_version", info.version},
                      {"generation", info.generation},
                      {"superblock_slot", info.superblock_slot},
                      {"clean", info.clean},
                      {"features", info.features},
                      {"device_size", info.device_size},
                      {"block_size", info.block_size},
                      {"chunk_size", info.chunk_size},
                      {"chunk_count", info.chunk_count},
                      {"metadata_chunks", info.metadata_chunks},
                      {"metadata_twin_chunks", info.metadata_twin_chunks},
                      {"data_chunks", info.data_chunks},
                      {"free_chunks", info.free_chunks},
                      {"metadata_nodes",
                       {{"total", info.metadata_nodes_total},
                        {"used", info.metadata_nodes_used},
                        {"free", info.metadata_nodes_free}}}};
  j["trees"] = nlohmann::json::array();
  for (const auto& t : info.trees) {
    j["trees"].push_back({{"name", t.name},
                          {"id", t.id},
                          {"root", t.root},
                          {"records", t.records},
                          {"nodes", t.nodes},
                          {"height", t.height},
                          {"key_bytes", t.key_bytes},
                          {"value_bytes", t.value_bytes}});
  }
  j["chunks"] = nlohmann::json::array();
  for (const auto& c : info.chunks) {
    nlohmann::json chunk = {
        {"index", c.index}, {"offset", c.offset}, {"length", c.length}, {"type", c.type}};
    if (c.partner >= 0) chunk[c.type == "METADATA_TWIN" ? "twin_of" : "twin"] = c.partner;
    j["chunks"].push_back(chunk);
  }
  return j;
}

std::string Features(const ImageInfo& info) {
  std::string features;
  for (const auto& f : info.features) features += (features.empty() ? "" : ",") + f;
  return features.empty() ? "(none)" : features;
}

void PrintInfo(const ImageInfo& info) {
  fmt::print("device:          {}\n", info.device);
  fmt::print("uuid:            {}\n", info.uuid);
  fmt::print("label:           {}\n", info.label.empty() ? "(none)" : info.label);
  fmt::print("format version:  {}\n", info.version);
  fmt::print("features:        {}\n", Features(info));
  fmt::print("generation:      {} (superblock slot {}, {})\n", info.generation,
             info.superblock_slot, info.clean ? "clean" : "not cleanly unmounted");
  fmt::print("size:            {} ({} bytes), block size {}\n", HumanSize(info.device_size),
             info.device_size, info.block_size);
  fmt::print("chunks:          {} x {}: {} metadata, {}{} data, {} free\n", info.chunk_count,
             HumanSize(info.chunk_size), info.metadata_chunks,
             info.metadata_twin_chunks ? fmt::format("{} metadata twin, ", info.metadata_twin_chunks)
                                       : "",
             info.data_chunks, info.free_chunks);
  std::string twins;
  for (const auto& c : info.chunks) {
    if (c.type == "METADATA" && c.partner >= 0)
      twins += fmt::format("{}{} -> {}", twins.empty() ? "" : ", ", c.index, c.partner);
  }
  if (!twins.empty()) fmt::print("metadata twins:  chunk {}\n", twins);
  fmt::print("metadata nodes:  {} total, {} used, {} free\n", info.metadata_nodes_total,
             info.metadata_nodes_used, info.metadata_nodes_free);
  fmt::print("trees:\n");
  fmt::print("  {:<10} {:>4} {:>10} {:>10} {:>7} {:>7} {:>9}\n", "name", "id", "root", "records",
             "nodes", "height", "key/value");
  for (const auto& t : info.trees) {
    fmt::print("  {:<10} {:>4} {:>10} {:>10} {:>7} {:>7} {:>9}\n", t.name, t.id, t.root, t.records,
               t.nodes, t.height, fmt::format("{}/{}", t.key_bytes, t.value_bytes));
  }
}

// ---- mkfs

struct MkfsArgs {
  std::string image;
  std::string size;
  std::string chunk_size;
  MkfsOptions options;
  bool no_rmap = false;
  bool no_reflink = false;
  bool no_metadata_dup = false;
};

Status RunMkfs(const MkfsArgs& a) {
  MkfsOptions options = a.options;
  if (!a.size.empty()) {
    ASSIGN_OR_RETURN(options.create_size, ParseSizeArg("SIZE", a.size));
  }
  if (!a.chunk_size.empty()) {
    ASSIGN_OR_RETURN(options.chunk_size, ParseSizeArg("--chunk-size", a.chunk_size));
  }
  options.rmap = !a.no_rmap;
  options.reflink = !a.no_rmap && !a.no_reflink;  // reflink needs the reverse map
  options.metadata_dup = !a.no_metadata_dup;
  RETURN_IF_ERROR(At(a.image, Mkfs(a.image, options)));
  ASSIGN_OR_RETURN(ImageInfo made, Inspect(a.image));
  fmt::print("{}: daxfs filesystem of {} made: {} chunks of {}, features {}, uuid {}\n", a.image,
             HumanSize(made.device_size), made.chunk_count, HumanSize(made.chunk_size),
             Features(made), made.uuid);
  return Status::Ok();
}

// ---- tune

struct TuneArgs {
  std::string image;
  TuneOptions options;
};

Status RunTune(const TuneArgs& a) {
  Result<TuneReport> tuned = Tune(a.image, a.options);
  if (!tuned.ok()) return At(a.image, tuned.status());
  const TuneReport& report = *tuned;
  for (const std::string& c : report.changes) fmt::print("{}: {}\n", a.image, c);
  return Status::Ok();
}

// ---- info

struct InfoArgs {
  std::string image;
  bool json = false;
};

Status RunInfo(const InfoArgs& a) {
  Result<ImageInfo> info = Inspect(a.image);
  if (!info.ok()) return At(a.image, info.status());
  if (a.json) {
    fmt::print("{}\n", InfoJson(*info).dump(2));
  } else {
    PrintInfo(*info);
  }
  return Status::Ok();
}

// ---- df

struct DfArgs {
  std::string image;
  bool json = false;
};

void PrintDf(const std::string& image, const FsStats& st) {
  uint64_t bs = st.block_size;
  uint64_t used = st.total_blocks - st.free_blocks;
  uint64_t percent = st.total_blocks ? (used * 100 + st.total_blocks - 1) / st.total_blocks : 0;
  auto line = [&](const char* what, uint64_t blocks) {
    fmt::print("{:<11}{:>10}  ({} blocks)\n", what, HumanSize(blocks * bs), blocks);
  };
  fmt::print("{:<11}{}\n", "image:", image);
  line("size:", st.total_blocks);
  line("used:", used);
  line("available:", st.free_blocks);
  fmt::print("{:<11}{:>9}%\n", "use:", percent);
  line("data:", st.data_blocks_used);
  line("metadata:", st.metadata_blocks_used);
  fmt::print("{:<11}{:>10}  ({} files, {} directories, {} symlinks)\n", "inodes:", st.inodes,
             st.files, st.directories, st.symlinks);
}

nlohmann::json DfJson(const std::string& image, const FsStats& st) {
  uint64_t used = st.total_blocks - st.free_blocks;
  return {{"image", image},
          {"block_size", st.block_size},
          {"size_bytes", st.total_blocks * st.block_size},
          {"used_bytes", used * st.block_size},
          {"available_bytes", st.free_blocks * st.block_size},
          {"data_bytes", st.data_blocks_used * st.block_size},
          {"metadata_bytes", st.metadata_blocks_used * st.block_size},
          {"total_blocks", st.total_blocks},
          {"used_blocks", used},
          {"free_blocks", st.free_blocks},
          {"data_blocks", st.data_blocks_used},
          {"metadata_blocks", st.metadata_blocks_used},
          {"inodes", st.inodes},
          {"files", st.files},
          {"directories", st.directories},
          {"symlinks", st.symlinks},
          {"generation", st.generation}};
}

Status RunDf(const DfArgs& a) {
  return WithImage(a.image, Access::kReadOnly, [&](Filesystem& fs) -> Status {
    ASSIGN_OR_RETURN(FsStats st, fs.StatFs());
    if (a.json) {
      fmt::print("{}\n", DfJson(a.image, st).dump(2));
    } else {
      PrintDf(a.image, st);
    }
    return Status::Ok();
  });
}

// ---- check

Status RunCheck(const std::string& image) {
  Result<CheckResult> got = Check(image);
  if (!got.ok()) return At(image, got.status());
  for (const auto& p : got->problems) fmt::print("{}: {}\n", image, p);
  for (const auto& d : got->damage) fmt::print("{}: recorded media damage: {}\n", image, d);
  if (!got->ok()) {
    return At(image, Status::Corruption(fmt::format("{} problem(s) found", got->problems.size())));
  }
  fmt::print("{}: clean: {} nodes and {} records checked, no problems{}\n", image,
             got->nodes_checked, got->records_checked,
             got->damage.empty() ? ""
                                 : fmt::format(" ({} recorded media damage: see daxfs errors)",
                                               got->damage.size()));
  return Status::Ok();
}

}  // namespace

Runner SetupMkfs(CLI::App* sub) {
  auto a = std::make_shared<MkfsArgs>();
  AddImageArg(sub, &a->image);
  sub->add_option("SIZE", a->size, "Size of a new image file, e.g. 256M or 1G");
  sub->add_option("--chunk-size", a->chunk_size,
                  "Chunk size (power of two, 256K..1G; default from the size)");
  sub->add_option("--label", a->options.label, "Label (up to 31 bytes)");
  sub->add_flag("-f,--force", a->options.force, "Replace an existing daxfs filesystem");
  sub->add_flag("--no-rmap", a->no_rmap, "No reverse map (implies --no-reflink)");
  sub->add_flag("--no-reflink", a->no_reflink, "No shared blocks");
  sub->add_flag("--no-metadata-dup", a->no_metadata_dup,
                "No second copy of the metadata (a media error in metadata then shuts the "
                "filesystem down instead of being repaired)");
  return [a](Reporter&) { return RunMkfs(*a); };
}

Runner SetupTune(CLI::App* sub) {
  auto a = std::make_shared<TuneArgs>();
  AddImageArg(sub, &a->image);
  sub->add_flag("--metadata-dup", a->options.metadata_dup,
                "Add a second copy of every metadata node and of the superblock (one twin chunk "
                "per metadata chunk), in one commit");
  return [a](Reporter&) { return RunTune(*a); };
}

Runner SetupInfo(CLI::App* sub) {
  auto a = std::make_shared<InfoArgs>();
  AddImageArg(sub, &a->image);
  sub->add_flag("--json", a->json, "Print JSON");
  return [a](Reporter&) { return RunInfo(*a); };
}

Runner SetupDf(CLI::App* sub) {
  auto a = std::make_shared<DfArgs>();
  AddImageArg(sub, &a->image);
  sub->add_flag("--json", a->json, "Print JSON (bytes and blocks)");
  return [a](Reporter&) { return RunDf(*a); };
}

Runner SetupCheck(CLI::App* sub) {
  auto image = std::make_shared<std::string>();
  AddImageArg(sub, image.get());
  return [image](Reporter&) { return RunCheck(*image); };
}

}  // namespace daxfs::cli
