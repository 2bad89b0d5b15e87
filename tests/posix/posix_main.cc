// posix_test's main: checks $DAXFS_POSIX_DIR, prints what was probed about the filesystem under
// test, runs the suite, and lists every skipped test with its reason (skips are not passes).
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "posix_env.h"

namespace {

// Collects each skipped test and the message GTEST_SKIP gave, and prints them at the end.
class SkipReport : public ::testing::EmptyTestEventListener {
 public:
  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (r.skipped()) reason_ = r.message();
  }
  void OnTestEnd(const ::testing::TestInfo& info) override {
    if (info.result()->Skipped()) {
      skipped_.push_back(std::string(info.test_suite_name()) + "." + info.name() + ": " + reason_);
    }
    reason_.clear();
  }
  void OnTestProgramEnd(const ::testing::UnitTest& unit) override {
    std::printf("posix_test on %s (%s): %d passed, %d failed, %zu skipped\n",
                posix::RootDir().c_str(), posix::GetProbes().fs_name.c_str(),
                unit.successful_test_count(), unit.failed_test_count(), skipped_.size());
    for (const std::string& s : skipped_) std::printf("  skipped %s\n", s.c_str());
  }

 private:
  std::string reason_;
  std::vector<std::string> skipped_;
};

const char* Yes(const posix::Feature& f) { return f.ok ? "yes" : "no"; }

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  umask(022);
  const std::string& dir = posix::RootDir();
  struct stat st;
  if (dir.empty() || stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    std::fprintf(stderr,
                 "posix_test: set DAXFS_POSIX_DIR to an existing directory on the filesystem "
                 "under test (got \"%s\")\n",
                 dir.c_str());
    return 2;
  }
  const posix::Probes& p = posix::GetProbes();
  const std::string& why = posix::WhyNoOtherUsers();
  std::printf("posix_test: %s on %s, uid %d; other dir: %s\n", dir.c_str(), p.fs_name.c_str(),
              int(geteuid()),
              posix::OtherDir().empty() ? "(none: DAXFS_POSIX_OTHER_DIR unset)"
                                        : posix::OtherDir().c_str());
  std::printf(
      "  probed: user xattrs %s, trusted xattrs %s (on symlinks %s), SEEK_HOLE %s, ZERO_RANGE "
      "%s, atime %s, devices %s, checks as uid 65534 %s%s%s\n",
      Yes(p.user_xattr), Yes(p.trusted_xattr), Yes(p.trusted_xattr_link), Yes(p.holes),
      Yes(p.zero_range), Yes(p.atime), Yes(p.devices), why.empty() ? "yes" : "no",
      why.empty() ? "" : ": ", why.c_str());
  ::testing::UnitTest::GetInstance()->listeners().Append(new SkipReport);
  return RUN_ALL_TESTS();
}
