// The daemon's permission-checked path walk (resolve.h).
#include "serve/resolve.h"

#include <algorithm>
#include <string>
#include <vector>

namespace daxfs::serve {
namespace {

constexpr int kMaxSymlinks = 40;
constexpr size_t kMaxPath = 4096;

std::vector<std::string> Split(std::string_view path) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    size_t j = i;
    while (j < path.size() && path[j] != '/') ++j;
    if (j > i) parts.emplace_back(path.substr(i, j - i));
    i = j;
  }
  return parts;
}

}  // namespace

Result<Attr> ResolveForPeer(LayoutHost& host, const Credentials& who, std::string_view path) {
  if (path.empty() || path[0] != '/') {
    return Status::Invalid(std::string(path) + ": the path must be absolute");
  }
  if (path.size() > kMaxPath) return Status::Error(ENAMETOOLONG, "path longer than 4096 bytes");
  // Names still to walk, last first, and the directories walked so far (root at the bottom).
  std::vector<std::string> todo = Split(path);
  std::reverse(todo.begin(), todo.end());
  ASSIGN_OR_RETURN(Attr root, host.GetAttr(kRootIno));
  std::vector<Attr> dirs = {root};
  std::string walked;  // for messages
  int links = 0;
  Attr current = root;
  while (!todo.empty()) {
    std::string name = std::move(todo.back());
    todo.pop_back();
    const Attr& dir = dirs.back();
    if (dir.type != FileType::kDirectory) {
      return Status::Error(ENOTDIR, (walked.empty() ? "/" : walked) + ": Not a directory");
    }
    if (!MayAccess(who, dir.uid, dir.gid, dir.mode, kMayExec, true)) {
      return Status::Error(EACCES, (walked.empty() ? "/" : walked) + ": " + who.Describe() +
                                       " may not search this directory (" + ModeString(dir.mode) +
                                       " " + std::to_string(dir.uid) + ":" +
                                       std::to_string(dir.gid) + ")");
    }
    if (name == ".") {
      current = dir;
      continue;
    }
    if (name == "..") {
      if (dirs.size() > 1) dirs.pop_back();
      current = dirs.back();
      walked = walked.substr(0, walked.rfind('/'));
      continue;
    }
    auto child = host.Lookup(dir.ino, name);
    if (!child.ok()) return child.status().WithContext(walked + "/" + name);
    if (child->type == FileType::kSymlink) {
      if (++links > kMaxSymlinks) {
        return Status::Error(ELOOP, std::string(path) + ": too many levels of symbolic links");
      }
      ASSIGN_OR_RETURN(std::string target, host.ReadLink(child->ino));
      std::vector<std::string> more = Split(target);
      for (auto it = more.rbegin(); it != more.rend(); ++it) todo.push_back(*it);
      if (!target.empty() && target[0] == '/') {
        dirs.resize(1);
        walked.clear();
      }
      current = dirs.back();
      continue;
    }
    walked += "/" + name;
    current = *child;
    if (child->type == FileType::kDirectory) {
      dirs.push_back(*child);
    } else if (!todo.empty()) {
      return Status::Error(ENOTDIR, walked + ": Not a directory");
    }
  }
  return current;
}

}  // namespace daxfs::serve
