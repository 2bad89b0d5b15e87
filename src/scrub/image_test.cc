#include "daxfs/image.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <unistd.h>

#include <fstream>

namespace daxfs {
namespace {

class ImageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = "/dev/shm/daxfs-image-test-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    ::unlink(path_.c_str());
  }
  void TearDown() override { ::unlink(path_.c_str()); }
  std::string path_;
};

TEST_F(ImageTest, ParseSize) {
  EXPECT_EQ(*ParseSize("4096"), 4096u);
  EXPECT_EQ(*ParseSize("64K"), 64u << 10);
  EXPECT_EQ(*ParseSize("256M"), 256u << 20);
  EXPECT_EQ(*ParseSize("1G"), 1ULL << 30);
  EXPECT_EQ(*ParseSize("2TiB"), 2ULL << 40);
  EXPECT_EQ(ParseSize("").status().code(), EINVAL);
  EXPECT_EQ(ParseSize("12Q").status().code(), EINVAL);
  EXPECT_EQ(ParseSize("-1").status().code(), EINVAL);
  EXPECT_EQ(ParseSize("99999999999999999999").status().code(), EINVAL);
  EXPECT_EQ(ParseSize("17179869184T").status().code(), EINVAL);
}

TEST_F(ImageTest, MkfsInspectCheck) {
  ASSERT_TRUE(Mkfs(path_, {.create_size = 64 << 20, .label = "demo"}).ok());
  Result<ImageInfo> info = Inspect(path_);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->device_size, 64u << 20);
  EXPECT_EQ(info->label, "demo");
  EXPECT_TRUE(info->clean);
  EXPECT_EQ(info->chunk_size, 4u << 20);
  EXPECT_EQ(info->metadata_chunks, 1u);
  EXPECT_EQ(info->metadata_twin_chunks, 1u);  // twins are on by default
  EXPECT_NE(std::find(info->features.begin(), info->features.end(), "metadup"),
            info->features.end());
  EXPECT_EQ(info->chunks.size(), 16u);
  EXPECT_EQ(info->chunks[0].type, "METADATA");
  EXPECT_EQ(info->chunks[1].type, "METADATA_TWIN");
  EXPECT_EQ(info->chunks[0].partner, 1);
  EXPECT_EQ(info->chunks[1].partner, 0);
  EXPECT_EQ(info->chunks[2].partner, -1);
  ASSERT_FALSE(info->trees.empty());
  EXPECT_EQ(info->trees[0].name, "chunks");
  EXPECT_EQ(info->trees[0].records, 2u);  // chunk 0 and its twin
  Result<CheckResult> check = Check(path_);
  ASSERT_TRUE(check.ok());
  EXPECT_TRUE(check->ok());
}

TEST_F(ImageTest, TuneAddsMetadataTwinsToAnImageWithout) {
  ASSERT_TRUE(Mkfs(path_, {.create_size = 64 << 20, .metadata_dup = false}).ok());
  Result<ImageInfo> info = Inspect(path_);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->metadata_twin_chunks, 0u);
  EXPECT_EQ(std::find(info->features.begin(), info->features.end(), "metadup"),
            info->features.end());
  {  // some metadata to copy
    Result<std::unique_ptr<Filesystem>> fs = Filesystem::Open(path_);
    ASSERT_TRUE(fs.ok()) << fs.status().ToString();
    for (int i = 0; i < 300; ++i) {
      ASSERT_TRUE((*fs)->Create(kRootIno, "f" + std::to_string(i), 0644).ok());
    }
    ASSERT_TRUE((*fs)->Unmount().ok());
  }
  EXPECT_EQ(Tune(path_, {}).status().code(), EINVAL);
  Result<TuneReport> tuned = Tune(path_, {.metadata_dup = true});
  ASSERT_TRUE(tuned.ok()) << tuned.status().ToString();
  ASSERT_EQ(tuned->changes.size(), 1u);
  EXPECT_NE(tuned->changes[0].find("metadata twins on"), std::string::npos) << tuned->changes[0];
  info = Inspect(path_);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->metadata_twin_chunks, info->metadata_chunks);
  EXPECT_NE(std::find(info->features.begin(), info->features.end(), "metadup"),
            info->features.end());
  EXPECT_TRUE(info->clean);
  Result<CheckResult> check = Check(path_);
  ASSERT_TRUE(check.ok()) << check.status().ToString();
  EXPECT_TRUE(check->ok()) << (check->problems.empty() ? "" : check->problems[0]);
  Status again = Tune(path_, {.metadata_dup = true}).status();
  EXPECT_EQ(again.code(), EEXIST) << again.ToString();
  {  // the files are all there
    Result<std::unique_ptr<Filesystem>> fs = Filesystem::Open(path_, {.read_only = true});
    ASSERT_TRUE(fs.ok());
    EXPECT_TRUE((*fs)->Lookup(kRootIno, "f299").ok());
  }
}

TEST_F(ImageTest, MkfsRefusesToClobberWithoutForce) {
  ASSERT_TRUE(Mkfs(path_, {.create_size = 4 << 20}).ok());
  Status s = Mkfs(path_, {});
  EXPECT_EQ(s.code(), EEXIST);
  EXPECT_NE(s.message().find("--force"), std::string::npos);
  EXPECT_TRUE(Mkfs(path_, {.force = true}).ok());
}

TEST_F(ImageTest, BadInputsAreClearErrors) {
  EXPECT_EQ(Mkfs(path_, {}).code(), ENOENT);
  EXPECT_EQ(Mkfs(path_, {.create_size = 4097}).code(), EINVAL);
  EXPECT_EQ(access(path_.c_str(), F_OK), -1) << "a refused mkfs left a file behind";
  EXPECT_EQ(Mkfs(path_, {.create_size = 4 << 20, .chunk_size = 12345}).code(), EINVAL);
  EXPECT_EQ(access(path_.c_str(), F_OK), -1) << "a refused mkfs left a file behind";
  EXPECT_EQ(Inspect("/nonexistent/x.img").status().code(), ENOENT);
  {
    std::ofstream junk(path_);
    junk << std::string(1 << 20, 'j');
  }
  Result<ImageInfo> info = Inspect(path_);
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), EUCLEAN);
  EXPECT_NE(info.status().message().find("not a daxfs image"), std::string::npos);
  EXPECT_NE(info.status().message().find(path_), std::string::npos);
}

}  // namespace
}  // namespace daxfs
