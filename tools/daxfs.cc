// The `daxfs` command: every subcommand takes the image or device first, then its arguments.
// Uses only the public API in include/daxfs/; errors print as "daxfs: <command>: <reason>".
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "daxfs/image.h"

namespace {

int Fail(const std::string& command, const daxfs::Status& status) {
  fmt::print(stderr, "daxfs: {}: {}\n", command, status.ToString());
  return 1;
}

std::string HumanSize(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", v, units[u]);
}

nlohmann::json InfoJson(const daxfs::ImageInfo& info) {
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
                      {"data_chunks", info.data_chunks},
                      {"free_chunks", info.free_chunks},
                      {"metadata_nodes", {{"total", info.metadata_nodes_total},
                                          {"used", info.metadata_nodes_used},
                                          {"free", info.metadata_nodes_free}}}};
  j["trees"] = nlohmann::json::array();
  for (const auto& t : info.trees) {
    j["trees"].push_back({{"name", t.name}, {"id", t.id}, {"root", t.root}, {"records", t.records},
                          {"nodes", t.nodes}, {"height", t.height}, {"key_bytes", t.key_bytes},
                          {"value_bytes", t.value_bytes}});
  }
  j["chunks"] = nlohmann::json::array();
  for (const auto& c : info.chunks) {
    j["chunks"].push_back({{"index", c.index}, {"offset", c.offset}, {"length", c.length}, {"type", c.type}});
  }
  return j;
}

void PrintInfo(const daxfs::ImageInfo& info) {
  fmt::print("device:          {}\n", info.device);
  fmt::print("uuid:            {}\n", info.uuid);
  fmt::print("label:           {}\n", info.label.empty() ? "(none)" : info.label);
  fmt::print("format version:  {}\n", info.version);
  std::string features;
  for (const auto& f : info.features) features += (features.empty() ? "" : ",") + f;
  fmt::print("features:        {}\n", features.empty() ? "(none)" : features);
  fmt::print("generation:      {} (superblock slot {}, {})\n", info.generation, info.superblock_slot,
             info.clean ? "clean" : "not cleanly unmounted");
  fmt::print("size:            {} ({} bytes), block size {}\n", HumanSize(info.device_size),
             info.device_size, info.block_size);
  fmt::print("chunks:          {} x {}: {} metadata, {} data, {} free\n", info.chunk_count,
             HumanSize(info.chunk_size), info.metadata_chunks, info.data_chunks, info.free_chunks);
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

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"daxfs: a filesystem engine for persistent and byte-addressable memory.\n"
               "Every command takes the image or device first: daxfs <command> IMAGE [args]"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "daxfs 0.1.0");

  std::string image;
  std::string size_text;
  daxfs::MkfsOptions mkfs_options;
  std::string chunk_text;
  auto* mkfs = app.add_subcommand("mkfs", "Make a new, empty filesystem (creating the file if SIZE is given)");
  mkfs->add_option("IMAGE", image, "Image file or pmem device")->required();
  mkfs->add_option("SIZE", size_text, "Size of a new image file, e.g. 256M or 1G");
  mkfs->add_option("--chunk-size", chunk_text, "Chunk size (power of two, 256K..1G; default from size)");
  mkfs->add_option("--label", mkfs_options.label, "Label (up to 31 bytes)");
  mkfs->add_flag("-f,--force", mkfs_options.force, "Replace an existing daxfs filesystem");

  bool json = false;
  auto* info = app.add_subcommand("info", "Show the superblock, features, geometry, usage and trees");
  info->add_option("IMAGE", image, "Image file or pmem device")->required();
  info->add_flag("--json", json, "Print JSON");

  auto* check = app.add_subcommand("check", "Check the consistency of every structure (read-only)");
  check->add_option("IMAGE", image, "Image file or pmem device")->required();

  CLI11_PARSE(app, argc, argv);

  if (mkfs->parsed()) {
    if (!size_text.empty()) {
      daxfs::Result<uint64_t> size = daxfs::ParseSize(size_text);
      if (!size.ok()) return Fail("mkfs", size.status());
      mkfs_options.create_size = *size;
    }
    if (!chunk_text.empty()) {
      daxfs::Result<uint64_t> chunk = daxfs::ParseSize(chunk_text);
      if (!chunk.ok()) return Fail("mkfs", chunk.status());
      mkfs_options.chunk_size = *chunk;
    }
    daxfs::Status s = daxfs::Mkfs(image, mkfs_options);
    if (!s.ok()) return Fail("mkfs", s);
    daxfs::Result<daxfs::ImageInfo> made = daxfs::Inspect(image);
    if (!made.ok()) return Fail("mkfs", made.status());
    fmt::print("{}: daxfs filesystem of {} made: {} chunks of {}, uuid {}\n", image,
               HumanSize(made->device_size), made->chunk_count, HumanSize(made->chunk_size), made->uuid);
    return 0;
  }
  if (info->parsed()) {
    daxfs::Result<daxfs::ImageInfo> got = daxfs::Inspect(image);
    if (!got.ok()) return Fail("info", got.status());
    if (json) {
      fmt::print("{}\n", InfoJson(*got).dump(2));
    } else {
      PrintInfo(*got);
    }
    return 0;
  }
  if (check->parsed()) {
    daxfs::Result<daxfs::CheckResult> got = daxfs::Check(image);
    if (!got.ok()) return Fail("check", got.status());
    for (const auto& p : got->problems) fmt::print("{}: {}\n", image, p);
    if (!got->ok()) {
      fmt::print(stderr, "daxfs: check: {}: {} problem(s) found\n", image, got->problems.size());
      return 1;
    }
    fmt::print("{}: clean: {} nodes and {} records checked, no problems\n", image,
               got->nodes_checked, got->records_checked);
    return 0;
  }
  return 0;
}
