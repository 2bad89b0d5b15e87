// Media-failure commands: inject-error (like `ndctl inject-error`: mark device bytes bad on an
// emulated device and route the failure), errors (lost file ranges, retired space, metadata
// damage), and map (map files directly, optionally inject an error under the mappings and show
// every mapping being told where). Uses only the public API in include/daxfs/.
#include <fmt/core.h>

#include <map>
#include <nlohmann/json.hpp>

#include "cli.h"
#include "fuse/scrub_json.h"

namespace daxfs::cli {
namespace {

// "PATH:OFFSET" -> the device offset of the block behind byte OFFSET of PATH.
Result<uint64_t> DeviceOffsetOf(Filesystem& fs, const std::string& spec) {
  size_t colon = spec.rfind(':');
  if (colon == std::string::npos) {
    return Status::Invalid(fmt::format("'{}' is not PATH:OFFSET", spec));
  }
  std::string path = spec.substr(0, colon);
  ASSIGN_OR_RETURN(uint64_t offset, ParseSizeArg("--at", spec.substr(colon + 1)));
  ASSIGN_OR_RETURN(Attr a, ResolveRegular(fs, path));
  ASSIGN_OR_RETURN(std::vector<FileExtent> extents, fs.Bmap(a.ino));
  for (const FileExtent& x : extents) {
    if (offset >= x.file_offset && offset < x.file_offset + x.length) {
      return (x.device_offset + (offset - x.file_offset)) & ~uint64_t{4095};
    }
  }
  return At(path, Status::Invalid(fmt::format("byte {} is in a hole: no device block behind it",
                                              offset)));
}

struct InjectArgs {
  std::string image, offset, length = "4096", at, socket;
  bool latent = false;
};

Status RunInjectError(const InjectArgs& a) {
  if (a.offset.empty() == a.at.empty()) {
    return Status::Invalid("give either --offset (device bytes) or --at PATH:OFFSET");
  }
  if (!a.socket.empty()) {
    if (!a.image.empty()) return Status::Invalid("give either IMAGE or --socket, not both");
    if (a.latent) return Status::Invalid("--latent: give IMAGE or a mount point (not --socket)");
    return InjectErrorThroughSocket(a.socket, a.offset, a.length, a.at);
  }
  if (a.image.empty()) return Status::Invalid("give IMAGE (or --socket of a daxfs serve)");
  if (IsDaxfsMount(a.image)) return InjectErrorThroughMount(a.image, a.offset, a.length, a.at, a.latent);
  return WithDax(a.image, Access::kReadWrite, {}, [&](DaxFs& dax) -> Status {
    uint64_t offset = 0;
    if (!a.at.empty()) {
      ASSIGN_OR_RETURN(offset, DeviceOffsetOf(dax.fs(), a.at));
    } else {
      ASSIGN_OR_RETURN(offset, ParseSizeArg("--offset", a.offset));
    }
    ASSIGN_OR_RETURN(uint64_t length, ParseSizeArg("--length", a.length));
    if (a.latent) {
      Result<DeviceRange> m = dax.InjectLatentError(offset, length);
      if (!m.ok()) return At(a.image, m.status());
      fmt::print("device bytes {}+{} marked bad (latent: not routed)\n", m->offset, m->length);
      return Status::Ok();
    }
    Result<FailureReport> r = dax.InjectError(offset, length);
    if (!r.ok()) return At(a.image, r.status());
    PrintFailureReport(*r, stdout);
    return Status::Ok();
  });
}

struct ErrorsArgs {
  std::string image;
  bool json = false;
};

Status RunErrors(const ErrorsArgs& a) {
  return WithImage(a.image, Access::kReadOnly, [&](Filesystem& fs) -> Status {
    ASSIGN_OR_RETURN(MediaErrorList e, fs.MediaErrors());
    if (a.json) {
      nlohmann::json out;
      out["lost"] = nlohmann::json::array();
      for (const FileRangeLoss& l : e.lost) out["lost"].push_back(fusefs::LossJson(l));
      out["retired"] = fusefs::RangesJson(e.retired);
      out["bad"] = fusefs::RangesJson(e.bad);
      if (!e.incomplete.empty()) out["incomplete"] = e.incomplete;
      out["metadata_damage"] = nlohmann::json::array();
      for (const RangePiece& p : e.metadata_damage) {
        out["metadata_damage"].push_back(
            {{"offset", p.offset}, {"length", p.length}, {"kind", RangeKindName(p.kind)}});
      }
      fmt::print("{}\n", out.dump(2));
      return Status::Ok();
    }
    if (!e.incomplete.empty()) {
      fmt::print("incomplete: damaged metadata keeps the lost and retired ranges from being read: "
                 "{}\n", e.incomplete);
    }
    fmt::print("lost file ranges: {}\n", e.lost.size());
    for (const FileRangeLoss& l : e.lost) {
      fmt::print("  {:<24} inode {:<5} file bytes {}+{}  device {}{}\n",
                 l.path.empty() ? "(no path)" : l.path, l.ino, l.file_offset, l.length,
                 l.device_offset, l.shared ? "  shared" : "");
    }
    fmt::print("retired device ranges: {}\n", e.retired.size());
    for (const DeviceRange& r : e.retired) fmt::print("  device bytes {}+{}\n", r.offset, r.length);
    fmt::print("metadata damage: {}\n", e.metadata_damage.size());
    for (const RangePiece& p : e.metadata_damage) {
      fmt::print("  device bytes {}+{} ({})\n", p.offset, p.length, RangeKindName(p.kind));
    }
    fmt::print("bad device ranges known: {}\n", e.bad.size());
    for (const DeviceRange& r : e.bad) fmt::print("  device bytes {}+{}\n", r.offset, r.length);
    return Status::Ok();
  });
}

struct MapArgs {
  std::vector<std::string> paths;
  std::string image, inject, inject_at, length = "4096", tracking = "fs-rmap";
  bool load = false, writable = false;
  ClientMapArgs client;  // --socket: through a running daemon
};

Status RunMap(const MapArgs& a) {
  if (!a.client.socket.empty()) {  // IMAGE is then the first file
    ClientMapArgs c = a.client;
    c.paths = {a.image};
    c.paths.insert(c.paths.end(), a.paths.begin(), a.paths.end());
    c.inject = a.inject;
    c.inject_at = a.inject_at;
    c.length = a.length;
    c.load = a.load;
    c.writable = a.writable;
    return MapThroughSocket(c);
  }
  if (a.paths.empty()) return Status::Invalid("give the files to map after IMAGE");
  ASSIGN_OR_RETURN(Tracking tracking, ParseTracking(a.tracking));
  DaxOptions options{.tracking = tracking, .handle_signals = true};
  return WithDax(a.image, Access::kReadWrite, options, [&](DaxFs& dax) -> Status {
    Filesystem& fs = dax.fs();
    struct Mapped {
      std::string path;
      std::unique_ptr<Mapping> mapping;
      std::vector<MappingNotice> notices;
    };
    std::vector<std::unique_ptr<Mapped>> maps;
    for (const std::string& path : a.paths) {
      ASSIGN_OR_RETURN(Attr attr, ResolveRegular(fs, path));
      if (attr.size == 0) return At(path, Status::Invalid("the file is empty: nothing to map"));
      auto m = std::make_unique<Mapped>();
      m->path = path;
      Mapped* raw = m.get();
      uint64_t length = (attr.size + 4095) / 4096 * 4096;
      Result<std::unique_ptr<Mapping>> mapping = dax.Map(
          attr.ino, 0, length, a.writable ? MapProt::kReadWrite : MapProt::kRead,
          [raw](const MappingNotice& n) {
            raw->notices.push_back(n);
            fmt::print("  handler of mapping #{} ({}): {} at {:#x}+{} = file offset {} "
                       "(device {}){}{}\n",
                       n.mapping_id, raw->path,
                       n.removal ? "device removal" : n.consumed ? "trapped access" : "bad bytes",
                       reinterpret_cast<uintptr_t>(n.address), n.length, n.file_offset,
                       n.device_offset, n.action_required ? ", action required" : "",
                       n.consumed ? ", consumed" : "");
          });
      if (!mapping.ok()) return At(path, mapping.status());
      m->mapping = std::move(*mapping);
      fmt::print("mapped {} ({} bytes, inode {}) {} at {:#x} as mapping #{}\n", path, attr.size,
                 attr.ino, a.writable ? "read-write" : "read-only",
                 reinterpret_cast<uintptr_t>(m->mapping->data()), m->mapping->id());
      maps.push_back(std::move(m));
    }
    if (!a.inject.empty() || !a.inject_at.empty()) {
      uint64_t offset = 0;
      if (!a.inject_at.empty()) {
        ASSIGN_OR_RETURN(offset, DeviceOffsetOf(fs, a.inject_at));
      } else {
        ASSIGN_OR_RETURN(offset, ParseSizeArg("--inject", a.inject));
      }
      ASSIGN_OR_RETURN(uint64_t length, ParseSizeArg("--length", a.length));
      fmt::print("injecting a media error at device bytes {}+{} ({} tracking):\n", offset, length,
                 TrackingName(tracking));
      ASSIGN_OR_RETURN(FailureReport r, dax.InjectError(offset, length));
      PrintFailureReport(r, stdout);
    }
    if (a.load) {
      Mapped* victim = nullptr;
      for (auto& m : maps) {
        if (!m->notices.empty()) {
          victim = m.get();
          break;
        }
      }
      if (victim == nullptr) {
        fmt::print("--load: no mapping was notified, so there is no fenced page to load from\n");
      } else {
        volatile uint8_t* p = victim->notices[0].address;
        fmt::print("loading one byte from {:#x} ({} at file offset {}), a fenced page:\n",
                   reinterpret_cast<uintptr_t>(p), victim->path, victim->notices[0].file_offset);
        uint8_t byte = 0;
        Status s = GuardMediaErrors([&] { byte = *p; });
        RETURN_IF_ERROR(dax.WaitForSignals());
        if (s.ok()) {
          return Status::IoError(fmt::format("the load from a fenced page returned {:#x} instead "
                                             "of trapping", byte));
        }
        fmt::print("  the load trapped: {}\n", s.ToString());
      }
    }
    for (auto& m : maps) m->mapping.reset();
    return Status::Ok();
  });
}

}  // namespace

Runner SetupInjectError(CLI::App* sub) {
  auto a = std::make_shared<InjectArgs>();
  sub->add_option("IMAGE", a->image, "The image file or pmem device (or give --socket)");
  sub->add_option("--socket", a->socket, "Or: inject through the daxfs serve daemon of this socket");
  sub->add_option("--offset", a->offset, "Device byte offset of the bad range");
  sub->add_option("--at", a->at, "Or: the device block behind PATH:OFFSET of a file");
  sub->add_option("--length", a->length, "Bytes (default 4096; whole blocks go bad)");
  sub->add_flag("--latent", a->latent,
                "Only mark the blocks bad (a latent error a read or a scrub finds): not routed");
  return [a](Reporter&) { return RunInjectError(*a); };
}

Runner SetupErrors(CLI::App* sub) {
  auto a = std::make_shared<ErrorsArgs>();
  AddImageArg(sub, &a->image);
  sub->add_flag("--json", a->json, "Print JSON");
  return [a](Reporter&) { return RunErrors(*a); };
}

Runner SetupMap(CLI::App* sub) {
  auto a = std::make_shared<MapArgs>();
  sub->add_option("IMAGE", a->image, "The image file or pmem device (with --socket: a file)")
      ->required();
  sub->add_option("PATHS", a->paths, "Files to map (whole files, one mapping each)");
  sub->add_option("--socket", a->client.socket,
                  "Map through the daxfs serve daemon of this socket, from this process");
  sub->add_option("--wait-notices", a->client.wait_notices,
                  "With --socket: then wait until this many failure notices arrived");
  sub->add_option("--timeout", a->client.timeout_s, "With --socket: how long to wait (s)");
  sub->add_option("--ready-file", a->client.ready_file,
                  "With --socket: create this file once every mapping is in place");
  sub->add_flag("--writable", a->writable, "Map read-write (holes allocated, blocks unshared)");
  sub->add_option("--inject", a->inject, "Then inject a media error at this device offset");
  sub->add_option("--inject-at", a->inject_at, "Or at the device block behind PATH:OFFSET");
  sub->add_option("--length", a->length, "Bytes of the injected error (default 4096)");
  sub->add_flag("--load", a->load, "Then load a byte from a fenced page (it must trap)");
  sub->add_option("--tracking", a->tracking,
                  "Owner tracking: fs-rmap (default), page-rmap, extent-space, full-scan");
  return [a](Reporter&) { return RunMap(*a); };
}

}  // namespace daxfs::cli
