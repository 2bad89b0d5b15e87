// Namespace subcommands of `daxfs`, each shaped like its Unix tool: ls, stat, mkdir, rm, rmdir,
// mv, ln. Knows only the public API in include/daxfs/.
#include <fmt/core.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "cli.h"

namespace daxfs::cli {
namespace {

// ---- ls

struct LsArgs {
  std::string image;
  std::vector<std::string> paths{"/"};
  bool long_format = false;
  bool all = false;
  bool inodes = false;
};

// One line of `ls` output: the attributes and the name to show.
struct LsRow {
  Attr attr;
  std::string name;
  std::string target;  // symlinks, long format
};

Result<LsRow> MakeRow(Filesystem& fs, const Attr& attr, std::string name, bool long_format) {
  LsRow row{.attr = attr, .name = std::move(name)};
  if (long_format && attr.type == FileType::kSymlink) {
    ASSIGN_OR_RETURN(row.target, fs.ReadLink(attr.ino));
  }
  return row;
}

void PrintRows(const std::vector<LsRow>& rows, const LsArgs& a) {
  size_t w_ino = 1, w_nlink = 1, w_uid = 1, w_gid = 1, w_size = 1;
  for (const auto& r : rows) {
    w_ino = std::max(w_ino, fmt::format("{}", r.attr.ino).size());
    w_nlink = std::max(w_nlink, fmt::format("{}", r.attr.nlink).size());
    w_uid = std::max(w_uid, fmt::format("{}", r.attr.uid).size());
    w_gid = std::max(w_gid, fmt::format("{}", r.attr.gid).size());
    w_size = std::max(w_size, fmt::format("{}", r.attr.size).size());
  }
  for (const auto& r : rows) {
    std::string line = a.inodes ? fmt::format("{:>{}} ", r.attr.ino, w_ino) : "";
    if (a.long_format) {
      line +=
          fmt::format("{} {:>{}} {:>{}} {:>{}} {:>{}} {} ", ModeString(r.attr.type, r.attr.mode),
                      r.attr.nlink, w_nlink, r.attr.uid, w_uid, r.attr.gid, w_gid, r.attr.size,
                      w_size, ShortTime(r.attr.mtime_ns));
    }
    line += r.name;
    if (!r.target.empty()) line += " -> " + r.target;
    fmt::print("{}\n", line);
  }
}

Result<std::vector<LsRow>> DirectoryRows(Filesystem& fs, const Attr& dir, const LsArgs& a) {
  ASSIGN_OR_RETURN(std::vector<DirEntry> entries, ListDirectory(fs, dir.ino, a.all));
  std::vector<LsRow> rows;
  for (const auto& e : entries) {
    Attr attr{.ino = e.ino, .type = e.type};
    if (a.long_format) {
      ASSIGN_OR_RETURN(attr, fs.GetAttr(e.ino));
    }
    ASSIGN_OR_RETURN(LsRow row, MakeRow(fs, attr, e.name, a.long_format));
    rows.push_back(std::move(row));
  }
  return rows;
}

Status RunLs(Reporter& r, const LsArgs& a) {
  return WithImage(a.image, Access::kReadOnly, [&](Filesystem& fs) -> Status {
    // Like ls: files given by name first, then each directory's contents.
    std::vector<LsRow> files;
    std::vector<std::pair<std::string, Attr>> dirs;
    for (const auto& path : a.paths) {
      // ls -l shows a symlink itself unless the path ends in '/'.
      Status absolute = CheckAbsolute(path);
      Result<Attr> attr =
          absolute.ok() ? fs.Resolve(path, !a.long_format || path.ends_with('/')) : absolute;
      if (!attr.ok()) {
        r.Error(At(path, attr.status()));
        continue;
      }
      if (attr->type == FileType::kDirectory) {
        dirs.emplace_back(path, *attr);
        continue;
      }
      Result<LsRow> row = MakeRow(fs, *attr, path, a.long_format);
      if (!row.ok()) {
        r.Error(At(path, row.status()));
        continue;
      }
      files.push_back(std::move(*row));
    }
    auto by_name = [](const auto& x, const auto& y) { return x.name < y.name; };
    std::sort(files.begin(), files.end(), by_name);
    std::sort(dirs.begin(), dirs.end(),
              [](const auto& x, const auto& y) { return x.first < y.first; });
    PrintRows(files, a);
    bool headers = a.paths.size() > 1;
    for (size_t i = 0; i < dirs.size(); ++i) {
      const auto& [path, dir] = dirs[i];
      Result<std::vector<LsRow>> rows = DirectoryRows(fs, dir, a);
      if (!rows.ok()) {
        r.Error(At(path, rows.status()));
        continue;
      }
      if (headers) fmt::print("{}{}:\n", (i > 0 || !files.empty()) ? "\n" : "", path);
      PrintRows(*rows, a);
    }
    return Status::Ok();
  });
}

// ---- stat

struct StatArgs {
  std::string image;
  std::vector<std::string> paths;
  bool follow = false;
  bool json = false;
};

struct StatInfo {
  Attr attr;
  std::string target;  // symlinks
  size_t extents = 0;  // regular files
};

Result<StatInfo> Stat(Filesystem& fs, std::string_view path, bool follow) {
  RETURN_IF_ERROR(CheckAbsolute(path));
  StatInfo info;
  ASSIGN_OR_RETURN(info.attr, fs.Resolve(path, follow));
  if (info.attr.type == FileType::kSymlink) {
    ASSIGN_OR_RETURN(info.target, fs.ReadLink(info.attr.ino));
  } else if (info.attr.type == FileType::kRegular) {
    ASSIGN_OR_RETURN(std::vector<FileExtent> extents, fs.Bmap(info.attr.ino));
    info.extents = extents.size();
  }
  return info;
}

nlohmann::json StatJson(const std::string& path, const StatInfo& s) {
  const Attr& a = s.attr;
  static constexpr const char* kTypes[] = {"unknown", "file",   "directory", "symlink",
                                           "fifo",    "socket", "char",      "block"};
  const char* type = kTypes[static_cast<size_t>(a.type) < 8 ? static_cast<size_t>(a.type) : 0];
  nlohmann::json j = {{"path", path},
                      {"ino", a.ino},
                      {"type", type},
                      {"mode", fmt::format("{:04o}", a.mode)},
                      {"nlink", a.nlink},
                      {"uid", a.uid},
                      {"gid", a.gid},
                      {"size", a.size},
                      {"blocks", a.blocks},
                      {"atime", IsoTime(a.atime_ns)},
                      {"mtime", IsoTime(a.mtime_ns)},
                      {"ctime", IsoTime(a.ctime_ns)},
                      {"btime", IsoTime(a.btime_ns)}};
  if (a.type == FileType::kRegular) j["extents"] = s.extents;
  if (a.type == FileType::kSymlink) j["target"] = s.target;
  return j;
}

void PrintStat(const std::string& path, const StatInfo& s) {
  const Attr& a = s.attr;
  fmt::print("path:     {}\n", path);
  fmt::print("inode:    {}\n", a.ino);
  fmt::print("type:     {}\n", TypeName(a.type));
  if (a.type == FileType::kSymlink) fmt::print("target:   {}\n", s.target);
  fmt::print("mode:     {:04o} ({})\n", a.mode, ModeString(a.type, a.mode));
  fmt::print("links:    {}\n", a.nlink);
  fmt::print("uid/gid:  {}/{}\n", a.uid, a.gid);
  if (a.type == FileType::kDirectory) {
    fmt::print("size:     {} entries\n", a.size);
  } else {
    fmt::print("size:     {} ({})\n", a.size, HumanSize(a.size));
  }
  fmt::print("blocks:   {} ({} allocated)\n", a.blocks, HumanSize(a.blocks * 4096));
  if (a.type == FileType::kRegular) fmt::print("extents:  {}\n", s.extents);
  fmt::print("access:   {}\n", IsoTime(a.atime_ns));
  fmt::print("modify:   {}\n", IsoTime(a.mtime_ns));
  fmt::print("change:   {}\n", IsoTime(a.ctime_ns));
  fmt::print("birth:    {}\n", IsoTime(a.btime_ns));
}

Status RunStat(Reporter& r, const StatArgs& a) {
  return WithImage(a.image, Access::kReadOnly, [&](Filesystem& fs) -> Status {
    nlohmann::json all = nlohmann::json::array();
    bool first = true;
    for (const auto& path : a.paths) {
      Result<StatInfo> info = Stat(fs, path, a.follow);
      if (!info.ok()) {
        r.Error(At(path, info.status()));
        continue;
      }
      if (a.json) {
        all.push_back(StatJson(path, *info));
      } else {
        if (!first) fmt::print("\n");
        PrintStat(path, *info);
      }
      first = false;
    }
    if (a.json) fmt::print("{}\n", (a.paths.size() == 1 && all.size() == 1 ? all[0] : all).dump(2));
    return Status::Ok();
  });
}

// ---- mkdir

struct MkdirArgs {
  std::string image;
  std::vector<std::string> paths;
  bool parents = false;
  std::string mode = "755";
};

Status MkdirOne(Filesystem& fs, const std::string& path, uint32_t mode) {
  if (StripTrailingSlashes(path) == "/") return Errno(EEXIST);
  ASSIGN_OR_RETURN(ParentAndName where, ResolveParent(fs, path));
  return fs.Mkdir(where.dir.ino, where.name, mode).status();
}

// mkdir -p: makes every missing directory on the way; an existing directory is fine.
Status MkdirParents(Filesystem& fs, const std::string& path, uint32_t mode) {
  RETURN_IF_ERROR(CheckAbsolute(path));
  std::string stripped = StripTrailingSlashes(path);
  for (size_t end = 1; end <= stripped.size(); ++end) {
    if (end < stripped.size() && stripped[end] != '/') continue;
    std::string prefix = stripped.substr(0, end);
    if (prefix.ends_with('/') && prefix != "/") continue;  // "//" in the path
    Result<Attr> got = fs.Resolve(prefix, /*follow=*/true);
    if (got.ok()) {
      if (got->type != FileType::kDirectory) return At(prefix, Errno(EEXIST, "not a directory"));
      continue;
    }
    if (!got.status().IsNotFound()) return At(prefix, got.status());
    RETURN_IF_ERROR(At(prefix, MkdirOne(fs, prefix, end == stripped.size() ? mode : 0755)));
  }
  return Status::Ok();
}

Status RunMkdir(Reporter& r, const MkdirArgs& a) {
  Result<uint32_t> parsed = ParseMode(a.mode);
  if (!parsed.ok()) return At("--mode", parsed.status());
  uint32_t mode = *parsed;
  return WithImage(a.image, Access::kReadWrite, [&](Filesystem& fs) -> Status {
    for (const auto& path : a.paths) {
      Status s = a.parents ? MkdirParents(fs, path, mode) : MkdirOne(fs, path, mode);
      if (!s.ok()) r.Error(At(path, s));
    }
    return Status::Ok();
  });
}

// ---- rm and rmdir

struct RmArgs {
  std::string image;
  std::vector<std::string> paths;
  bool recursive = false;
  bool force = false;
};

// Removes everything below directory `dir` (depth first), then nothing else.
Status RemoveContents(Filesystem& fs, Ino dir) {
  ASSIGN_OR_RETURN(std::vector<DirEntry> entries, ListDirectory(fs, dir, /*with_dots=*/false));
  for (const auto& e : entries) {
    if (e.type == FileType::kDirectory) {
      RETURN_IF_ERROR(RemoveContents(fs, e.ino));
      RETURN_IF_ERROR(fs.Rmdir(dir, e.name));
    } else {
      RETURN_IF_ERROR(fs.Unlink(dir, e.name));
    }
  }
  return Status::Ok();
}

Status RmOne(Filesystem& fs, const std::string& path, const RmArgs& a) {
  ASSIGN_OR_RETURN(ParentAndName where, ResolveParent(fs, path));
  Result<Attr> victim = fs.Lookup(where.dir.ino, where.name);
  if (!victim.ok())
    return (a.force && victim.status().IsNotFound()) ? Status::Ok() : victim.status();
  if (victim->type != FileType::kDirectory) return fs.Unlink(where.dir.ino, where.name);
  if (!a.recursive) return Errno(EISDIR, "use -r to remove a directory");
  RETURN_IF_ERROR(RemoveContents(fs, victim->ino));
  return fs.Rmdir(where.dir.ino, where.name);
}

Status RunRm(Reporter& r, const RmArgs& a) {
  return WithImage(a.image, Access::kReadWrite, [&](Filesystem& fs) -> Status {
    for (const auto& path : a.paths) {
      Status s = StripTrailingSlashes(path) == "/"
                     ? Errno(EBUSY, "refusing to remove the root directory")
                     : RmOne(fs, path, a);
      if (!s.ok()) r.Error(At(path, s));
    }
    return Status::Ok();
  });
}

struct RmdirArgs {
  std::string image;
  std::vector<std::string> paths;
};

Status RunRmdir(Reporter& r, const RmdirArgs& a) {
  return WithImage(a.image, Access::kReadWrite, [&](Filesystem& fs) -> Status {
    for (const auto& path : a.paths) {
      Result<ParentAndName> where = ResolveParent(fs, path);
      Status s = where.ok() ? fs.Rmdir(where->dir.ino, where->name) : where.status();
      if (!s.ok()) r.Error(At(path, s));
    }
    return Status::Ok();
  });
}

// ---- mv

struct MvArgs {
  std::string image;
  std::string source;
  std::string dest;
};

Status RunMv(const MvArgs& a) {
  return WithImage(a.image, Access::kReadWrite, [&](Filesystem& fs) -> Status {
    Result<ParentAndName> from = ResolveParent(fs, a.source);
    if (!from.ok()) return At(a.source, from.status());
    RETURN_IF_ERROR(At(a.source, fs.Lookup(from->dir.ino, from->name).status()));
    Result<std::string> dest = DestinationPath(fs, a.dest, from->name);
    Result<ParentAndName> to = dest.ok() ? ResolveParent(fs, *dest) : dest.status();
    if (!to.ok()) return At(a.dest, to.status());
    return At(a.source, fs.Rename(from->dir.ino, from->name, to->dir.ino, to->name));
  });
}

// ---- ln

struct LnArgs {
  std::string image;
  std::string target;
  std::string link;
  bool symbolic = false;
};

Status RunLn(const LnArgs& a) {
  return WithImage(a.image, Access::kReadWrite, [&](Filesystem& fs) -> Status {
    Result<std::string> link = DestinationPath(fs, a.link, Basename(a.target));
    Result<ParentAndName> at = link.ok() ? ResolveParent(fs, *link) : link.status();
    if (!at.ok()) return At(a.link, at.status());
    if (a.symbolic) return At(a.link, fs.Symlink(at->dir.ino, at->name, a.target).status());
    RETURN_IF_ERROR(At(a.target, CheckAbsolute(a.target)));
    Result<Attr> target = fs.Resolve(a.target, /*follow=*/false);
    if (!target.ok()) return At(a.target, target.status());
    if (target->type == FileType::kDirectory) {
      return At(a.target, Errno(EPERM, "hard link not allowed for a directory"));
    }
    return At(a.link, fs.Link(target->ino, at->dir.ino, at->name).status());
  });
}

}  // namespace

Runner SetupLs(CLI::App* sub) {
  auto a = std::make_shared<LsArgs>();
  AddImageArg(sub, &a->image);
  sub->add_option("PATH", a->paths, "Files or directories to list (default /)");
  sub->add_flag("-l", a->long_format, "Long format: mode, links, uid, gid, size, mtime, name");
  sub->add_flag("-a,--all", a->all, "Show . and ..");
  sub->add_flag("-i,--inode", a->inodes, "Show inode numbers");
  return [a](Reporter& r) { return RunLs(r, *a); };
}

Runner SetupStat(CLI::App* sub) {
  auto a = std::make_shared<StatArgs>();
  AddImageArg(sub, &a->image);
  sub->add_option("PATH", a->paths, "Files to describe")->required();
  sub->add_flag("-L,--dereference", a->follow, "Follow a final symlink");
  sub->add_flag("--json", a->json, "Print JSON");
  return [a](Reporter& r) { return RunStat(r, *a); };
}

Runner SetupMkdir(CLI::App* sub) {
  auto a = std::make_shared<MkdirArgs>();
  AddImageArg(sub, &a->image);
  sub->add_option("PATH", a->paths, "Directories to make")->required();
  sub->add_flag("-p,--parents", a->parents, "Make parents as needed; no error if it exists");
  sub->add_option("-m,--mode", a->mode, "Permission bits in octal (default 755)");
  return [a](Reporter& r) { return RunMkdir(r, *a); };
}

Runner SetupRm(CLI::App* sub) {
  auto a = std::make_shared<RmArgs>();
  AddImageArg(sub, &a->image);
  sub->add_option("PATH", a->paths, "Files, symlinks or (with -r) directories")->required();
  sub->add_flag("-r,-R,--recursive", a->recursive, "Remove directories and their contents");
  sub->add_flag("-f,--force", a->force, "Ignore missing files");
  return [a](Reporter& r) { return RunRm(r, *a); };
}

Runner SetupRmdir(CLI::App* sub) {
  auto a = std::make_shared<RmdirArgs>();
  AddImageArg(sub, &a->image);
  sub->add_option("PATH", a->paths, "Empty directories to remove")->required();
  return [a](Reporter& r) { return RunRmdir(r, *a); };
}

Runner SetupMv(CLI::App* sub) {
  auto a = std::make_shared<MvArgs>();
  AddImageArg(sub, &a->image);
  sub->add_option("SRC", a->source, "What to move")->required();
  sub->add_option("DST", a->dest, "New path, or an existing directory to move into")->required();
  return [a](Reporter&) { return RunMv(*a); };
}

Runner SetupLn(CLI::App* sub) {
  auto a = std::make_shared<LnArgs>();
  AddImageArg(sub, &a->image);
  sub->add_option("TARGET", a->target, "Existing file (hard link) or any text (with -s)")
      ->required();
  sub->add_option("LINK", a->link, "New name, or an existing directory to link into")->required();
  sub->add_flag("-s,--symbolic", a->symbolic, "Make a symbolic link");
  return [a](Reporter&) { return RunLn(*a); };
}

}  // namespace daxfs::cli
