// Reflink and owner commands: reflink (clone a file or range), dedupe, unshare, fsmap (who owns
// device ranges, like `xfs_io -c 'fsmap -v'`), repair (rebuild rmap and refcounts).
// Uses only the public API in include/daxfs/.
#include <fmt/core.h>

#include <map>
#include <nlohmann/json.hpp>

#include "cli.h"

namespace daxfs::cli {
namespace {

struct ReflinkArgs {
  std::string image, src, dst;
  std::string src_offset = "0", dst_offset = "0", length;
};

Result<Attr> SourceFile(Filesystem& fs, const std::string& path) {
  Result<Attr> a = ResolveRegular(fs, path);
  if (!a.ok()) return At(path, a.status());
  return a;
}

// The destination file, created (empty, mode 0644) when it does not exist.
Result<Attr> DestinationFile(Filesystem& fs, const std::string& path) {
  RETURN_IF_ERROR(CheckAbsolute(path));
  Result<Attr> existing = fs.Resolve(path, true);
  if (existing.ok()) return ResolveRegular(fs, path);
  if (!existing.status().IsNotFound()) return At(path, existing.status());
  ASSIGN_OR_RETURN(ParentAndName pn, ResolveParent(fs, path));
  Result<Attr> made = fs.Create(pn.dir.ino, pn.name, 0644);
  if (!made.ok()) return At(path, made.status());
  return made;
}

Status RunReflink(const ReflinkArgs& a) {
  return WithImage(a.image, Access::kReadWrite, [&](Filesystem& fs) -> Status {
    RETURN_IF_ERROR(CheckAbsolute(a.src));
    ASSIGN_OR_RETURN(Attr src, SourceFile(fs, a.src));
    ASSIGN_OR_RETURN(Attr dst, DestinationFile(fs, a.dst));
    if (a.length.empty() && a.src_offset == "0" && a.dst_offset == "0") {
      Status s = fs.Clone(src.ino, dst.ino);
      if (!s.ok()) return At(a.dst, s);
      fmt::print("{} -> {}: {} bytes shared\n", a.src, a.dst, src.size);
      return Status::Ok();
    }
    ASSIGN_OR_RETURN(uint64_t so, ParseSizeArg("--src-offset", a.src_offset));
    ASSIGN_OR_RETURN(uint64_t d, ParseSizeArg("--dst-offset", a.dst_offset));
    uint64_t len = 0;
    if (!a.length.empty()) {
      ASSIGN_OR_RETURN(len, ParseSizeArg("--length", a.length));
    }
    Status s = fs.CloneRange(src.ino, so, dst.ino, d, len);
    if (!s.ok()) return At(a.dst, s);
    fmt::print("{} [{}..] -> {} [{}..]: {} shared\n", a.src, so, a.dst, d,
               len ? fmt::format("{} bytes", len) : std::string("to end of file"));
    return Status::Ok();
  });
}

Status RunDedupe(const ReflinkArgs& a) {
  return WithImage(a.image, Access::kReadWrite, [&](Filesystem& fs) -> Status {
    RETURN_IF_ERROR(CheckAbsolute(a.src));
    RETURN_IF_ERROR(CheckAbsolute(a.dst));
    ASSIGN_OR_RETURN(Attr src, SourceFile(fs, a.src));
    ASSIGN_OR_RETURN(Attr dst, SourceFile(fs, a.dst));
    ASSIGN_OR_RETURN(uint64_t so, ParseSizeArg("--src-offset", a.src_offset));
    ASSIGN_OR_RETURN(uint64_t d, ParseSizeArg("--dst-offset", a.dst_offset));
    ASSIGN_OR_RETURN(uint64_t len, ParseSizeArg("--length", a.length));
    Result<DedupeResult> r = fs.Dedupe(src.ino, so, dst.ino, d, len);
    if (!r.ok()) return At(a.dst, r.status());
    if (r->differs) {
      fmt::print("{} and {}: contents differ, nothing shared\n", a.src, a.dst);
    } else {
      fmt::print("{} and {}: {} bytes deduplicated\n", a.src, a.dst, r->bytes_deduped);
    }
    return Status::Ok();
  });
}

struct UnshareArgs {
  std::string image, path, offset = "0", length;
};

Status RunUnshare(const UnshareArgs& a) {
  return WithImage(a.image, Access::kReadWrite, [&](Filesystem& fs) -> Status {
    ASSIGN_OR_RETURN(Attr f, SourceFile(fs, a.path));
    ASSIGN_OR_RETURN(uint64_t off, ParseSizeArg("--offset", a.offset));
    uint64_t len = f.size > off ? f.size - off : 0;
    if (!a.length.empty()) {
      ASSIGN_OR_RETURN(len, ParseSizeArg("--length", a.length));
    }
    if (len == 0) return Status::Ok();
    Status s = fs.Unshare(f.ino, off, len);
    if (!s.ok()) return At(a.path, s);
    fmt::print("{}: [{}..{}] unshared\n", a.path, off, off + len - 1);
    return Status::Ok();
  });
}

struct FsmapArgs {
  std::string image;
  std::vector<std::string> range;  // START END
  bool json = false;
};

std::string OwnerName(Filesystem& fs, uint64_t owner, std::map<uint64_t, std::string>* paths) {
  switch (owner) {
    case kOwnerSuperblock:
      return "special:superblock";
    case kOwnerMetadata:
      return "special:metadata";
    case kOwnerBad:
      return "special:bad";
    case kOwnerFree:
      return "free space";
  }
  auto it = paths->find(owner);
  if (it == paths->end()) {
    Result<std::string> p = fs.PathOf(owner);
    it = paths->emplace(owner, p.ok() ? *p : "").first;
  }
  return it->second.empty() ? fmt::format("inode {}", owner)
                            : fmt::format("inode {} {}", owner, it->second);
}

std::string FlagString(uint32_t flags) {
  std::string s;
  auto add = [&](uint32_t bit, const char* name) {
    if (flags & bit) s += (s.empty() ? "" : ",") + std::string(name);
  };
  add(kFsmapShared, "shared");
  add(kFsmapSpecialOwner, "special");
  add(kFsmapUnwritten, "unwritten");
  add(kFsmapLast, "last");
  return s.empty() ? "-" : s;
}

Status RunFsmap(const FsmapArgs& a) {
  return WithImage(a.image, Access::kReadOnly, [&](Filesystem& fs) -> Status {
    uint64_t start = 0, end = UINT64_MAX;
    if (!a.range.empty()) {
      if (a.range.size() != 2) return Status::Invalid("-d takes START and END");
      ASSIGN_OR_RETURN(start, ParseSizeArg("START", a.range[0]));
      ASSIGN_OR_RETURN(end, ParseSizeArg("END", a.range[1]));
      if (end <= start) return Status::Invalid(fmt::format("END {} is not after START {}", end, start));
    }
    // Page through the records as GETFSMAP callers do: resume after the last key seen.
    std::vector<FsmapRecord> records;
    std::optional<FsmapKey> after;
    while (true) {
      ASSIGN_OR_RETURN(std::vector<FsmapRecord> page, fs.Fsmap(start, end, after, 1024));
      if (page.empty()) break;
      records.insert(records.end(), page.begin(), page.end());
      const FsmapRecord& last = page.back();
      if (last.flags & kFsmapLast) break;
      after = FsmapKey{last.physical, last.owner, last.offset};
    }
    std::map<uint64_t, std::string> paths;
    if (a.json) {
      nlohmann::json out = nlohmann::json::array();
      for (const FsmapRecord& r : records) {
        bool special = r.flags & kFsmapSpecialOwner;
        std::string owner = OwnerName(fs, r.owner, &paths);  // also fills `paths` for files
        out.push_back({{"physical", r.physical},
                       {"length", r.length},
                       {"owner", special ? nlohmann::json(owner) : nlohmann::json(r.owner)},
                       {"path", special ? std::string() : paths[r.owner]},
                       {"offset", r.offset},
                       {"flags", FlagString(r.flags)}});
      }
      fmt::print("{}\n", out.dump(2));
      return Status::Ok();
    }
    fmt::print(" EXT: {:<28} {:<32} {:<24} {:>10} {}\n", "DEVICE-RANGE (512-byte units)",
               "OWNER", "FILE-OFFSET", "TOTAL", "FLAGS");
    for (size_t i = 0; i < records.size(); ++i) {
      const FsmapRecord& r = records[i];
      bool special = r.flags & kFsmapSpecialOwner;
      std::string dev = fmt::format("[{}..{}]", r.physical / 512, (r.physical + r.length) / 512 - 1);
      std::string file = special ? "" : fmt::format("[{}..{}]", r.offset / 512, (r.offset + r.length) / 512 - 1);
      fmt::print("{:>4}: {:<28} {:<32} {:<24} {:>10} {}\n", i, dev, OwnerName(fs, r.owner, &paths),
                 file, r.length / 512, FlagString(r.flags));
    }
    return Status::Ok();
  });
}

struct RepairArgs {
  std::string image;
};

Status RunRepair(const RepairArgs& a) {
  return WithImage(a.image, Access::kReadWrite, [&](Filesystem& fs) -> Status {
    ASSIGN_OR_RETURN(RepairReport r, fs.RebuildReverseMaps());
    if (r.twins_rebuilt) {
      for (const std::string& f : r.twins_fixed) fmt::print("{}: fixed: {}\n", a.image, f);
      for (const std::string& l : r.twins_lost) fmt::print("{}: lost: {}\n", a.image, l);
      fmt::print("{}: metadata twins rebuilt: {} nodes checked, {} fixed, {} without a good copy\n",
                 a.image, r.twin_nodes_checked, r.twins_fixed.size(), r.twins_lost.size());
    }
    if (!r.twins_rebuilt || r.rmap_records + r.refcount_records + r.fixed.size() > 0) {
      for (const std::string& f : r.fixed) fmt::print("{}: fixed: {}\n", a.image, f);
      fmt::print(
          "{}: reverse map rebuilt: {} rmap records, {} refcount records, {} problem(s) fixed\n",
          a.image, r.rmap_records, r.refcount_records, r.fixed.size());
    }
    if (!r.twins_lost.empty()) {
      return At(a.image, Status::Corruption(fmt::format("{} metadata node(s) have no good copy",
                                                        r.twins_lost.size())));
    }
    return Status::Ok();
  });
}

}  // namespace

Runner SetupReflink(CLI::App* sub) {
  auto a = std::make_shared<ReflinkArgs>();
  AddImageArg(sub, &a->image);
  sub->add_option("SRC", a->src, "Source file")->required();
  sub->add_option("DST", a->dst, "Destination file (created if missing)")->required();
  sub->add_option("--src-offset", a->src_offset, "Clone a range: source byte offset (block-aligned)");
  sub->add_option("--dst-offset", a->dst_offset, "Clone a range: destination byte offset (block-aligned)");
  sub->add_option("--length", a->length, "Clone a range: bytes (block-aligned or to EOF; default to EOF)");
  return [a](Reporter&) { return RunReflink(*a); };
}

Runner SetupDedupe(CLI::App* sub) {
  auto a = std::make_shared<ReflinkArgs>();
  AddImageArg(sub, &a->image);
  sub->add_option("SRC", a->src, "Source file")->required();
  sub->add_option("DST", a->dst, "Destination file")->required();
  sub->add_option("--src-offset", a->src_offset, "Source byte offset (default 0)");
  sub->add_option("--dst-offset", a->dst_offset, "Destination byte offset (default 0)");
  sub->add_option("--length", a->length, "Bytes to compare and share")->required();
  return [a](Reporter&) { return RunDedupe(*a); };
}

Runner SetupUnshare(CLI::App* sub) {
  auto a = std::make_shared<UnshareArgs>();
  AddImageArg(sub, &a->image);
  sub->add_option("PATH", a->path, "A regular file")->required();
  sub->add_option("-o,--offset", a->offset, "Byte offset (default 0)");
  sub->add_option("-l,--length", a->length, "Bytes (default: to end of file)");
  return [a](Reporter&) { return RunUnshare(*a); };
}

Runner SetupFsmap(CLI::App* sub) {
  auto a = std::make_shared<FsmapArgs>();
  AddImageArg(sub, &a->image);
  sub->add_option("-d", a->range, "Only device bytes [START, END) (suffixes K, M, G)")->expected(2);
  sub->add_flag("--json", a->json, "Print JSON");
  return [a](Reporter&) { return RunFsmap(*a); };
}

Runner SetupRepair(CLI::App* sub) {
  auto a = std::make_shared<RepairArgs>();
  AddImageArg(sub, &a->image);
  return [a](Reporter&) { return RunRepair(*a); };
}

}  // namespace daxfs::cli
