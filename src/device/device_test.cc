// Tests for OpenDevice, CreateDeviceFile and the memory device, on files in /dev/shm.
// Uses only the device layer's public interface (plus POSIX calls to inspect the files).
#include "device/device.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <sys/mman.h>
#include <fstream>
#include <sstream>

namespace daxfs::device {
namespace {

constexpr uint64_t kMiB = 1 << 20;

bool FileExists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

// A fresh path in /dev/shm per test, removed at the end.
class DeviceFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = "/dev/shm/daxfs-device_test-" + std::to_string(getpid()) + "-" + info->name() + ".img";
    unlink(path_.c_str());
  }
  void TearDown() override {
    unlink(path_.c_str());
    unlink((path_ + ".badblocks").c_str());
  }

  // Makes a file of exactly `size` bytes without going through CreateDeviceFile.
  void MakeRawFile(uint64_t size) {
    int fd = open(path_.c_str(), O_RDWR | O_CREAT | O_EXCL, 0644);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    ASSERT_EQ(ftruncate(fd, static_cast<off_t>(size)), 0);
    close(fd);
  }

  std::unique_ptr<Device> MustOpen(const OpenOptions& options = {}) {
    auto device = OpenDevice(path_, options);
    EXPECT_TRUE(device.ok()) << device.status().ToString();
    return device.ok() ? std::move(device).value() : nullptr;
  }

  std::string path_;
};

TEST_F(DeviceFileTest, CreateOpenWritePersistReopenSeesData) {
  ASSERT_TRUE(CreateDeviceFile(path_, kMiB).ok());
  const char kData[] = "hello, pmem";
  {
    auto device = MustOpen();
    ASSERT_NE(device, nullptr);
    EXPECT_EQ(device->size(), kMiB);
    EXPECT_EQ(device->base()[5000], 0);
    std::memcpy(device->At(5000), kData, sizeof kData);
    EXPECT_TRUE(device->Persist(5000, sizeof kData).ok());
  }
  auto device = MustOpen();
  ASSERT_NE(device, nullptr);
  EXPECT_EQ(std::memcmp(device->At(5000), kData, sizeof kData), 0);
}

TEST_F(DeviceFileTest, StoresReachTheFileThroughFd) {
  ASSERT_TRUE(CreateDeviceFile(path_, 64 * 1024).ok());
  auto device = MustOpen();
  ASSERT_NE(device, nullptr);
  ASSERT_GE(device->Fd(), 0);
  std::memcpy(device->At(8192), "abcd", 4);
  ASSERT_TRUE(device->Persist(8192, 4).ok());
  char buffer[4] = {};
  ASSERT_EQ(pread(device->Fd(), buffer, 4, 8192), 4);
  EXPECT_EQ(std::memcmp(buffer, "abcd", 4), 0);
}

TEST_F(DeviceFileTest, ShmFileIsEmulatedPmem) {
  ASSERT_TRUE(CreateDeviceFile(path_, kMiB).ok());
  auto device = MustOpen();
  ASSERT_NE(device, nullptr);
  EXPECT_FALSE(device->IsPmem());
  EXPECT_EQ(device->Describe(), path_ + " (emulated pmem, msync)");
}

// libpmem2's test hook PMEM2_FORCE_GRANULARITY makes a /dev/shm file look like real pmem, which
// exercises the libpmem2 mapping and its flush/drain functions.
class ForcedGranularity {
 public:
  explicit ForcedGranularity(const char* granularity) {
    setenv("PMEM2_FORCE_GRANULARITY", granularity, 1);
  }
  ~ForcedGranularity() { unsetenv("PMEM2_FORCE_GRANULARITY"); }
};

TEST_F(DeviceFileTest, CacheLineGranularityIsPmem) {
  ASSERT_TRUE(CreateDeviceFile(path_, kMiB).ok());
  ForcedGranularity forced("CACHE_LINE");
  {
    auto device = MustOpen({.require_pmem = true});
    ASSERT_NE(device, nullptr);
    EXPECT_TRUE(device->IsPmem());
    EXPECT_GE(device->Fd(), 0);
    EXPECT_EQ(device->Describe(), path_ + " (persistent memory, cache-line flush)");
    std::memcpy(device->At(kMiB - 4), "tail", 4);
    EXPECT_TRUE(device->Persist(kMiB - 4, 4).ok());
    EXPECT_EQ(device->Flush(kMiB - 4, 5).code(), EINVAL);
    EXPECT_EQ(OpenDevice(path_).status().code(), EBUSY);
  }
  auto device = MustOpen({.read_only = true});
  ASSERT_NE(device, nullptr);
  EXPECT_TRUE(device->IsPmem());
  EXPECT_EQ(std::memcmp(device->At(kMiB - 4), "tail", 4), 0);
  EXPECT_EQ(device->Flush(0, 64).code(), EROFS);
}

TEST_F(DeviceFileTest, ByteGranularityIsEadrPmem) {
  ASSERT_TRUE(CreateDeviceFile(path_, kMiB).ok());
  ForcedGranularity forced("BYTE");
  auto device = MustOpen();
  ASSERT_NE(device, nullptr);
  EXPECT_TRUE(device->IsPmem());
  EXPECT_EQ(device->Describe(), path_ + " (persistent memory, eADR)");
  EXPECT_TRUE(device->Persist(0, 64).ok());
}

TEST_F(DeviceFileTest, RequirePmemRefusesShmFile) {
  ASSERT_TRUE(CreateDeviceFile(path_, kMiB).ok());
  auto device = OpenDevice(path_, {.require_pmem = true});
  ASSERT_FALSE(device.ok());
  EXPECT_EQ(device.status().code(), EOPNOTSUPP);
  EXPECT_NE(device.status().message().find(path_), std::string::npos);
  // The refused open released its lock.
  EXPECT_NE(MustOpen(), nullptr);
}

TEST_F(DeviceFileTest, SecondOpenIsBusyUntilTheFirstCloses) {
  ASSERT_TRUE(CreateDeviceFile(path_, kMiB).ok());
  auto first = MustOpen();
  ASSERT_NE(first, nullptr);
  for (bool read_only : {false, true}) {
    auto second = OpenDevice(path_, {.read_only = read_only});
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.status().code(), EBUSY);
    EXPECT_EQ(second.status().message(), path_ + ": device is in use");
  }
  first.reset();
  EXPECT_NE(MustOpen(), nullptr);
}

TEST_F(DeviceFileTest, ReadersShareButExcludeAWriter) {
  ASSERT_TRUE(CreateDeviceFile(path_, kMiB).ok());
  auto reader1 = MustOpen({.read_only = true});
  auto reader2 = MustOpen({.read_only = true});
  ASSERT_NE(reader1, nullptr);
  ASSERT_NE(reader2, nullptr);
  auto writer = OpenDevice(path_);
  ASSERT_FALSE(writer.ok());
  EXPECT_EQ(writer.status().code(), EBUSY);
}

TEST_F(DeviceFileTest, ReadOnlyDeviceRefusesFlushAndDrain) {
  ASSERT_TRUE(CreateDeviceFile(path_, kMiB).ok());
  {
    auto writer = MustOpen();
    ASSERT_NE(writer, nullptr);
    writer->base()[100] = 42;
    ASSERT_TRUE(writer->Persist(100, 1).ok());
  }
  auto device = MustOpen({.read_only = true});
  ASSERT_NE(device, nullptr);
  EXPECT_EQ(device->base()[100], 42);
  EXPECT_EQ(device->Flush(0, 64).code(), EROFS);
  EXPECT_EQ(device->Drain().code(), EROFS);
  EXPECT_EQ(device->Persist(0, 64).code(), EROFS);
  EXPECT_NE(device->Describe().find("read-only"), std::string::npos);
}

TEST_F(DeviceFileTest, FlushChecksBounds) {
  ASSERT_TRUE(CreateDeviceFile(path_, kMiB).ok());
  auto device = MustOpen();
  ASSERT_NE(device, nullptr);
  EXPECT_TRUE(device->Flush(kMiB - 1, 1).ok());
  EXPECT_TRUE(device->Flush(kMiB, 0).ok());
  EXPECT_TRUE(device->Flush(0, kMiB).ok());
  EXPECT_TRUE(device->Flush(4095, 2).ok());  // crosses a page boundary
  EXPECT_EQ(device->Flush(kMiB - 1, 2).code(), EINVAL);
  EXPECT_EQ(device->Flush(kMiB + 1, 0).code(), EINVAL);
  EXPECT_EQ(device->Flush(1, UINT64_MAX).code(), EINVAL);
  EXPECT_TRUE(device->Drain().ok());
}

TEST_F(DeviceFileTest, MissingPathIsNotFound) {
  auto device = OpenDevice(path_);
  ASSERT_FALSE(device.ok());
  EXPECT_EQ(device.status().code(), ENOENT);
  EXPECT_EQ(device.status().message(), path_ + ": No such file or directory");
}

TEST_F(DeviceFileTest, DirectoryIsRefused) {
  ASSERT_EQ(mkdir(path_.c_str(), 0755), 0);
  for (bool read_only : {false, true}) {
    auto device = OpenDevice(path_, {.read_only = read_only});
    ASSERT_FALSE(device.ok());
    EXPECT_EQ(device.status().code(), EISDIR);
    EXPECT_NE(device.status().message().find(path_), std::string::npos);
  }
  rmdir(path_.c_str());
}

TEST_F(DeviceFileTest, SizeNotAMultipleOf4096IsInvalid) {
  MakeRawFile(4096 + 1);
  auto device = OpenDevice(path_);
  ASSERT_FALSE(device.ok());
  EXPECT_EQ(device.status().code(), EINVAL);
  EXPECT_NE(device.status().message().find(path_), std::string::npos);
  EXPECT_NE(device.status().message().find("4097"), std::string::npos);
}

TEST_F(DeviceFileTest, EmptyFileIsInvalid) {
  MakeRawFile(0);
  auto device = OpenDevice(path_);
  ASSERT_FALSE(device.ok());
  EXPECT_EQ(device.status().code(), EINVAL);
  EXPECT_NE(device.status().message().find("size 0"), std::string::npos);
}

TEST_F(DeviceFileTest, CreateRefusesBadSizes) {
  for (uint64_t size : {uint64_t{0}, uint64_t{4095}, uint64_t{4097}}) {
    Status status = CreateDeviceFile(path_, size);
    EXPECT_EQ(status.code(), EINVAL) << size;
    EXPECT_NE(status.message().find(path_), std::string::npos);
    EXPECT_FALSE(FileExists(path_));
  }
}

TEST_F(DeviceFileTest, CreateRefusesExistingFileUnlessOverwrite) {
  ASSERT_TRUE(CreateDeviceFile(path_, kMiB).ok());
  {
    auto device = MustOpen();
    ASSERT_NE(device, nullptr);
    device->base()[0] = 7;
    ASSERT_TRUE(device->Persist(0, 1).ok());
  }
  Status status = CreateDeviceFile(path_, kMiB);
  EXPECT_EQ(status.code(), EEXIST);
  EXPECT_EQ(status.message(), path_ + ": File exists");

  ASSERT_TRUE(CreateDeviceFile(path_, 2 * kMiB, /*overwrite=*/true).ok());
  auto device = MustOpen();
  ASSERT_NE(device, nullptr);
  EXPECT_EQ(device->size(), 2 * kMiB);
  EXPECT_EQ(device->base()[0], 0);
}

TEST_F(DeviceFileTest, OverwriteRefusesADeviceInUse) {
  ASSERT_TRUE(CreateDeviceFile(path_, kMiB).ok());
  auto device = MustOpen();
  ASSERT_NE(device, nullptr);
  device->base()[10] = 9;
  Status status = CreateDeviceFile(path_, 2 * kMiB, /*overwrite=*/true);
  EXPECT_EQ(status.code(), EBUSY);
  struct stat st;
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), kMiB);
  EXPECT_EQ(device->base()[10], 9);
}

TEST_F(DeviceFileTest, CreateReportsNoSpaceAndLeavesNoFile) {
  struct statvfs fs;
  ASSERT_EQ(statvfs("/dev/shm", &fs), 0);
  if (fs.f_blocks == 0) GTEST_SKIP() << "/dev/shm has no size limit";
  uint64_t too_big = (static_cast<uint64_t>(fs.f_blocks) * fs.f_frsize * 2 + 4095) / 4096 * 4096;
  Status status = CreateDeviceFile(path_, too_big);
  EXPECT_EQ(status.code(), ENOSPC) << status.ToString();
  EXPECT_NE(status.message().find(path_), std::string::npos);
  EXPECT_FALSE(FileExists(path_));
}

TEST(MemoryDeviceTest, StartsZeroed) {
  auto device = NewMemoryDevice(64 * 1024);
  EXPECT_EQ(device->size(), 64u * 1024);
  EXPECT_FALSE(device->IsPmem());
  EXPECT_GE(device->Fd(), 0);  // a memfd, so that ranges can be mapped again
  EXPECT_EQ(device->Describe(), "memory device (65536 bytes)");
  for (uint64_t i = 0; i < device->size(); ++i) ASSERT_EQ(device->base()[i], 0) << i;
  device->base()[device->size() - 1] = 1;
  EXPECT_TRUE(device->Persist(0, device->size()).ok());
}

TEST(MemoryDeviceTest, CopiesImageAndPadsWithZeros) {
  std::string image(5000, '\x5a');
  auto device = NewMemoryDevice(image);
  ASSERT_EQ(device->size(), 8192u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(device->base()), 5000), image);
  for (uint64_t i = 5000; i < 8192; ++i) ASSERT_EQ(device->base()[i], 0) << i;
}

TEST(MemoryDeviceTest, ImageOfExactSizeIsKept) {
  std::string image(8192, '\0');
  image[8191] = 'z';
  auto device = NewMemoryDevice(image);
  ASSERT_EQ(device->size(), 8192u);
  EXPECT_EQ(device->base()[8191], 'z');
}

TEST(MemoryDeviceTest, FlushChecksBounds) {
  auto device = NewMemoryDevice(4096);
  EXPECT_TRUE(device->Flush(0, 4096).ok());
  EXPECT_EQ(device->Flush(4000, 100).code(), EINVAL);
  EXPECT_TRUE(device->Drain().ok());
}

// ---- Poison lists.

TEST(PoisonListTest, InjectedRangesAreSortedAndMerged) {
  auto dev = NewMemoryDevice(kMiB);
  EXPECT_TRUE(dev->BadRanges().empty());
  EXPECT_FALSE(dev->IsBad(0, kMiB));
  ASSERT_TRUE(dev->InjectPoison(8192, 100).ok());
  ASSERT_TRUE(dev->InjectPoison(4096, 10).ok());
  ASSERT_TRUE(dev->InjectPoison(20000, 5).ok());
  EXPECT_EQ(dev->BadRanges(), (std::vector<BadRange>{{4096, 10}, {8192, 100}, {20000, 5}}));
  ASSERT_TRUE(dev->InjectPoison(4100, 8192 - 4100).ok());  // bridges the first two
  EXPECT_EQ(dev->BadRanges(), (std::vector<BadRange>{{4096, 4196}, {20000, 5}}));
  ASSERT_TRUE(dev->InjectPoison(19000, 2000).ok());  // swallows the third
  EXPECT_EQ(dev->BadRanges(), (std::vector<BadRange>{{4096, 4196}, {19000, 2000}}));
}

TEST(PoisonListTest, IsBadFindsEveryOverlapAndNothingElse) {
  auto dev = NewMemoryDevice(kMiB);
  ASSERT_TRUE(dev->InjectPoison(4096, 4096).ok());
  ASSERT_TRUE(dev->InjectPoison(65536, 1).ok());
  EXPECT_FALSE(dev->IsBad(0, 4096));
  EXPECT_TRUE(dev->IsBad(0, 4097));
  EXPECT_TRUE(dev->IsBad(8191, 1));
  EXPECT_FALSE(dev->IsBad(8192, 65536 - 8192));
  EXPECT_TRUE(dev->IsBad(8192, 65536 - 8192 + 1));
  EXPECT_TRUE(dev->IsBad(65536, 1));
  EXPECT_FALSE(dev->IsBad(65537, 4096));
  EXPECT_FALSE(dev->IsBad(4096, 0));
  EXPECT_TRUE(dev->IsBad(0, kMiB));
}

TEST(PoisonListTest, InjectRefusesEmptyAndOutOfRange) {
  auto dev = NewMemoryDevice(kMiB);
  EXPECT_EQ(dev->InjectPoison(0, 0).code(), EINVAL);
  EXPECT_EQ(dev->InjectPoison(kMiB, 1).code(), EINVAL);
  EXPECT_EQ(dev->InjectPoison(kMiB - 1, 2).code(), EINVAL);
  EXPECT_EQ(dev->InjectPoison(1, UINT64_MAX).code(), EINVAL);
  EXPECT_TRUE(dev->BadRanges().empty());
  EXPECT_TRUE(dev->InjectPoison(kMiB - 1, 1).ok());
}

TEST(MemoryDeviceTest, FdMapsTheSameMemory) {
  auto dev = NewMemoryDevice(64 * 1024);
  ASSERT_GE(dev->Fd(), 0);
  dev->base()[4096 + 7] = 0x5a;
  void* again = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, dev->Fd(), 4096);
  ASSERT_NE(again, MAP_FAILED) << std::strerror(errno);
  EXPECT_EQ(static_cast<uint8_t*>(again)[7], 0x5a);
  static_cast<uint8_t*>(again)[8] = 0xa5;
  EXPECT_EQ(dev->base()[4096 + 8], 0xa5);
  munmap(again, 4096);
}

TEST_F(DeviceFileTest, InjectedPoisonIsKeptBesideTheFileAndReloaded) {
  ASSERT_TRUE(CreateDeviceFile(path_, kMiB).ok());
  {
    auto dev = OpenDevice(path_);
    ASSERT_TRUE(dev.ok()) << dev.status().ToString();
    EXPECT_TRUE((*dev)->BadRanges().empty());
    ASSERT_TRUE((*dev)->InjectPoison(12288, 4096).ok());
    ASSERT_TRUE((*dev)->InjectPoison(100, 1).ok());
    EXPECT_EQ((*dev)->InjectPoison(kMiB, 1).code(), EINVAL);
  }
  std::ifstream in(path_ + ".badblocks");
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), "100 1\n12288 4096\n");
  auto dev = OpenDevice(path_);
  ASSERT_TRUE(dev.ok()) << dev.status().ToString();
  EXPECT_EQ((*dev)->BadRanges(), (std::vector<BadRange>{{100, 1}, {12288, 4096}}));
  EXPECT_TRUE((*dev)->IsBad(12288 + 4095, 1));
  EXPECT_FALSE(FileExists(path_ + ".badblocks.tmp"));
}

TEST_F(DeviceFileTest, MalformedBadBlockFileNamesFileAndLine) {
  ASSERT_TRUE(CreateDeviceFile(path_, kMiB).ok());
  {
    std::ofstream out(path_ + ".badblocks");
    out << "# comment\n4096 4096\n\n8192 x\n";
  }
  auto dev = OpenDevice(path_);
  ASSERT_FALSE(dev.ok());
  EXPECT_EQ(dev.status().code(), EINVAL);
  EXPECT_NE(dev.status().message().find(path_ + ".badblocks:4"), std::string::npos)
      << dev.status().ToString();
}

TEST_F(DeviceFileTest, BadBlockFileWithZeroLengthIsRefused) {
  ASSERT_TRUE(CreateDeviceFile(path_, kMiB).ok());
  {
    std::ofstream out(path_ + ".badblocks");
    out << "4096 0\n";
  }
  auto dev = OpenDevice(path_);
  ASSERT_FALSE(dev.ok());
  EXPECT_NE(dev.status().message().find(".badblocks:1"), std::string::npos);
}

}  // namespace
}  // namespace daxfs::device
