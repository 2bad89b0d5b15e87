// Test support: GoogleTest assertions on Status and Result<T> that print the error.
//   ASSERT_OK(expr) / EXPECT_OK(expr): expr (a Status or a Result) is ok.
//   EXPECT_ERRNO(expr, err): its errno code is `err`.
#pragma once

#include <gtest/gtest.h>

#include "daxfs/status.h"

namespace daxfs::testing {

inline const Status& StatusOf(const Status& s) { return s; }
template <typename T>
const Status& StatusOf(const Result<T>& r) {
  return r.status();
}
inline ::testing::AssertionResult IsOk(const Status& s) {
  if (s.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << s.ToString();
}
inline ::testing::AssertionResult HasErrno(const Status& s, int err) {
  if (s.code() == err) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "expected errno " << err << ", got " << s.ToString();
}

}  // namespace daxfs::testing

#define ASSERT_OK(expr) \
  ASSERT_TRUE(::daxfs::testing::IsOk(::daxfs::testing::StatusOf(expr))) << #expr
#define EXPECT_OK(expr) \
  EXPECT_TRUE(::daxfs::testing::IsOk(::daxfs::testing::StatusOf(expr))) << #expr
#define EXPECT_ERRNO(expr, err) \
  EXPECT_TRUE(::daxfs::testing::HasErrno(::daxfs::testing::StatusOf(expr), err)) << #expr
