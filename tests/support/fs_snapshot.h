// Test support: a canonical text dump of a whole filesystem (every path with its type, link
// count, size, content checksum, symlink target and extended attributes, sorted), for comparing
// states in model and crash tests. Uses only the public API.
#pragma once

#include <fmt/core.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "base/checksum.h"
#include "daxfs/filesystem.h"

namespace daxfs::testing {

inline Status ReadWholeFile(Filesystem* fs, Ino ino, uint64_t size, std::string* out) {
  out->assign(size, '\0');
  uint64_t done = 0;
  while (done < size) {
    auto span = std::span<uint8_t>(reinterpret_cast<uint8_t*>(out->data()) + done, size - done);
    ASSIGN_OR_RETURN(size_t n, fs->Read(ino, done, span));
    if (n == 0) return Status::IoError(fmt::format("short read of inode {} at {}", ino, done));
    done += n;
  }
  return Status::Ok();
}

// " xattrs=name:checksum,..." in name order, or nothing for an inode without any.
inline Result<std::string> DumpXattrs(Filesystem* fs, Ino ino) {
  ASSIGN_OR_RETURN(std::vector<std::string> names, fs->ListXattr(ino));
  if (names.empty()) return std::string();
  std::sort(names.begin(), names.end());
  std::string out = " xattrs=";
  for (const std::string& name : names) {
    ASSIGN_OR_RETURN(size_t size, fs->GetXattr(ino, name, {}));
    std::vector<uint8_t> value(size);
    if (size > 0) RETURN_IF_ERROR(fs->GetXattr(ino, name, value).status());
    out += fmt::format("{}{}:{}:{:016x}", out.size() > 8 ? "," : "", name, size,
                       base::Checksum64(value.data(), value.size()));
  }
  return out;
}

inline Status DumpTree(Filesystem* fs, Ino dir, const std::string& path,
                       std::map<std::string, std::string>* out) {
  std::vector<DirEntry> entries;
  RETURN_IF_ERROR(fs->ReadDir(dir, 0, [&](const DirEntry& e) {
    if (e.name != "." && e.name != "..") entries.push_back(e);
    return true;
  }));
  for (const DirEntry& e : entries) {
    std::string child = path + "/" + e.name;
    ASSIGN_OR_RETURN(Attr a, fs->GetAttr(e.ino));
    std::string line = fmt::format("type={} nlink={} size={}", static_cast<int>(a.type), a.nlink, a.size);
    if (a.type == FileType::kRegular) {
      std::string data;
      RETURN_IF_ERROR(ReadWholeFile(fs, e.ino, a.size, &data));
      line += fmt::format(" data={:016x}", base::Checksum64(data.data(), data.size()));
    } else if (a.type == FileType::kSymlink) {
      ASSIGN_OR_RETURN(std::string target, fs->ReadLink(e.ino));
      line += " -> " + target;
    }
    if (a.rdev != 0) line += fmt::format(" rdev={}", a.rdev);
    ASSIGN_OR_RETURN(std::string xattrs, DumpXattrs(fs, e.ino));
    line += xattrs;
    (*out)[child] = line;
    if (a.type == FileType::kDirectory) RETURN_IF_ERROR(DumpTree(fs, e.ino, child, out));
  }
  return Status::Ok();
}

inline Result<std::string> Snapshot(Filesystem* fs) {
  std::map<std::string, std::string> entries;
  RETURN_IF_ERROR(DumpTree(fs, kRootIno, "", &entries));
  std::string text;
  for (auto& [path, line] : entries) text += path + " " + line + "\n";
  return text;
}

}  // namespace daxfs::testing
