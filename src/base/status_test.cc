#include "daxfs/status.h"

#include <gtest/gtest.h>

namespace daxfs {
namespace {

Result<int> Half(int x) {
  if (x % 2) return Status::Invalid("odd");
  return x / 2;
}

Status Quarter(int x, int* out) {
  ASSIGN_OR_RETURN(int h, Half(x));
  ASSIGN_OR_RETURN(*out, Half(h));
  return Status::Ok();
}

TEST(StatusTest, OkCarriesNoError) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), 0);
  EXPECT_EQ(s.ToString(), "ok");
}

TEST(StatusTest, ErrorsMapToErrno) {
  EXPECT_EQ(Status::NotFound("x").code(), ENOENT);
  EXPECT_EQ(Status::Corruption("x").code(), EUCLEAN);
  EXPECT_EQ(Status::NoSpace("x").code(), ENOSPC);
  EXPECT_EQ(Status::Busy("x").code(), EBUSY);
  EXPECT_TRUE(Status::Corruption("x").IsCorruption());
}

TEST(StatusTest, CopyAndContext) {
  Status a = Status::IoError("disk");
  Status b = a;
  EXPECT_EQ(b.code(), EIO);
  EXPECT_EQ(b.WithContext("superblock").message(), "superblock: disk");
  EXPECT_NE(a.ToString().find("Input/output error"), std::string::npos);
}

TEST(StatusTest, MacrosPropagate) {
  int out = 0;
  EXPECT_TRUE(Quarter(8, &out).ok());
  EXPECT_EQ(out, 2);
  Status s = Quarter(6, &out);
  EXPECT_EQ(s.code(), EINVAL);
}

TEST(StatusTest, ResultFromOkStatusIsAnError) {
  Result<int> r(Status::Ok());
  EXPECT_FALSE(r.ok());
}

}  // namespace
}  // namespace daxfs
