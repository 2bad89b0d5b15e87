// Runs the built `daxfs` command (DAXFS_CLI) as a child process on images in /dev/shm: every
// subcommand's normal output, its errors and exit codes, --help, and a put/get round trip.
// Knows nothing of the engine: only the command line, stdout, stderr and the exit code.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

extern char** environ;

namespace {

using Args = std::vector<std::string>;
using nlohmann::json;

struct Outcome {
  int code = -1;
  std::string out;
  std::string err;
};

std::ostream& operator<<(std::ostream& os, const Outcome& r) {
  return os << "exit " << r.code << "\nstdout:\n" << r.out << "\nstderr:\n" << r.err;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Every subcommand with the smallest arguments that make it touch the image at `image`.
std::vector<Args> EveryCommandOn(const std::string& image) {
  return {{"info", image},
          {"df", image},
          {"check", image},
          {"ls", image},
          {"stat", image, "/"},
          {"mkdir", image, "/d"},
          {"rm", image, "/f"},
          {"rmdir", image, "/d"},
          {"mv", image, "/a", "/b"},
          {"ln", image, "/a", "/b"},
          {"put", image, "/dev/null", "/f"},
          {"get", image, "/f", "/dev/null"},
          {"cat", image, "/f"},
          {"write", image, "/f", "--text", "x"},
          {"truncate", image, "/f", "0"},
          {"punch", image, "/f", "--length", "4K"},
          {"fallocate", image, "/f", "--length", "4K"},
          {"bmap", image, "/f"},
          {"reflink", image, "/a", "/b"},
          {"dedupe", image, "/a", "/b", "--length", "4K"},
          {"unshare", image, "/a"},
          {"fsmap", image},
          {"repair", image},
          {"errors", image},
          {"inject-error", image, "--offset", "60M"},
          {"map", image, "/f"},
          {"scrub", image}};
}

const char* const kCommands[] = {
    "mkfs",    "info",     "df",     "check",        "ls",     "stat",    "mkdir",
    "rm",      "rmdir",    "mv",     "ln",           "put",    "get",     "cat",
    "write",   "truncate", "punch",  "fallocate",    "bmap",   "reflink", "dedupe",
    "unshare", "fsmap",    "repair", "inject-error", "errors", "map",     "scrub"};

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/dev/shm/daxfs-cli-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    image_ = dir_ + "/pool.img";
  }

  void TearDown() override {
    if (check_at_end_ && std::filesystem::exists(image_)) {
      Outcome r = Daxfs({"check", image_});
      EXPECT_EQ(r.code, 0) << r;
      EXPECT_TRUE(Contains(r.out, "clean")) << r;
    }
    std::filesystem::remove_all(dir_);
  }

  // Runs `daxfs args...` with stdin from `input` and returns what it printed and its exit code.
  Outcome Daxfs(const Args& args, const std::string& input = "/dev/null") {
    std::string out_path = dir_ + "/.stdout", err_path = dir_ + "/.stderr";
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, input.c_str(), O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0600);
    posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0600);
    std::vector<std::string> all = {DAXFS_CLI};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid;
    Outcome r;
    int rc = posix_spawn(&pid, DAXFS_CLI, &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      ADD_FAILURE() << "posix_spawn " << DAXFS_CLI << ": " << strerror(rc);
      return r;
    }
    int status = 0;
    waitpid(pid, &status, 0);
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = ReadFile(out_path);
    r.err = ReadFile(err_path);
    return r;
  }

  // Runs a command that must succeed and print nothing on stderr.
  Outcome Ok(const Args& args, const std::string& input = "/dev/null") {
    Outcome r = Daxfs(args, input);
    EXPECT_EQ(r.code, 0) << Describe(args) << "\n" << r;
    EXPECT_EQ(r.err, "") << Describe(args);
    return r;
  }

  // Runs a command that must fail with exit 1 and exactly one error line starting `prefix`
  // (normally "daxfs: <command>: <path>: ") and containing `reason`.
  Outcome Fails(const Args& args, const std::string& prefix, const std::string& reason) {
    Outcome r = Daxfs(args);
    EXPECT_EQ(r.code, 1) << Describe(args) << "\n" << r;
    EXPECT_TRUE(r.err.starts_with(prefix)) << Describe(args) << "\n" << r;
    EXPECT_TRUE(Contains(r.err, reason)) << Describe(args) << "\n" << r;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << Describe(args) << "\n" << r;
    return r;
  }

  static std::string Describe(const Args& args) {
    std::string s = "daxfs";
    for (const auto& a : args) s += " " + a;
    return s;
  }

  void Mkfs(const std::string& size = "64M") { Ok({"mkfs", image_, size}); }

  std::string Host(const std::string& name) { return dir_ + "/" + name; }

  json Json(const Args& args) {
    Outcome r = Ok(args);
    return json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  }

  std::string dir_;
  std::string image_;
  bool check_at_end_ = true;
};

// ---- Help and usage.

TEST_F(CliTest, HelpForEveryCommandExitsZeroAndNamesImage) {
  Outcome top = Ok({"--help"});
  EXPECT_TRUE(Contains(top.out, "IMAGE")) << top;
  for (const char* command : kCommands) {
    EXPECT_TRUE(Contains(top.out, command)) << command;
    Outcome r = Ok({command, "--help"});
    EXPECT_TRUE(Contains(r.out, std::string("Usage: daxfs ") + command)) << r;
    EXPECT_TRUE(Contains(r.out, "IMAGE")) << r;
    EXPECT_TRUE(Contains(r.out, "Example: daxfs " + std::string(command))) << r;
  }
}

TEST_F(CliTest, UsageErrorsExitTwo) {
  check_at_end_ = false;
  for (const Args& args :
       std::vector<Args>{{},
                         {"frobnicate", image_},
                         {"cat"},
                         {"cat", image_},
                         {"ls", image_, "--no-such-option"},
                         {"punch", image_, "/f"},
                         {"write", image_, "/f", "--text", "a", "--pattern", "1"},
                         {"mv", image_, "/a"}}) {
    Outcome r = Daxfs(args);
    EXPECT_EQ(r.code, 2) << Describe(args) << "\n" << r;
    EXPECT_TRUE(r.err.starts_with("daxfs: ")) << Describe(args) << "\n" << r;
    EXPECT_EQ(r.out, "") << Describe(args);
  }
  Outcome r = Daxfs({"cat", image_});
  EXPECT_TRUE(r.err.starts_with("daxfs: cat: ")) << r;
  EXPECT_TRUE(Contains(r.err, "daxfs cat --help")) << r;
}

// ---- Image-level errors: every command reports them the same way.

TEST_F(CliTest, MissingImageFailsForEveryCommand) {
  check_at_end_ = false;
  std::string missing = Host("missing.img");
  for (const Args& args : EveryCommandOn(missing)) {
    Fails(args, "daxfs: " + args[0] + ": " + missing + ": ", "No such file or directory");
  }
  Fails({"mkfs", missing}, "daxfs: mkfs: " + missing + ": ", "give a size");
  EXPECT_FALSE(std::filesystem::exists(missing));
}

TEST_F(CliTest, NotADaxfsImageFailsForEveryCommand) {
  check_at_end_ = false;
  WriteFile(image_, RandomBytes(2 << 20, 7));
  std::string before = ReadFile(image_);
  for (const Args& args : EveryCommandOn(image_)) {
    Fails(args, "daxfs: " + args[0] + ": " + image_ + ": ", "not a daxfs image");
  }
  EXPECT_EQ(ReadFile(image_), before);
}

TEST_F(CliTest, ImageInUseByAnotherProcessIsBusy) {
  Mkfs();
  int fd = open(image_.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(flock(fd, LOCK_EX | LOCK_NB), 0);
  Fails({"ls", image_}, "daxfs: ls: " + image_ + ": ", "device is in use");
  Fails({"mkdir", image_, "/d"}, "daxfs: mkdir: " + image_ + ": ", "device is in use");
  close(fd);
  Ok({"mkdir", image_, "/d"});
}

// ---- mkfs, info, df, check.

TEST_F(CliTest, MkfsInfoAndFeatures) {
  Outcome made = Ok({"mkfs", image_, "64M", "--label", "tour"});
  EXPECT_TRUE(made.out.starts_with(image_ + ": daxfs filesystem of 64.0 MiB made")) << made;
  EXPECT_TRUE(Contains(made.out, "features rmap,reflink,metadup,posix")) << made;
  EXPECT_EQ(std::filesystem::file_size(image_), 64u << 20);

  Outcome info = Ok({"info", image_});
  EXPECT_TRUE(Contains(info.out, "label:           tour")) << info;
  EXPECT_TRUE(Contains(info.out, "features:        rmap,reflink,metadup,posix")) << info;
  EXPECT_TRUE(Contains(info.out, "clean")) << info;
  json j = Json({"info", image_, "--json"});
  EXPECT_EQ(j["device_size"], 64u << 20);
  EXPECT_EQ(j["label"], "tour");

  Fails({"mkfs", image_, "64M"}, "daxfs: mkfs: " + image_ + ": ",
        "already holds a daxfs filesystem");
  Outcome forced = Ok({"mkfs", image_, "64M", "--force", "--no-reflink"});
  EXPECT_TRUE(Contains(forced.out, "features rmap,")) << forced;
  EXPECT_FALSE(Contains(forced.out, "reflink")) << forced;
  Outcome no_rmap = Ok({"mkfs", image_, "--force", "--no-rmap"});
  EXPECT_TRUE(Contains(no_rmap.out, "features metadup,posix")) << no_rmap;
  Outcome bare = Ok({"mkfs", image_, "--force", "--no-rmap", "--no-metadata-dup"});
  EXPECT_TRUE(Contains(bare.out, "features posix")) << bare;
  EXPECT_EQ(Json({"info", image_, "--json"})["features"], json::array({"posix"}));
}

TEST_F(CliTest, MetadataTwinsByDefaultAndTuneAddsThem) {
  Ok({"mkfs", image_, "64M"});
  Outcome info = Ok({"info", image_});
  EXPECT_TRUE(Contains(info.out, "features:        rmap,reflink,metadup")) << info;
  EXPECT_TRUE(Contains(info.out, "1 metadata, 1 metadata twin,")) << info;
  EXPECT_TRUE(Contains(info.out, "metadata twins:  chunk 0 -> 1")) << info;
  json j = Json({"info", image_, "--json"});
  EXPECT_EQ(j["metadata_twin_chunks"], 1);
  EXPECT_EQ(j["chunks"][0]["twin"], 1);
  EXPECT_EQ(j["chunks"][1]["type"], "METADATA_TWIN");
  EXPECT_EQ(j["chunks"][1]["twin_of"], 0);
  Fails({"tune", image_, "--metadata-dup"}, "daxfs: tune: " + image_ + ": ",
        "metadata twins are on already");

  Ok({"mkfs", image_, "64M", "--force", "--no-metadata-dup"});
  EXPECT_EQ(Json({"info", image_, "--json"})["metadata_twin_chunks"], 0);
  WriteFile(Host("one.bin"), RandomBytes(1 << 20, 7));
  Ok({"put", image_, Host("one.bin"), "/one.bin"});
  Fails({"tune", image_}, "daxfs: tune: " + image_ + ": ", "nothing to change");
  Outcome tuned = Ok({"tune", image_, "--metadata-dup"});
  EXPECT_TRUE(Contains(tuned.out, "metadata twins on")) << tuned;
  j = Json({"info", image_, "--json"});
  EXPECT_EQ(j["metadata_twin_chunks"], j["metadata_chunks"]);
  EXPECT_EQ(Ok({"cat", image_, "/one.bin"}).out, RandomBytes(1 << 20, 7));
}

TEST_F(CliTest, MkfsRejectsBadSizes) {
  check_at_end_ = false;
  Fails({"mkfs", image_, "12Q"}, "daxfs: mkfs: SIZE: ", "unknown size suffix");
  Fails({"mkfs", image_, "lots"}, "daxfs: mkfs: SIZE: ", "is not a size");
  Fails({"mkfs", image_, "100"}, "daxfs: mkfs: " + image_ + ": ", "at least");
  Fails({"mkfs", image_, "64M", "--chunk-size", "3K"}, "daxfs: mkfs: ", "");
  Fails({"mkfs", image_, "64M", "--chunk-size", "x"}, "daxfs: mkfs: --chunk-size: ", "not a size");
  EXPECT_FALSE(std::filesystem::exists(image_));
}

TEST_F(CliTest, DfNumbersMoveWithData) {
  Mkfs();
  json empty = Json({"df", image_, "--json"});
  EXPECT_EQ(empty["size_bytes"], 64u << 20);
  EXPECT_EQ(empty["inodes"], 1);
  EXPECT_EQ(empty["directories"], 1);
  EXPECT_EQ(empty["data_bytes"], 0);
  EXPECT_EQ(empty["used_bytes"].get<uint64_t>() + empty["available_bytes"].get<uint64_t>(),
            64u << 20);

  WriteFile(Host("four.bin"), RandomBytes(4 << 20, 1));
  Ok({"put", image_, Host("four.bin"), "/four.bin"});
  json full = Json({"df", image_, "--json"});
  EXPECT_EQ(full["files"], 1);
  EXPECT_EQ(full["inodes"], 2);
  EXPECT_GE(full["data_bytes"].get<uint64_t>(), 4u << 20);
  EXPECT_LE(full["available_bytes"].get<uint64_t>() + (4u << 20),
            empty["available_bytes"].get<uint64_t>());

  Ok({"rm", image_, "/four.bin"});
  json after = Json({"df", image_, "--json"});
  EXPECT_EQ(after["files"], 0);
  EXPECT_EQ(after["data_bytes"], 0);
  EXPECT_EQ(after["available_bytes"], empty["available_bytes"]);

  Outcome text = Ok({"df", image_});
  EXPECT_TRUE(Contains(text.out, "64.0 MiB  (16384 blocks)\n")) << text;
  EXPECT_TRUE(Contains(text.out, "available:")) << text;
  EXPECT_TRUE(Contains(text.out, "use:")) << text;
  EXPECT_TRUE(Contains(text.out, "inodes:             1  (0 files, 1 directories, 0 symlinks)"))
      << text;
}

TEST_F(CliTest, CheckSaysClean) {
  Mkfs();
  Outcome r = Ok({"check", image_});
  EXPECT_TRUE(r.out.starts_with(image_ + ": clean: ")) << r;
  EXPECT_TRUE(Contains(r.out, "no problems")) << r;
}

// ---- Paths.

TEST_F(CliTest, RelativePathsAreRejectedAndChangeNothing) {
  Mkfs();
  json before = Json({"df", image_, "--json"});
  for (const Args& args : std::vector<Args>{{"ls", image_, "docs"},
                                            {"stat", image_, "docs"},
                                            {"mkdir", image_, "docs"},
                                            {"mkdir", image_, "-p", "docs/a"},
                                            {"rm", image_, "docs"},
                                            {"rmdir", image_, "docs"},
                                            {"mv", image_, "a", "/b"},
                                            {"ln", image_, "a", "/b"},
                                            {"put", image_, "/dev/null", "f"},
                                            {"get", image_, "f", "/dev/null"},
                                            {"cat", image_, "f"},
                                            {"write", image_, "f", "--text", "x", "--create"},
                                            {"truncate", image_, "f", "1K"},
                                            {"punch", image_, "f", "--length", "4K"},
                                            {"fallocate", image_, "f", "--length", "4K"},
                                            {"bmap", image_, "f"}}) {
    Fails(args, "daxfs: " + args[0] + ": ", "not an absolute path");
  }
  json after = Json({"df", image_, "--json"});
  EXPECT_EQ(after["inodes"], before["inodes"]);
}

// ---- ls and stat.

TEST_F(CliTest, LsShortLongAllAndFiles) {
  Mkfs();
  Ok({"mkdir", image_, "/docs"});
  Ok({"write", image_, "/docs/b.txt", "--text", "hello", "--create"});
  Ok({"write", image_, "/a.txt", "--text", "hi", "--create"});
  Ok({"ln", image_, "-s", "/docs/b.txt", "/link"});

  EXPECT_EQ(Ok({"ls", image_}).out, "a.txt\ndocs\nlink\n");
  EXPECT_EQ(Ok({"ls", image_, "/docs/"}).out, "b.txt\n");
  EXPECT_EQ(Ok({"ls", image_, "-a", "/docs"}).out, ".\n..\nb.txt\n");
  EXPECT_EQ(Ok({"ls", image_, "/a.txt"}).out, "/a.txt\n");

  Outcome l = Ok({"ls", image_, "-l", "/"});
  std::istringstream lines(l.out);
  std::string a, docs, link;
  std::getline(lines, a);
  std::getline(lines, docs);
  std::getline(lines, link);
  EXPECT_TRUE(a.starts_with("-rw-r--r-- 1 0 0  2 ")) << l;  // sizes right-aligned
  EXPECT_TRUE(a.ends_with(" a.txt")) << l;
  EXPECT_TRUE(docs.starts_with("drwxr-xr-x 2 0 0  1 ")) << l;
  EXPECT_TRUE(link.starts_with("lrwxrwxrwx 1 0 0 11 ")) << l;
  EXPECT_TRUE(link.ends_with(" link -> /docs/b.txt")) << l;

  // ls -l shows a symlink itself; plain ls follows it to the directory it names.
  Ok({"ln", image_, "-s", "/docs", "/docs-link"});
  EXPECT_TRUE(Contains(Ok({"ls", image_, "-l", "/docs-link"}).out, "/docs-link -> /docs"));
  EXPECT_EQ(Ok({"ls", image_, "/docs-link"}).out, "b.txt\n");

  // Several paths: files first, then each directory under a header.
  EXPECT_EQ(Ok({"ls", image_, "/docs", "/a.txt"}).out, "/a.txt\n\n/docs:\nb.txt\n");
  Outcome i = Ok({"ls", image_, "-i", "/docs"});
  EXPECT_TRUE(Contains(i.out, " b.txt")) << i;

  Outcome missing =
      Fails({"ls", image_, "/nope", "/docs"}, "daxfs: ls: /nope: ", "No such file or directory");
  EXPECT_EQ(missing.out, "/docs:\nb.txt\n");
}

TEST_F(CliTest, StatTextAndJson) {
  Mkfs();
  Ok({"mkdir", image_, "-m", "700", "/private"});
  Ok({"write", image_, "/f", "--length", "8K", "--create"});
  Ok({"ln", image_, "-s", "/f", "/l"});

  Outcome r = Ok({"stat", image_, "/f"});
  EXPECT_TRUE(Contains(r.out, "path:     /f\n")) << r;
  EXPECT_TRUE(Contains(r.out, "type:     regular file\n")) << r;
  EXPECT_TRUE(Contains(r.out, "mode:     0644 (-rw-r--r--)\n")) << r;
  EXPECT_TRUE(Contains(r.out, "links:    1\n")) << r;
  EXPECT_TRUE(Contains(r.out, "size:     8192 (8.0 KiB)\n")) << r;
  EXPECT_TRUE(Contains(r.out, "blocks:   2 ")) << r;
  EXPECT_TRUE(Contains(r.out, "extents:  1\n")) << r;
  EXPECT_TRUE(Contains(r.out, "modify:   20")) << r;
  EXPECT_TRUE(Contains(r.out, "Z\n")) << r;

  json f = Json({"stat", image_, "--json", "/f"});
  EXPECT_EQ(f["type"], "file");
  EXPECT_EQ(f["size"], 8192);
  EXPECT_EQ(f["blocks"], 2);
  EXPECT_EQ(f["extents"], 1);
  EXPECT_EQ(f["nlink"], 1);
  EXPECT_EQ(f["mode"], "0644");
  std::string mtime = f["mtime"];
  EXPECT_EQ(mtime.size(), std::string("2024-05-01T12:34:56.123456789Z").size()) << mtime;
  EXPECT_EQ(mtime[10], 'T');

  json d = Json({"stat", image_, "--json", "/private"});
  EXPECT_EQ(d["type"], "directory");
  EXPECT_EQ(d["mode"], "0700");
  EXPECT_EQ(d["nlink"], 2);

  json l = Json({"stat", image_, "--json", "/l"});
  EXPECT_EQ(l["type"], "symlink");
  EXPECT_EQ(l["target"], "/f");
  EXPECT_EQ(Json({"stat", image_, "--json", "-L", "/l"})["ino"], f["ino"]);

  json both = Json({"stat", image_, "--json", "/f", "/private"});
  ASSERT_TRUE(both.is_array());
  EXPECT_EQ(both.size(), 2u);

  Fails({"stat", image_, "/nope"}, "daxfs: stat: /nope: ", "No such file or directory");
  Fails({"stat", image_, "/f/x"}, "daxfs: stat: /f/x: ", "");
}

// ---- mkdir, rm, rmdir, mv, ln.

TEST_F(CliTest, MkdirParentsModesAndErrors) {
  Mkfs();
  Ok({"mkdir", image_, "/a", "/b"});
  Ok({"mkdir", image_, "-p", "/a/x/y/z"});
  Ok({"mkdir", image_, "-p", "/a/x/y/z"});  // exists: fine with -p
  EXPECT_EQ(Ok({"ls", image_, "/a/x/y"}).out, "z\n");
  Fails({"mkdir", image_, "/a"}, "daxfs: mkdir: /a: ", "File exists");
  Fails({"mkdir", image_, "/"}, "daxfs: mkdir: /: ", "File exists");
  Fails({"mkdir", image_, "/no/such"}, "daxfs: mkdir: /no/such: ", "No such file or directory");
  Ok({"write", image_, "/file", "--text", "x", "--create"});
  Fails({"mkdir", image_, "/file/sub"}, "daxfs: mkdir: /file/sub: ", "Not a directory");
  Fails({"mkdir", image_, "-p", "/file/sub"}, "daxfs: mkdir: /file/sub: ", "File exists");
  Fails({"mkdir", image_, "-m", "999", "/m"}, "daxfs: mkdir: --mode: ", "not an octal mode");
  Ok({"mkdir", image_, "-m", "0750", "/m"});
  EXPECT_EQ(Json({"stat", image_, "--json", "/m"})["mode"], "0750");
}

TEST_F(CliTest, RmFilesDirectoriesAndErrors) {
  Mkfs();
  Ok({"mkdir", image_, "-p", "/d/e/f"});
  Ok({"write", image_, "/d/e/f/file", "--text", "x", "--create"});
  Ok({"write", image_, "/d/file", "--text", "x", "--create"});
  Ok({"write", image_, "/top", "--text", "x", "--create"});
  Ok({"ln", image_, "-s", "/d", "/sym"});

  Fails({"rm", image_, "/d"}, "daxfs: rm: /d: ", "Is a directory");
  Fails({"rmdir", image_, "/d"}, "daxfs: rmdir: /d: ", "Directory not empty");
  Fails({"rm", image_, "/missing"}, "daxfs: rm: /missing: ", "No such file or directory");
  Ok({"rm", image_, "-f", "/missing"});
  Fails({"rm", image_, "-r", "/"}, "daxfs: rm: /: ", "root");

  Ok({"rm", image_, "/sym"});  // the symlink, not what it names
  EXPECT_EQ(Ok({"ls", image_, "/d"}).out, "e\nfile\n");
  Ok({"rm", image_, "/top"});
  Ok({"rm", image_, "-r", "/d"});
  EXPECT_EQ(Ok({"ls", image_}).out, "");
  EXPECT_EQ(Json({"df", image_, "--json"})["inodes"], 1);

  // One bad path among several: the others are still removed, and the exit code is 1.
  Ok({"mkdir", image_, "/x", "/y"});
  Fails({"rmdir", image_, "/x", "/nope", "/y"}, "daxfs: rmdir: /nope: ", "No such file");
  EXPECT_EQ(Ok({"ls", image_}).out, "");
}

TEST_F(CliTest, MvRenamesAndMovesIntoDirectories) {
  Mkfs();
  Ok({"mkdir", image_, "/dir"});
  Ok({"write", image_, "/a", "--text", "A", "--create"});
  Ok({"mv", image_, "/a", "/b"});
  EXPECT_EQ(Ok({"ls", image_}).out, "b\ndir\n");
  Ok({"mv", image_, "/b", "/dir"});
  EXPECT_EQ(Ok({"ls", image_, "/dir"}).out, "b\n");
  EXPECT_EQ(Ok({"cat", image_, "/dir/b"}).out, "A");
  Ok({"write", image_, "/c", "--text", "C", "--create"});
  Ok({"mv", image_, "/c", "/dir/b"});  // replaces a file
  EXPECT_EQ(Ok({"cat", image_, "/dir/b"}).out, "C");
  Ok({"mv", image_, "/dir", "/renamed"});
  EXPECT_EQ(Ok({"ls", image_}).out, "renamed\n");

  Fails({"mv", image_, "/nope", "/x"}, "daxfs: mv: /nope: ", "No such file or directory");
  Fails({"mv", image_, "/renamed", "/renamed/inside"}, "daxfs: mv: /renamed: ", "Invalid argument");
  Fails({"mv", image_, "/renamed/b", "/no/where"}, "daxfs: mv: /no/where: ", "No such file");
}

TEST_F(CliTest, LnHardAndSymbolic) {
  Mkfs();
  Ok({"mkdir", image_, "/dir"});
  Ok({"write", image_, "/f", "--text", "data", "--create"});
  Ok({"ln", image_, "/f", "/g"});
  Ok({"ln", image_, "/f", "/dir"});  // into the directory, as /dir/f
  EXPECT_EQ(Json({"stat", image_, "--json", "/f"})["nlink"], 3);
  EXPECT_EQ(Ok({"cat", image_, "/dir/f"}).out, "data");
  Ok({"ln", image_, "-s", "../f", "/dir/rel"});
  EXPECT_EQ(Ok({"cat", image_, "/dir/rel"}).out, "data");
  EXPECT_EQ(Json({"stat", image_, "--json", "/dir/rel"})["target"], "../f");

  Fails({"ln", image_, "/f", "/g"}, "daxfs: ln: /g: ", "File exists");
  Fails({"ln", image_, "/dir", "/d2"}, "daxfs: ln: /dir: ", "hard link not allowed");
  Fails({"ln", image_, "/nope", "/x"}, "daxfs: ln: /nope: ", "No such file or directory");
  Ok({"rm", image_, "/f"});
  EXPECT_EQ(Ok({"cat", image_, "/g"}).out, "data");
}

// ---- put, get, cat.

TEST_F(CliTest, PutGetRoundTripOfThreeMiB) {
  Mkfs();
  std::string data = RandomBytes(3 << 20, 42);
  WriteFile(Host("random.bin"), data);
  Outcome put = Ok({"put", image_, Host("random.bin"), "/random.bin"});
  EXPECT_EQ(put.out, Host("random.bin") + " -> /random.bin: 3145728 bytes (3.0 MiB)\n");

  Outcome get = Ok({"get", image_, "/random.bin", Host("back.bin")});
  EXPECT_EQ(get.out, "/random.bin -> " + Host("back.bin") + ": 3145728 bytes (3.0 MiB)\n");
  EXPECT_TRUE(ReadFile(Host("back.bin")) == data);
  EXPECT_TRUE(Ok({"get", image_, "/random.bin", "-"}).out == data);
  EXPECT_TRUE(Ok({"cat", image_, "/random.bin"}).out == data);

  json map = Json({"bmap", image_, "--json", "/random.bin"});
  ASSERT_EQ(map["extents"].size(), 1u) << map.dump();
  EXPECT_EQ(map["extents"][0]["file_offset"], 0);
  EXPECT_EQ(map["extents"][0]["length"], 3 << 20);
  EXPECT_EQ(map["extents"][0]["unwritten"], false);
  EXPECT_EQ(map["holes"].size(), 0u);
  Outcome text = Ok({"bmap", image_, "/random.bin"});
  EXPECT_TRUE(Contains(text.out, "/random.bin: 3145728 bytes, 1 extent(s)\n")) << text;
  EXPECT_TRUE(Contains(text.out, "0:  [0..3145727]  [")) << text;
}

TEST_F(CliTest, PutIntoDirectoriesOverFilesAndFromStdin) {
  Mkfs();
  Ok({"mkdir", image_, "/docs"});
  WriteFile(Host("notes.txt"), "first version, longer\n");
  Ok({"put", image_, Host("notes.txt"), "/docs"});
  EXPECT_EQ(Ok({"cat", image_, "/docs/notes.txt"}).out, "first version, longer\n");
  WriteFile(Host("notes.txt"), "second\n");
  Outcome over = Ok({"put", image_, Host("notes.txt"), "/docs/"});
  EXPECT_TRUE(Contains(over.out, "-> /docs/notes.txt: 7 bytes")) << over;
  EXPECT_EQ(Ok({"cat", image_, "/docs/notes.txt"}).out, "second\n");

  WriteFile(Host("in.txt"), "from stdin");
  Ok({"put", image_, "-", "/stdin.txt"}, Host("in.txt"));
  EXPECT_EQ(Ok({"cat", image_, "/stdin.txt"}).out, "from stdin");
  Ok({"put", image_, "/dev/null", "/empty"});
  EXPECT_EQ(Json({"stat", image_, "--json", "/empty"})["size"], 0);

  // get into a host directory uses the file's name.
  Ok({"get", image_, "/docs/notes.txt", dir_});
  EXPECT_EQ(ReadFile(Host("notes.txt")), "second\n");

  Fails({"put", image_, Host("missing.txt"), "/x"}, "daxfs: put: " + Host("missing.txt") + ": ",
        "No such file or directory");
  Fails({"put", image_, dir_, "/x"}, "daxfs: put: " + dir_ + ": ", "Is a directory");
  Fails({"put", image_, Host("notes.txt"), "/nodir/x"}, "daxfs: put: /nodir/x: ", "No such file");
  Fails({"put", image_, "-", "/docs"}, "daxfs: put: /docs: ", "Is a directory");
  Fails({"put", image_, Host("notes.txt"), "/missing/"},
        "daxfs: put: /missing/: ", "Not a directory");
  Fails({"get", image_, "/docs", Host("x")}, "daxfs: get: /docs: ", "Is a directory");
  Fails({"get", image_, "/nope", Host("x")}, "daxfs: get: /nope: ", "No such file or directory");
  Fails({"get", image_, "/docs/notes.txt", Host("no/dir/x")},
        "daxfs: get: " + Host("no/dir/x") + ": ", "No such file or directory");
}

TEST_F(CliTest, CatSeveralFilesAndErrors) {
  Mkfs();
  Ok({"write", image_, "/a", "--text", "one\n", "--create"});
  Ok({"write", image_, "/b", "--text", "two\n", "--create"});
  EXPECT_EQ(Ok({"cat", image_, "/a", "/b", "/a"}).out, "one\ntwo\none\n");
  Outcome r = Fails({"cat", image_, "/a", "/nope", "/b"}, "daxfs: cat: /nope: ", "No such file");
  EXPECT_EQ(r.out, "one\ntwo\n");
  Ok({"mkdir", image_, "/d"});
  Fails({"cat", image_, "/d"}, "daxfs: cat: /d: ", "Is a directory");
  Fails({"cat", image_, "/a/x"}, "daxfs: cat: /a/x: ", "");
}

// ---- write, truncate, punch, fallocate, bmap.

TEST_F(CliTest, WriteBeyondEndMakesAHoleThatBmapShows) {
  Mkfs();
  Outcome w = Ok({"write", image_, "/f", "--length", "64K", "--create"});
  EXPECT_EQ(w.out, "wrote 65536 bytes at offset 0 to /f\n");
  Ok({"write", image_, "/f", "--offset", "1M", "--length", "4K", "--pattern", "0xcd"});

  json map = Json({"bmap", image_, "--json", "/f"});
  EXPECT_EQ(map["size"], (1 << 20) + 4096);
  ASSERT_EQ(map["extents"].size(), 2u) << map.dump();
  ASSERT_EQ(map["holes"].size(), 1u) << map.dump();
  EXPECT_EQ(map["holes"][0]["file_offset"], 65536);
  EXPECT_EQ(map["holes"][0]["length"], (1 << 20) - 65536);
  EXPECT_EQ(map["extents"][1]["file_offset"], 1 << 20);
  Outcome text = Ok({"bmap", image_, "/f"});
  EXPECT_TRUE(
      std::regex_search(text.out, std::regex(R"(\n +1: +\[65536\.\.1048575\] +hole +983040)")))
      << text;

  std::string bytes = Ok({"cat", image_, "/f"}).out;
  ASSERT_EQ(bytes.size(), (1u << 20) + 4096);
  EXPECT_EQ(bytes.substr(0, 65536), std::string(65536, '\xab'));
  EXPECT_EQ(bytes.substr(65536, (1 << 20) - 65536), std::string((1 << 20) - 65536, '\0'));
  EXPECT_EQ(bytes.substr(1 << 20), std::string(4096, '\xcd'));

  // Text repeats to --length.
  Ok({"write", image_, "/t", "--text", "abc", "--length", "7", "--create"});
  EXPECT_EQ(Ok({"cat", image_, "/t"}).out, "abcabca");

  Fails({"write", image_, "/f", "--offset", "1Q", "--length", "1"},
        "daxfs: write: --offset: ", "unknown size suffix");
  Fails({"write", image_, "/f", "--length", "big"}, "daxfs: write: --length: ", "not a size");
  Fails({"write", image_, "/f", "--length", "1", "--pattern", "300"},
        "daxfs: write: --pattern: ", "not a byte");
  Fails({"write", image_, "/f"}, "daxfs: write: --length: ", "needed");
  Fails({"write", image_, "/new", "--text", "x"}, "daxfs: write: /new: ", "No such file");
  Ok({"mkdir", image_, "/d"});
  Fails({"write", image_, "/d", "--text", "x"}, "daxfs: write: /d: ", "Is a directory");
}

TEST_F(CliTest, PunchMakesAHoleAndKeepsTheSize) {
  Mkfs();
  WriteFile(Host("data.bin"), RandomBytes(1 << 20, 3));
  Ok({"put", image_, Host("data.bin"), "/data.bin"});
  json before = Json({"df", image_, "--json"});
  Outcome p = Ok({"punch", image_, "/data.bin", "--offset", "256K", "--length", "128K"});
  EXPECT_EQ(p.out, "punched 131072 bytes at offset 262144 of /data.bin\n");

  json map = Json({"bmap", image_, "--json", "/data.bin"});
  EXPECT_EQ(map["size"], 1 << 20);
  ASSERT_EQ(map["holes"].size(), 1u) << map.dump();
  EXPECT_EQ(map["holes"][0]["file_offset"], 256 << 10);
  EXPECT_EQ(map["holes"][0]["length"], 128 << 10);
  EXPECT_EQ(map["extents"].size(), 2u);
  json after = Json({"df", image_, "--json"});
  EXPECT_EQ(after["data_bytes"].get<uint64_t>() + (128 << 10),
            before["data_bytes"].get<uint64_t>());

  std::string expect = ReadFile(Host("data.bin"));
  std::fill(expect.begin() + (256 << 10), expect.begin() + (384 << 10), '\0');
  EXPECT_TRUE(Ok({"cat", image_, "/data.bin"}).out == expect);

  Fails({"punch", image_, "/nope", "--length", "4K"}, "daxfs: punch: /nope: ", "No such file");
  Fails({"punch", image_, "/data.bin", "--length", "4X"}, "daxfs: punch: --length: ", "suffix");
  Fails({"punch", image_, "/data.bin", "--length", "0"},
        "daxfs: punch: /data.bin: ", "Invalid argument");
}

TEST_F(CliTest, TruncateGrowsShrinksAndCreates) {
  Mkfs();
  Ok({"write", image_, "/f", "--text", "hello world", "--create"});
  Ok({"truncate", image_, "/f", "5"});
  EXPECT_EQ(Ok({"cat", image_, "/f"}).out, "hello");
  Ok({"truncate", image_, "/f", "1M"});
  json map = Json({"bmap", image_, "--json", "/f"});
  EXPECT_EQ(map["size"], 1 << 20);
  EXPECT_EQ(map["extents"].size(), 1u);
  EXPECT_EQ(map["holes"].size(), 1u);
  Ok({"truncate", image_, "/new", "8K"});  // created, like truncate(1)
  EXPECT_EQ(Json({"stat", image_, "--json", "/new"})["size"], 8192);
  Fails({"truncate", image_, "-c", "/other", "8K"}, "daxfs: truncate: /other: ", "No such file");
  Fails({"truncate", image_, "/f", "-5"}, "daxfs: truncate: SIZE: ", "not a size");
  Ok({"mkdir", image_, "/d"});
  Fails({"truncate", image_, "/d", "0"}, "daxfs: truncate: /d: ", "Is a directory");
}

TEST_F(CliTest, FallocateShowsUnwrittenExtents) {
  Mkfs();
  Ok({"truncate", image_, "/f", "0"});
  Outcome r = Ok({"fallocate", image_, "/f", "--length", "64K", "--keep-size"});
  EXPECT_EQ(r.out, "allocated 65536 bytes at offset 0 of /f\n");
  json map = Json({"bmap", image_, "--json", "/f"});
  EXPECT_EQ(map["size"], 0);
  ASSERT_EQ(map["extents"].size(), 1u) << map.dump();
  EXPECT_EQ(map["extents"][0]["unwritten"], true);
  EXPECT_TRUE(Contains(Ok({"bmap", image_, "/f"}).out, "unwritten"));
  Ok({"fallocate", image_, "/f", "--length", "64K"});
  EXPECT_EQ(Json({"stat", image_, "--json", "/f"})["size"], 65536);
  EXPECT_EQ(Ok({"cat", image_, "/f"}).out, std::string(65536, '\0'));
}

TEST_F(CliTest, BmapErrorsAndEmptyFiles) {
  Mkfs();
  Ok({"truncate", image_, "/empty", "0"});
  EXPECT_EQ(Ok({"bmap", image_, "/empty"}).out, "/empty: 0 bytes, 0 extent(s)\n");
  Ok({"mkdir", image_, "/d"});
  Fails({"bmap", image_, "/d"}, "daxfs: bmap: /d: ", "Is a directory");
  Fails({"bmap", image_, "/nope"}, "daxfs: bmap: /nope: ", "No such file or directory");
}

// ---- Every change is durable and the image clean when the command returns.

TEST_F(CliTest, MutatingCommandsLeaveTheImageClean) {
  Mkfs();
  Ok({"mkdir", image_, "/d"});
  Ok({"write", image_, "/d/f", "--length", "12K", "--create"});
  Ok({"punch", image_, "/d/f", "--offset", "4K", "--length", "4K"});
  Ok({"mv", image_, "/d/f", "/g"});
  json info = Json({"info", image_, "--json"});
  EXPECT_EQ(info["clean"], true);
  EXPECT_EQ(Ok({"ls", image_}).out, "d\ng\n");
}

}  // namespace

namespace {

// The reflink commands, end to end: clones share blocks (fsmap names both owners with paths and
// the shared flag, bmap marks the extents shared), a write to one copy leaves the other alone,
// dedupe, unshare, repair, and refusal on a filesystem made without reflink.
TEST_F(CliTest, ReflinkFsmapDedupeUnshareRepair) {
  Mkfs();
  std::string host = dir_ + "/data.bin", back = dir_ + "/back.bin";
  std::string bytes = RandomBytes(256 << 10, 7);
  WriteFile(host, bytes);
  Ok({"put", image_, host, "/orig"});
  Outcome r = Ok({"reflink", image_, "/orig", "/copy"});
  EXPECT_TRUE(Contains(r.out, "shared")) << r;
  r = Ok({"bmap", image_, "/copy"});
  EXPECT_TRUE(Contains(r.out, "shared")) << r;

  r = Ok({"fsmap", image_, "--json"});
  json records = json::parse(r.out);
  int orig_records = 0, copy_records = 0;
  for (const auto& rec : records) {
    if (rec["path"] == "/orig") ++orig_records;
    if (rec["path"] == "/copy") ++copy_records;
    if (rec["path"] == "/orig" || rec["path"] == "/copy") {
      EXPECT_TRUE(Contains(rec["flags"].get<std::string>(), "shared")) << rec.dump();
    }
  }
  EXPECT_GE(orig_records, 1);
  EXPECT_EQ(orig_records, copy_records);
  r = Ok({"fsmap", image_});
  EXPECT_TRUE(Contains(r.out, "special:superblock")) << r;
  EXPECT_TRUE(Contains(r.out, "/orig")) << r;
  EXPECT_TRUE(Contains(r.out, "/copy")) << r;

  Ok({"write", image_, "/copy", "--offset", "0", "--length", "4K", "--pattern", "0x11"});
  Ok({"get", image_, "/orig", back});
  EXPECT_EQ(ReadFile(back), bytes) << "writing the clone changed the original";

  Ok({"put", image_, host, "/twin"});
  r = Ok({"dedupe", image_, "/orig", "/twin", "--length", "256K"});
  EXPECT_TRUE(Contains(r.out, "262144 bytes deduplicated")) << r;
  r = Ok({"dedupe", image_, "/orig", "/copy", "--length", "4K"});
  EXPECT_TRUE(Contains(r.out, "differ")) << r;

  Ok({"unshare", image_, "/twin"});
  r = Ok({"bmap", image_, "/twin"});
  EXPECT_FALSE(Contains(r.out, "shared")) << r;

  r = Ok({"repair", image_});
  EXPECT_TRUE(Contains(r.out, "0 problem(s) fixed")) << r;

  r = Daxfs({"reflink", image_, "/missing", "/x"});
  EXPECT_EQ(r.code, 1) << r;
  EXPECT_TRUE(Contains(r.err, "daxfs: reflink: /missing:")) << r;
  r = Daxfs({"fsmap", image_, "-d", "64K", "4K"});
  EXPECT_EQ(r.code, 1) << r;
}

TEST_F(CliTest, ReflinkIsRefusedWithoutTheReverseMap) {
  Ok({"mkfs", image_, "64M", "--no-rmap"});
  Ok({"write", image_, "/f", "--length", "8K", "--create"});
  Outcome r = Daxfs({"reflink", image_, "/f", "/g"});
  EXPECT_EQ(r.code, 1) << r;
  EXPECT_TRUE(Contains(r.err, "reverse map")) << r;
  // fsmap still answers, from a full scan of the extent maps.
  r = Ok({"fsmap", image_});
  EXPECT_TRUE(Contains(r.out, "/f")) << r;
}

// ---- Media failures: the demo's story, asserted.

TEST_F(CliTest, InjectedErrorInASharedBlockReachesEveryOwnerAndMapping) {
  Mkfs();
  std::string host = Host("data.bin");
  std::string bytes = RandomBytes(64 << 10, 11);
  WriteFile(host, bytes);
  Ok({"put", image_, host, "/orig"});
  Ok({"reflink", image_, "/orig", "/c1"});
  Ok({"reflink", image_, "/orig", "/c2"});
  Outcome r = Ok({"map", image_, "/orig", "/c1", "/c2", "--inject-at", "/orig:4096", "--load"});
  for (const char* path : {"/orig", "/c1", "/c2"}) {
    EXPECT_TRUE(Contains(r.out, std::string("mapped ") + path)) << r;
    EXPECT_TRUE(
        std::regex_search(r.out, std::regex(std::string("handler of mapping #[0-9]+ \\(") + path +
                                            "\\): bad bytes at 0x[0-9a-f]+\\+4096 = "
                                            "file offset 4096")))
        << r;
  }
  EXPECT_TRUE(Contains(r.out, "owners (3)")) << r;
  EXPECT_TRUE(Contains(r.out, "the load trapped")) << r;
  EXPECT_TRUE(Contains(r.out, "trapped access")) << r;
  json errors = Json({"errors", image_, "--json"});
  ASSERT_EQ(errors["lost"].size(), 3u) << errors.dump();
  for (const auto& l : errors["lost"]) {
    EXPECT_EQ(l["file_offset"], 4096) << l.dump();
    EXPECT_TRUE(l["shared"].get<bool>()) << l.dump();
  }
  Fails({"cat", image_, "/c1"}, "daxfs: cat: /c1: ", "Input/output error");
  r = Ok({"check", image_});
  EXPECT_TRUE(Contains(r.out, "recorded media damage")) << r;
  // A whole-block rewrite restores one copy; the others stay lost.
  Ok({"write", image_, "/c1", "--offset", "4096", "--length", "4096", "--pattern", "0xab"});
  errors = Json({"errors", image_, "--json"});
  EXPECT_EQ(errors["lost"].size(), 2u) << errors.dump();
  Ok({"cat", image_, "/c1"});
  // Once every owner rewrote it, the bad block is retired: fsmap names it `bad`.
  for (const char* path : {"/orig", "/c2"}) {
    Ok({"write", image_, path, "--offset", "4096", "--length", "4096", "--pattern", "0xab"});
  }
  errors = Json({"errors", image_, "--json"});
  EXPECT_EQ(errors["lost"].size(), 0u) << errors.dump();
  EXPECT_EQ(errors["retired"].size(), 1u) << errors.dump();
  r = Ok({"fsmap", image_});
  EXPECT_TRUE(Contains(r.out, "bad")) << r;
  // Every event is one JSON line.
  std::string log = ReadFile(image_ + ".events.jsonl");
  ASSERT_FALSE(log.empty());
  std::istringstream lines(log);
  std::string line;
  int events = 0;
  while (std::getline(lines, line)) {
    json e = json::parse(line, nullptr, false);
    ASSERT_FALSE(e.is_discarded()) << line;
    EXPECT_TRUE(e.contains("device") && e.contains("owners") && e.contains("actions")) << line;
    ++events;
  }
  EXPECT_GE(events, 2);  // the failure and the trap
}

TEST_F(CliTest, InjectErrorAndErrorsReportBadInput) {
  Mkfs();
  Fails({"inject-error", image_, "--offset", "1G"}, "daxfs: inject-error: " + image_ + ": ",
        "past the end");
  Outcome r = Daxfs({"inject-error", image_});
  EXPECT_EQ(r.code, 1) << r;
  r = Ok({"inject-error", image_, "--offset", "40M"});
  EXPECT_TRUE(Contains(r.out, "free")) << r;
  json errors = Json({"errors", image_, "--json"});
  EXPECT_EQ(errors["retired"].size(), 1u) << errors.dump();
  EXPECT_TRUE(std::filesystem::exists(image_ + ".badblocks"));
}

}  // namespace

namespace {

// ---- daxfs scrub: bad blocks nothing has routed yet are found and named; plain lines when
// stdout is not a terminal; --json; SIGINT stops with a resume point that --resume goes on from.

TEST_F(CliTest, ScrubFindsUnroutedBadBlocksAndNamesTheFiles) {
  Mkfs();
  WriteFile(Host("a.bin"), RandomBytes(1 << 20, 3));
  Ok({"put", image_, Host("a.bin"), "/a"});
  Ok({"reflink", image_, "/a", "/a.clone"});
  json bmap = Json({"bmap", image_, "/a", "--json"});
  uint64_t device = bmap["extents"][0]["device_offset"];
  // On the device's list only, as the hardware would report it: no command has routed it.
  std::ofstream(image_ + ".badblocks", std::ios::app) << device + 8192 << " 4096\n";
  Outcome r = Ok({"scrub", image_});
  EXPECT_TRUE(Contains(r.out, "scrub: phase metadata done")) << r;
  EXPECT_TRUE(Contains(r.out, "scrub: phase index done")) << r;
  EXPECT_TRUE(Contains(r.out, "scrub: phase data done")) << r;
  EXPECT_TRUE(Contains(r.out, "lost: /a file bytes 8192+4096")) << r;
  EXPECT_TRUE(Contains(r.out, "lost: /a.clone file bytes 8192+4096")) << r;
  json j = Json({"scrub", image_, "--json"});
  EXPECT_EQ(j["clean"], true);
  EXPECT_EQ(j["data"]["found"], 0);  // recorded by the first scrub
  EXPECT_EQ(Json({"errors", image_, "--json"})["lost"].size(), 2u);
  Fails({"scrub", image_, "--resume"}, "daxfs: scrub: ", "no resume point");
  Fails({"scrub", image_, "--max-rate", "fast"}, "daxfs: scrub: --max-rate: ", "not a size");
}

TEST_F(CliTest, ScrubStopsOnSigintAndResumes) {
  Mkfs();
  WriteFile(Host("big.bin"), RandomBytes(24 << 20, 5));
  Ok({"put", image_, Host("big.bin"), "/big"});
  // A slow scrub (1 MiB/s over 24 MiB of data), interrupted once its data phase has begun.
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_addclose(&actions, out[0]);
  std::vector<std::string> all = {DAXFS_CLI, "scrub", image_, "--max-rate", "1M"};
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid;
  ASSERT_EQ(posix_spawn(&pid, DAXFS_CLI, &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  std::string text;
  char buf[4096];
  while (!Contains(text, "phase index done")) {
    ssize_t n = read(out[0], buf, sizeof buf);
    ASSERT_GT(n, 0) << text;
    text.append(buf, static_cast<size_t>(n));
  }
  ASSERT_EQ(kill(pid, SIGINT), 0);
  for (ssize_t n; (n = read(out[0], buf, sizeof buf)) > 0;)
    text.append(buf, static_cast<size_t>(n));
  close(out[0]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << text;
  EXPECT_EQ(WEXITSTATUS(status), 0) << text;
  EXPECT_TRUE(Contains(text, "scrub stopped")) << text;
  EXPECT_TRUE(Contains(text, "stopped in phase data at block")) << text;
  ASSERT_TRUE(std::filesystem::exists(image_ + ".scrub"));
  json j = Json({"scrub", image_, "--resume", "--json"});
  EXPECT_EQ(j["stopped"], false);
  EXPECT_EQ(j["metadata"]["ran"], false);
  EXPECT_EQ(j["data"]["ran"], true);
  EXPECT_GT(j["data"]["checked"], 0);
  EXPECT_LE(j["data"]["checked"], (24 << 20) / 4096);  // from where it stopped (maybe the start)
  EXPECT_FALSE(std::filesystem::exists(image_ + ".scrub"));
}

}  // namespace
