// The `daxfs` command: a table of subcommands, each taking the image or device first
// ("daxfs <command> IMAGE [args]"). Errors print as "daxfs: <command>: <path>: <reason>", exit 1;
// usage errors exit 2. The subcommands live in commands_*.cc and use only include/daxfs/.
#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "cli.h"

namespace daxfs::cli {
namespace {

const Command kCommands[] = {
    {"mkfs", "Make a new, empty filesystem (creating the file if SIZE is given)",
     "daxfs mkfs pool.img 1G", SetupMkfs},
    {"tune", "Change features of an existing image (add metadata twins)",
     "daxfs tune pool.img --metadata-dup", SetupTune},
    {"info", "Show the superblock, features, geometry, usage and trees", "daxfs info pool.img",
     SetupInfo},
    {"df", "Show space and inode usage", "daxfs df pool.img", SetupDf},
    {"check", "Check the consistency of every structure (read-only)", "daxfs check pool.img",
     SetupCheck},
    {"ls", "List directories, or show files", "daxfs ls pool.img -l /docs", SetupLs},
    {"stat", "Show a file's attributes", "daxfs stat pool.img /docs/notes.txt", SetupStat},
    {"mkdir", "Make directories", "daxfs mkdir pool.img -p /docs/2024", SetupMkdir},
    {"rm", "Remove files and symlinks, or directories with -r", "daxfs rm pool.img -r /docs",
     SetupRm},
    {"rmdir", "Remove empty directories", "daxfs rmdir pool.img /docs/2024", SetupRmdir},
    {"mv", "Rename or move a file or directory", "daxfs mv pool.img /notes.txt /docs", SetupMv},
    {"ln", "Make a hard link, or a symbolic link with -s",
     "daxfs ln pool.img -s /docs/notes.txt /notes", SetupLn},
    {"put", "Copy a host file into the image", "daxfs put pool.img notes.txt /docs/notes.txt",
     SetupPut},
    {"get", "Copy a file out of the image to a host file",
     "daxfs get pool.img /docs/notes.txt notes.txt", SetupGet},
    {"cat", "Print files", "daxfs cat pool.img /docs/notes.txt", SetupCat},
    {"write", "Write a byte pattern or text at an offset",
     "daxfs write pool.img /f --offset 1M --length 64K --pattern 0xcd", SetupWrite},
    {"truncate", "Set a file's size", "daxfs truncate pool.img /f 4M", SetupTruncate},
    {"punch", "Punch a hole: free a range, keep the size",
     "daxfs punch pool.img /f --offset 64K --length 64K", SetupPunch},
    {"fallocate", "Allocate a range (unwritten blocks that read as zeros)",
     "daxfs fallocate pool.img /f --offset 0 --length 1M", SetupFallocate},
    {"bmap", "Show a file's extents: file range to device range, holes, flags",
     "daxfs bmap pool.img /f", SetupBmap},
    {"reflink", "Clone a file or a range: the copy shares the source's blocks",
     "daxfs reflink pool.img /f /f.copy", SetupReflink},
    {"dedupe", "Share a range between two files if their bytes are equal",
     "daxfs dedupe pool.img /a /b --length 1M", SetupDedupe},
    {"unshare", "Give a file private copies of its shared blocks", "daxfs unshare pool.img /f",
     SetupUnshare},
    {"fsmap", "Show who owns device ranges (every owner of shared blocks)",
     "daxfs fsmap pool.img -d 0 64M", SetupFsmap},
    {"repair", "Rebuild the reverse map and refcounts from the extent maps (offline)",
     "daxfs repair pool.img", SetupRepair},
    {"scrub",
     "Read everything: both copies of the metadata, the index cross-checks, every data block; "
     "repair from twins, route bad blocks (Ctrl-C stops, --resume goes on)",
     "daxfs scrub pool.img --max-rate 500M", SetupScrub},
    {"inject-error", "Mark device bytes bad (emulated poison) and route the failure",
     "daxfs inject-error pool.img --at /f:0", SetupInjectError},
    {"errors", "List lost file ranges, retired space and metadata damage", "daxfs errors pool.img",
     SetupErrors},
    {"map", "Map files directly (DAX); optionally inject an error under the mappings",
     "daxfs map pool.img /a /b --inject-at /a:0 --load", SetupMap},
    {"serve", "Serve the image to other processes over a Unix socket (direct maps, no FUSE)",
     "daxfs serve pool.img --socket /run/daxfs/pool.sock", SetupServe},
    {"mount", "Mount the image on a directory (FUSE) so every program can use it",
     "daxfs mount pool.img /mnt/pool -o commit=1", SetupMount},
    {"umount", "Unmount a mounted image (takes the mount point) and wait until it is clean",
     "daxfs umount /mnt/pool", SetupUmount},
};

// CLI11's usage errors in the house format: "daxfs: <command>: <what is wrong>".
std::string UsageError(const CLI::App* app, const CLI::Error& e) {
  std::vector<CLI::App*> chosen = app->get_subcommands();
  std::string command = chosen.empty() ? "" : chosen[0]->get_name() + ": ";
  std::string help = chosen.empty() ? "daxfs --help" : "daxfs " + chosen[0]->get_name() + " --help";
  return fmt::format("daxfs: {}{}\nRun '{}' for more information.\n", command, e.what(), help);
}

bool IsCommand(std::string_view name) {
  for (const Command& c : kCommands) {
    if (name == c.name) return true;
  }
  return false;
}

int Main(int argc, char** argv) {
  CLI::App app{
      "daxfs: a filesystem engine for persistent and byte-addressable memory.\n"
      "Every command takes the image or device first: daxfs <command> IMAGE [args].\n"
      "Paths inside the image are absolute. Errors: 'daxfs: <command>: <path>: <reason>', exit 1;\n"
      "usage errors exit 2. 'daxfs <command> --help' describes each command.",
      "daxfs"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "daxfs 0.1.0");
  app.failure_message(UsageError);

  std::vector<std::pair<CLI::App*, Runner>> runners;
  for (const Command& c : kCommands) {
    CLI::App* sub = app.add_subcommand(c.name, c.help);
    sub->footer(fmt::format("Example: {}", c.example));
    runners.emplace_back(sub, c.setup(sub));
  }
  if (argc > 1 && argv[1][0] != '-' && !IsCommand(argv[1])) {
    fmt::print(stderr, "daxfs: '{}' is not a daxfs command\nRun 'daxfs --help' for the list.\n",
               argv[1]);
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  for (auto& [sub, run] : runners) {
    if (!sub->parsed()) continue;
    Reporter reporter(sub->get_name());
    Status status = run(reporter);
    if (!status.ok()) reporter.Error(status);
    return reporter.failed() ? 1 : 0;
  }
  return 2;
}

}  // namespace
}  // namespace daxfs::cli

int main(int argc, char** argv) { return daxfs::cli::Main(argc, argv); }
