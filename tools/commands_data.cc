// File-data subcommands of `daxfs`: put, get, cat, write, truncate, punch, fallocate, bmap.
// Data streams in 1 MiB chunks. Knows only the public API in include/daxfs/.
#include <fcntl.h>
#include <fmt/core.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <span>

#include "cli.h"

namespace daxfs::cli {
namespace {

// Writes all of `data` to host file descriptor `fd`.
Status WriteHost(int fd, std::string_view name, std::span<const uint8_t> data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return HostError(name, errno);
    data = data.subspan(static_cast<size_t>(n));
  }
  return Status::Ok();
}

// Reads up to out.size() bytes from `fd`, fewer only at end of file.
Result<size_t> ReadHost(int fd, std::string_view name, std::span<uint8_t> out) {
  size_t got = 0;
  while (got < out.size()) {
    ssize_t n = ::read(fd, out.data() + got, out.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return HostError(name, errno);
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  return got;
}

// Writes all of `data` at `offset` of file `ino`.
Status WriteAll(Filesystem& fs, Ino ino, uint64_t offset, std::span<const uint8_t> data) {
  while (!data.empty()) {
    ASSIGN_OR_RETURN(size_t n, fs.Write(ino, offset, data));
    if (n == 0) return Errno(EIO, "short write");
    offset += n;
    data = data.subspan(n);
  }
  return Status::Ok();
}

// Copies file `ino` (size bytes) to host descriptor `fd`.
Status CopyOut(Filesystem& fs, const Attr& file, int fd, std::string_view host) {
  std::vector<uint8_t> buf(kChunkBytes);
  for (uint64_t off = 0; off < file.size;) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), file.size - off));
    ASSIGN_OR_RETURN(size_t n, fs.Read(file.ino, off, {buf.data(), want}));
    if (n == 0) break;  // shrunk meanwhile
    RETURN_IF_ERROR(WriteHost(fd, host, {buf.data(), n}));
    off += n;
  }
  return Status::Ok();
}

// ---- put

struct PutArgs {
  std::string image;
  std::string host;
  std::string path;
};

// Opens the host source ("-": stdin) and returns its descriptor and permission bits.
Result<std::pair<int, uint32_t>> OpenHostSource(const std::string& host) {
  if (host == "-") return std::pair<int, uint32_t>{STDIN_FILENO, 0644};
  int fd = ::open(host.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return HostError(host, errno);
  struct stat st;
  int err = ::fstat(fd, &st) != 0 ? errno : S_ISDIR(st.st_mode) ? EISDIR : 0;
  if (err != 0) {
    ::close(fd);
    return HostError(host, err);
  }
  return std::pair<int, uint32_t>{fd, st.st_mode & 07777};
}

// The file `path` names (inside it under `name` when it is a directory; through a symlink),
// emptied, or else created with `mode`.
Result<Attr> CreateOrTruncate(Filesystem& fs, const std::string& path, std::string_view name,
                              uint32_t mode, std::string* dest_out) {
  ASSIGN_OR_RETURN(std::string dest, DestinationPath(fs, path, name));
  *dest_out = dest;
  Result<Attr> existing = fs.Resolve(dest, /*follow=*/true);
  if (!existing.ok()) {
    if (!existing.status().IsNotFound()) return existing.status();
    ASSIGN_OR_RETURN(ParentAndName at, ResolveParent(fs, dest));
    return fs.Create(at.dir.ino, at.name, mode);
  }
  if (existing->type == FileType::kDirectory) return Errno(EISDIR);
  RETURN_IF_ERROR(fs.Truncate(existing->ino, 0));
  return *existing;
}

Status RunPut(const PutArgs& a) {
  RETURN_IF_ERROR(At(a.path, CheckAbsolute(a.path)));
  ASSIGN_OR_RETURN(auto source, OpenHostSource(a.host));
  int fd = source.first;  // (no structured binding: clang 14 cannot capture one in a lambda)
  uint32_t mode = source.second;
  std::string name = a.host == "-" ? "" : Basename(a.host);
  uint64_t copied = 0;
  std::string dest = a.path;
  Status s = WithImage(a.image, Access::kReadWrite, [&](Filesystem& fs) -> Status {
    Result<Attr> file = CreateOrTruncate(fs, a.path, name, mode, &dest);
    if (!file.ok()) return At(a.path, file.status());
    std::vector<uint8_t> buf(kChunkBytes);
    for (;;) {
      ASSIGN_OR_RETURN(size_t n, ReadHost(fd, a.host, buf));
      if (n == 0) break;
      RETURN_IF_ERROR(At(dest, WriteAll(fs, file->ino, copied, {buf.data(), n})));
      copied += n;
    }
    return Status::Ok();
  });
  if (fd != STDIN_FILENO) ::close(fd);
  RETURN_IF_ERROR(s);
  fmt::print("{} -> {}: {} bytes ({})\n", a.host, dest, copied, HumanSize(copied));
  return Status::Ok();
}

// ---- get

struct GetArgs {
  std::string image;
  std::string path;
  std::string host;
};

// Opens the host destination ("-": stdout; a directory: the file's basename inside it).
Result<std::pair<int, std::string>> OpenHostDest(const std::string& host, std::string_view name,
                                                 uint32_t mode) {
  if (host == "-") return std::pair<int, std::string>{STDOUT_FILENO, host};
  std::string target = host;
  struct stat st;
  if (::stat(host.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) target = JoinPath(host, name);
  int fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode & 0777);
  if (fd < 0) return HostError(target, errno);
  return std::pair<int, std::string>{fd, target};
}

Status RunGet(const GetArgs& a) {
  return WithImage(a.image, Access::kReadOnly, [&](Filesystem& fs) -> Status {
    Result<Attr> file = ResolveRegular(fs, a.path);
    if (!file.ok()) return At(a.path, file.status());
    ASSIGN_OR_RETURN(auto dest, OpenHostDest(a.host, Basename(a.path), file->mode));
    auto [fd, target] = dest;
    Status s = CopyOut(fs, *file, fd, target);
    if (fd != STDOUT_FILENO && ::close(fd) != 0 && s.ok()) s = HostError(target, errno);
    RETURN_IF_ERROR(At(a.path, s));
    if (fd != STDOUT_FILENO) {
      fmt::print("{} -> {}: {} bytes ({})\n", a.path, target, file->size, HumanSize(file->size));
    }
    return Status::Ok();
  });
}

// ---- cat

struct CatArgs {
  std::string image;
  std::vector<std::string> paths;
};

Status RunCat(Reporter& r, const CatArgs& a) {
  return WithImage(a.image, Access::kReadOnly, [&](Filesystem& fs) -> Status {
    for (const auto& path : a.paths) {
      Result<Attr> file = ResolveRegular(fs, path);
      Status s = file.ok() ? CopyOut(fs, *file, STDOUT_FILENO, "stdout") : file.status();
      if (!s.ok()) r.Error(At(path, s));
    }
    return Status::Ok();
  });
}

// ---- write

struct WriteArgs {
  std::string image;
  std::string path;
  std::string offset = "0";
  std::string length;
  std::string pattern;
  std::string text;
  bool create = false;
};

// The bytes to repeat: --text, --pattern BYTE (0xab, 171, 0253) or the default 0xab.
Result<std::string> WriteUnit(const WriteArgs& a) {
  if (!a.text.empty()) return a.text;
  if (a.pattern.empty()) return std::string(1, '\xab');
  char* end = nullptr;
  errno = 0;
  unsigned long byte = std::strtoul(a.pattern.c_str(), &end, 0);
  if (errno != 0 || *end != '\0' || byte > 255 || a.pattern[0] == '-') {
    return Status::Invalid(
        fmt::format("--pattern: '{}' is not a byte (0..255, e.g. 0xab)", a.pattern));
  }
  return std::string(1, static_cast<char>(byte));
}

Result<Attr> OpenForWrite(Filesystem& fs, const std::string& path, bool create) {
  Result<Attr> file = ResolveRegular(fs, path);
  if (file.ok() || !create || !file.status().IsNotFound()) return file;
  ASSIGN_OR_RETURN(ParentAndName at, ResolveParent(fs, path));
  return fs.Create(at.dir.ino, at.name, 0644);
}

Status RunWrite(const WriteArgs& a) {
  RETURN_IF_ERROR(At(a.path, CheckAbsolute(a.path)));
  ASSIGN_OR_RETURN(uint64_t offset, ParseSizeArg("--offset", a.offset));
  ASSIGN_OR_RETURN(std::string unit, WriteUnit(a));
  uint64_t length = unit.size();
  if (!a.length.empty()) {
    ASSIGN_OR_RETURN(length, ParseSizeArg("--length", a.length));
  } else if (a.text.empty()) {
    return Status::Invalid("--length: needed with a byte pattern");
  }
  return WithImage(a.image, Access::kReadWrite, [&](Filesystem& fs) -> Status {
    Result<Attr> file = OpenForWrite(fs, a.path, a.create);
    if (!file.ok()) return At(a.path, file.status());
    std::vector<uint8_t> buf(std::min<uint64_t>(length, kChunkBytes));
    for (uint64_t done = 0; done < length;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), length - done));
      for (size_t i = 0; i < n; ++i) buf[i] = unit[(done + i) % unit.size()];
      RETURN_IF_ERROR(At(a.path, WriteAll(fs, file->ino, offset + done, {buf.data(), n})));
      done += n;
    }
    fmt::print("wrote {} bytes at offset {} to {}\n", length, offset, a.path);
    return Status::Ok();
  });
}

// ---- truncate, punch, fallocate

struct TruncateArgs {
  std::string image;
  std::string path;
  std::string size;
  bool no_create = false;
};

Status RunTruncate(const TruncateArgs& a) {
  RETURN_IF_ERROR(At(a.path, CheckAbsolute(a.path)));
  ASSIGN_OR_RETURN(uint64_t size, ParseSizeArg("SIZE", a.size));
  return WithImage(a.image, Access::kReadWrite, [&](Filesystem& fs) -> Status {
    Result<Attr> file = OpenForWrite(fs, a.path, !a.no_create);
    if (!file.ok()) return At(a.path, file.status());
    return At(a.path, fs.Truncate(file->ino, size));
  });
}

struct RangeArgs {
  std::string image;
  std::string path;
  std::string offset = "0";
  std::string length;
  bool keep_size = false;
  bool zero = false;
};

Status RunFallocate(const RangeArgs& a, uint32_t mode, std::string_view verb) {
  RETURN_IF_ERROR(At(a.path, CheckAbsolute(a.path)));
  ASSIGN_OR_RETURN(uint64_t offset, ParseSizeArg("--offset", a.offset));
  ASSIGN_OR_RETURN(uint64_t length, ParseSizeArg("--length", a.length));
  return WithImage(a.image, Access::kReadWrite, [&](Filesystem& fs) -> Status {
    Result<Attr> file = ResolveRegular(fs, a.path);
    if (!file.ok()) return At(a.path, file.status());
    RETURN_IF_ERROR(At(a.path, fs.Fallocate(file->ino, mode, offset, length)));
    fmt::print("{} {} bytes at offset {} of {}\n", verb, length, offset, a.path);
    return Status::Ok();
  });
}

uint32_t FallocateMode(const RangeArgs& a) {
  uint32_t mode = 0;
  if (a.keep_size) mode |= kFallocKeepSize;
  if (a.zero) mode |= kFallocZeroRange;
  return mode;
}

// ---- bmap

struct BmapArgs {
  std::string image;
  std::string path;
  bool json = false;
};

// One row of the map: an extent or a hole between extents (or up to the end of the file).
struct MapRow {
  uint64_t file_offset;
  uint64_t length;
  const FileExtent* extent;  // null: a hole
};

std::vector<MapRow> MapRows(const std::vector<FileExtent>& extents, uint64_t size) {
  std::vector<MapRow> rows;
  uint64_t pos = 0;
  for (const auto& e : extents) {
    if (e.file_offset > pos) rows.push_back({pos, e.file_offset - pos, nullptr});
    rows.push_back({e.file_offset, e.length, &e});
    pos = std::max(pos, e.file_offset + e.length);
  }
  if (size > pos) rows.push_back({pos, size - pos, nullptr});
  return rows;
}

std::string Flags(const FileExtent& e) {
  std::string flags;
  if (e.unwritten) flags += "unwritten";
  if (e.shared) flags += flags.empty() ? "shared" : ",shared";
  return flags.empty() ? "-" : flags;
}

std::string Range(uint64_t offset, uint64_t length) {
  return fmt::format("[{}..{}]", offset, offset + length - 1);
}

void PrintBmap(const std::string& path, const Attr& file, const std::vector<MapRow>& rows) {
  fmt::print("{}: {} bytes, {} extent(s)\n", path, file.size,
             std::count_if(rows.begin(), rows.end(), [](const MapRow& r) { return r.extent; }));
  if (rows.empty()) return;
  std::vector<std::array<std::string, 4>> cells;
  size_t w[4] = {4, 11, 13, 6};
  for (const auto& r : rows) {
    std::array<std::string, 4> c = {Range(r.file_offset, r.length),
                                    r.extent ? Range(r.extent->device_offset, r.length) : "hole",
                                    fmt::format("{}", r.length), r.extent ? Flags(*r.extent) : ""};
    for (int i = 0; i < 3; ++i) w[i + 1] = std::max(w[i + 1], c[i].size());
    cells.push_back(std::move(c));
  }
  fmt::print(" {:>4}  {:<{}}  {:<{}}  {:>{}}  {}\n", "EXT", "FILE-OFFSET", w[1], "DEVICE-OFFSET",
             w[2], "LENGTH", w[3], "FLAGS");
  for (size_t i = 0; i < cells.size(); ++i) {
    const auto& c = cells[i];
    fmt::print(" {:>4}  {:<{}}  {:<{}}  {:>{}}  {}\n", fmt::format("{}:", i), c[0], w[1], c[1],
               w[2], c[2], w[3], c[3]);
  }
}

nlohmann::json BmapJson(const std::string& path, const Attr& file,
                        const std::vector<MapRow>& rows) {
  nlohmann::json extents = nlohmann::json::array(), holes = nlohmann::json::array();
  for (const auto& r : rows) {
    if (!r.extent) {
      holes.push_back({{"file_offset", r.file_offset}, {"length", r.length}});
      continue;
    }
    extents.push_back({{"file_offset", r.file_offset},
                       {"device_offset", r.extent->device_offset},
                       {"length", r.length},
                       {"unwritten", r.extent->unwritten},
                       {"shared", r.extent->shared}});
  }
  return {{"path", path},
          {"ino", file.ino},
          {"size", file.size},
          {"extents", extents},
          {"holes", holes}};
}

Status RunBmap(const BmapArgs& a) {
  return WithImage(a.image, Access::kReadOnly, [&](Filesystem& fs) -> Status {
    Result<Attr> file = ResolveRegular(fs, a.path);
    if (!file.ok()) return At(a.path, file.status());
    Result<std::vector<FileExtent>> extents = fs.Bmap(file->ino);
    if (!extents.ok()) return At(a.path, extents.status());
    std::vector<MapRow> rows = MapRows(*extents, file->size);
    if (a.json) {
      fmt::print("{}\n", BmapJson(a.path, *file, rows).dump(2));
    } else {
      PrintBmap(a.path, *file, rows);
    }
    return Status::Ok();
  });
}

void AddRange(CLI::App* sub, RangeArgs* a) {
  AddImageArg(sub, &a->image);
  sub->add_option("PATH", a->path, "A regular file")->required();
  sub->add_option("-o,--offset", a->offset, "Byte offset (suffixes K, M, G; default 0)");
  sub->add_option("-l,--length", a->length, "Length in bytes (suffixes K, M, G)")->required();
}

}  // namespace

Runner SetupPut(CLI::App* sub) {
  auto a = std::make_shared<PutArgs>();
  AddImageArg(sub, &a->image);
  sub->add_option("HOSTFILE", a->host, "Host file to copy in (- for stdin)")->required();
  sub->add_option("PATH", a->path, "Destination file, or a directory to put it in")->required();
  return [a](Reporter&) { return RunPut(*a); };
}

Runner SetupGet(CLI::App* sub) {
  auto a = std::make_shared<GetArgs>();
  AddImageArg(sub, &a->image);
  sub->add_option("PATH", a->path, "File in the image")->required();
  sub->add_option("HOSTFILE", a->host, "Host file or directory to copy to (- for stdout)")
      ->required();
  return [a](Reporter&) { return RunGet(*a); };
}

Runner SetupCat(CLI::App* sub) {
  auto a = std::make_shared<CatArgs>();
  AddImageArg(sub, &a->image);
  sub->add_option("PATH", a->paths, "Files to print")->required();
  return [a](Reporter& r) { return RunCat(r, *a); };
}

Runner SetupWrite(CLI::App* sub) {
  auto a = std::make_shared<WriteArgs>();
  AddImageArg(sub, &a->image);
  sub->add_option("PATH", a->path, "A regular file")->required();
  sub->add_option("-o,--offset", a->offset, "Byte offset (suffixes K, M, G; default 0)");
  sub->add_option("-l,--length", a->length,
                  "Bytes to write (suffixes K, M, G; default: the text's length)");
  auto* pattern = sub->add_option("-p,--pattern", a->pattern, "Byte to repeat (default 0xab)");
  sub->add_option("-t,--text", a->text, "Text to write (repeated to --length)")->excludes(pattern);
  sub->add_flag("--create", a->create, "Create the file if it does not exist");
  return [a](Reporter&) { return RunWrite(*a); };
}

Runner SetupTruncate(CLI::App* sub) {
  auto a = std::make_shared<TruncateArgs>();
  AddImageArg(sub, &a->image);
  sub->add_option("PATH", a->path, "A regular file (created if missing)")->required();
  sub->add_option("SIZE", a->size, "New size in bytes (suffixes K, M, G)")->required();
  sub->add_flag("-c,--no-create", a->no_create, "Do not create a missing file");
  return [a](Reporter&) { return RunTruncate(*a); };
}

Runner SetupPunch(CLI::App* sub) {
  auto a = std::make_shared<RangeArgs>();
  AddRange(sub, a.get());
  return [a](Reporter&) { return RunFallocate(*a, kFallocPunchHole | kFallocKeepSize, "punched"); };
}

Runner SetupFallocate(CLI::App* sub) {
  auto a = std::make_shared<RangeArgs>();
  AddRange(sub, a.get());
  sub->add_flag("-k,--keep-size", a->keep_size, "Do not change the file size");
  sub->add_flag("-z,--zero-range", a->zero, "Zero the range (unwritten blocks)");
  return [a](Reporter&) { return RunFallocate(*a, FallocateMode(*a), "allocated"); };
}

Runner SetupBmap(CLI::App* sub) {
  auto a = std::make_shared<BmapArgs>();
  AddImageArg(sub, &a->image);
  sub->add_option("PATH", a->path, "A regular file")->required();
  sub->add_flag("--json", a->json, "Print JSON");
  return [a](Reporter&) { return RunBmap(*a); };
}

}  // namespace daxfs::cli
