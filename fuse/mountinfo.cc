// Parses /proc/self/mountinfo (proc(5)): "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [TAGS] - TYPE
// SOURCE SUPEROPTS", with spaces, tabs, newlines and backslashes escaped as octal.
#include "mountinfo.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace daxfs::fusefs {
namespace {

std::string Unescape(std::string_view s) {
  auto octal = [](char c) { return c >= '0' && c <= '7'; };
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && octal(s[i + 1]) && octal(s[i + 2]) && octal(s[i + 3])) {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::vector<std::string_view> Fields(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    size_t j = line.find(' ', i);
    if (j == std::string_view::npos) j = line.size();
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

}  // namespace

std::vector<MountEntry> ParseMountInfo(std::string_view text) {
  std::vector<MountEntry> mounts;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    std::vector<std::string_view> f = Fields(line);
    size_t dash = 6;
    while (dash < f.size() && f[dash] != "-") ++dash;
    if (f.size() < 6 || dash + 2 >= f.size()) continue;
    MountEntry m;
    if (std::sscanf(std::string(f[2]).c_str(), "%u:%u", &m.major, &m.minor) != 2) continue;
    m.mount_point = Unescape(f[4]);
    m.fstype = Unescape(f[dash + 1]);
    m.source = Unescape(f[dash + 2]);
    mounts.push_back(std::move(m));
  }
  return mounts;
}

Result<std::vector<MountEntry>> ReadMountInfo() {
  std::ifstream in("/proc/self/mountinfo");
  if (!in) return Status::Error(errno ? errno : EIO, "cannot read /proc/self/mountinfo");
  std::stringstream text;
  text << in.rdbuf();
  return ParseMountInfo(text.str());
}

const MountEntry* FindMount(const std::vector<MountEntry>& mounts, std::string_view mount_point) {
  const MountEntry* top = nullptr;
  for (const MountEntry& m : mounts) {
    if (m.mount_point == mount_point) top = &m;  // later lines are mounted on top
  }
  return top;
}

}  // namespace daxfs::fusefs
