// Randomized model test of the B+tree (testing/model_driver.h): checked against std::map and
// brute-force overlap search, validated and leak-checked after every commit. One file, two
// configurations: the short run for CI (in btree_test) and, built with DAXFS_BTREE_MODEL_LONG,
// the long run (btree_long_test, label "long": >= 10 million operations, not run in CI). Prints
// its seed; DAXFS_SEED=<seed> replays.
#include <gtest/gtest.h>

#include <random>

#include "btree/testing/model_driver.h"

namespace daxfs::btree::testing {
namespace {

// name, key words, value size, interval, key range, other words' range, ops, commit 1 in,
// phase length.
#ifndef DAXFS_BTREE_MODEL_LONG
const ModelConfig kConfigs[] = {
    {"k1_v8", 1, 8, false, 50000, 1, 60000, 300, 20000},
    {"k2_v24", 2, 24, false, 8000, 8, 60000, 300, 20000},
    {"k3_v0", 3, 0, false, 2000, 6, 60000, 300, 20000},
    {"k1_v200", 1, 200, false, 10000, 1, 70000, 200, 32000},
    {"k2_v1024", 2, 1024, false, 5000, 4, 30000, 200, 10000},
    {"interval_k1_v8", 1, 8, true, 200000, 1, 50000, 300, 17000},
    {"interval_k2_v24", 2, 24, true, 40000, 4, 50000, 300, 17000},
    {"interval_k3_v200", 3, 200, true, 40000, 3, 40000, 200, 15000},
    {"interval_k4_v1024", 4, 1024, true, 40000, 2, 25000, 200, 8000},
};
#define DAXFS_MODEL_SUITE BTreeModelTest
#else
// Larger trees and many more operations: 11.5 million in all, about 2 minutes of CPU in a
// Release build.
const ModelConfig kConfigs[] = {
    {"k1_v8", 1, 8, false, 2000000, 1, 2000000, 2000, 500000},
    {"k2_v24", 2, 24, false, 200000, 16, 1500000, 1000, 300000},
    {"k3_v0", 3, 0, false, 50000, 8, 1500000, 1000, 300000},
    {"k1_v200", 1, 200, false, 200000, 1, 1000000, 1000, 200000},
    {"k2_v1024", 2, 1024, false, 100000, 4, 500000, 1000, 100000},
    {"interval_k1_v8", 1, 8, true, 10000000, 1, 1500000, 1000, 300000},
    {"interval_k2_v24", 2, 24, true, 1000000, 8, 1500000, 1000, 300000},
    {"interval_k3_v200", 3, 200, true, 1000000, 4, 1000000, 1000, 200000},
    {"interval_k4_v1024", 4, 1024, true, 100000, 2, 1000000, 1500, 200000},
};
#define DAXFS_MODEL_SUITE BTreeLongTest
#endif

class DAXFS_MODEL_SUITE : public ::testing::TestWithParam<ModelConfig> {};

TEST_P(DAXFS_MODEL_SUITE, MatchesStdMap) { RunModel(GetParam(), std::random_device{}()); }

INSTANTIATE_TEST_SUITE_P(Configs, DAXFS_MODEL_SUITE, ::testing::ValuesIn(kConfigs), PrintConfig);

}  // namespace
}  // namespace daxfs::btree::testing
