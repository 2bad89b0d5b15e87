// daxfs B+tree vs LMDB, in one run, both on files in /dev/shm with the same durability (each
// commit durable on return: daxfs msync of the new nodes and the superblock; LMDB's default
// sync). Workload: N random inserts of 16-byte keys and 24-byte values in transactions
// of T, then N random point lookups. Prints ops/s for each and the ratio daxfs/LMDB.
//   lmdb_compare [--n 1000000] [--txn 1000] [--dir /dev/shm] [--rounds 3]
#include <fmt/core.h>
#include <lmdb.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "base/coding.h"
#include "base/random.h"
#include "device/device.h"
#include "txn/pool.h"

namespace {

using Clock = std::chrono::steady_clock;
using daxfs::btree::Key;

struct Record {
  uint64_t k0, k1;
};

struct Result {
  double insert_ops = 0;
  double lookup_ops = 0;
};

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

void Fill(uint64_t i, uint8_t* value) {
  daxfs::base::EncodeU64(value, i);
  daxfs::base::EncodeU64(value + 8, ~i);
  daxfs::base::EncodeU64(value + 16, i * 31);
}

#define CHECK_OK(expr)                                                            \
  do {                                                                            \
    daxfs::Status s_ = (expr);                                                    \
    if (!s_.ok()) {                                                               \
      fmt::print(stderr, "{}:{}: {}\n", __FILE__, __LINE__, s_.ToString());       \
      std::exit(1);                                                               \
    }                                                                             \
  } while (0)

Result RunDaxfs(const std::string& dir, const std::vector<Record>& recs,
                const std::vector<uint32_t>& order, size_t txn_size) {
  std::string path = dir + "/daxfs-bench-" + std::to_string(getpid()) + ".img";
  ::unlink(path.c_str());
  CHECK_OK(daxfs::device::CreateDeviceFile(path, 1ULL << 30));
  auto dev = daxfs::device::OpenDevice(path);
  CHECK_OK(dev.status());
  auto pool = daxfs::txn::Pool::Format(dev->get(), {});
  CHECK_OK(pool.status());
  daxfs::btree::TreeSpec spec = daxfs::txn::ScratchSpec();
  Result r;
  uint8_t value[24];
  auto t0 = Clock::now();
  for (size_t i = 0; i < recs.size(); i += txn_size) {
    auto txn = (*pool)->BeginWrite();
    CHECK_OK(txn.status());
    auto tree = (*txn)->Tree(spec);
    CHECK_OK(tree.status());
    for (size_t j = i; j < std::min(recs.size(), i + txn_size); ++j) {
      Fill(j, value);
      CHECK_OK((*tree)->Insert(Key{{recs[j].k0, recs[j].k1}}, value));
    }
    CHECK_OK((*txn)->Commit());
  }
  auto t1 = Clock::now();
  auto view = (*pool)->BeginRead();
  auto tree = view->Tree(spec);
  CHECK_OK(tree.status());
  uint64_t found = 0;
  for (uint32_t idx : order) {
    auto got = tree->Get(Key{{recs[idx].k0, recs[idx].k1}}, value);
    found += got.ok() && *got && daxfs::base::DecodeU64(value) == idx;
  }
  auto t2 = Clock::now();
  if (found != recs.size()) {
    fmt::print(stderr, "daxfs: found {} of {} keys\n", found, recs.size());
    std::exit(1);
  }
  r.insert_ops = recs.size() / Seconds(t0, t1);
  r.lookup_ops = order.size() / Seconds(t1, t2);
  view.reset();
  pool->reset();
  dev->reset();
  ::unlink(path.c_str());
  return r;
}

#define MDB_CHECK(expr)                                                          \
  do {                                                                           \
    int rc_ = (expr);                                                            \
    if (rc_ != 0) {                                                              \
      fmt::print(stderr, "{}:{}: {}\n", __FILE__, __LINE__, mdb_strerror(rc_));  \
      std::exit(1);                                                              \
    }                                                                            \
  } while (0)

Result RunLmdb(const std::string& dir, const std::vector<Record>& recs,
               const std::vector<uint32_t>& order, size_t txn_size) {
  std::string path = dir + "/lmdb-bench-" + std::to_string(getpid());
  ::mkdir(path.c_str(), 0755);
  MDB_env* env;
  MDB_CHECK(mdb_env_create(&env));
  MDB_CHECK(mdb_env_set_mapsize(env, 1ULL << 30));
  MDB_CHECK(mdb_env_open(env, path.c_str(), 0, 0644));
  MDB_dbi dbi;
  {
    MDB_txn* txn;
    MDB_CHECK(mdb_txn_begin(env, nullptr, 0, &txn));
    MDB_CHECK(mdb_dbi_open(txn, nullptr, 0, &dbi));
    MDB_CHECK(mdb_txn_commit(txn));
  }
  Result r;
  uint8_t value[24];
  uint8_t key[16];
  auto t0 = Clock::now();
  for (size_t i = 0; i < recs.size(); i += txn_size) {
    MDB_txn* txn;
    MDB_CHECK(mdb_txn_begin(env, nullptr, 0, &txn));
    for (size_t j = i; j < std::min(recs.size(), i + txn_size); ++j) {
      // Big-endian keys so that LMDB's memcmp order equals daxfs's numeric order.
      uint64_t a = __builtin_bswap64(recs[j].k0), b = __builtin_bswap64(recs[j].k1);
      std::memcpy(key, &a, 8);
      std::memcpy(key + 8, &b, 8);
      Fill(j, value);
      MDB_val k{16, key}, v{24, value};
      MDB_CHECK(mdb_put(txn, dbi, &k, &v, MDB_NOOVERWRITE));
    }
    MDB_CHECK(mdb_txn_commit(txn));
  }
  auto t1 = Clock::now();
  MDB_txn* rtxn;
  MDB_CHECK(mdb_txn_begin(env, nullptr, MDB_RDONLY, &rtxn));
  uint64_t found = 0;
  for (uint32_t idx : order) {
    uint64_t a = __builtin_bswap64(recs[idx].k0), b = __builtin_bswap64(recs[idx].k1);
    std::memcpy(key, &a, 8);
    std::memcpy(key + 8, &b, 8);
    MDB_val k{16, key}, v;
    if (mdb_get(rtxn, dbi, &k, &v) == 0 && daxfs::base::DecodeU64(static_cast<uint8_t*>(v.mv_data)) == idx) {
      ++found;
    }
  }
  auto t2 = Clock::now();
  mdb_txn_abort(rtxn);
  if (found != recs.size()) {
    fmt::print(stderr, "lmdb: found {} of {} keys\n", found, recs.size());
    std::exit(1);
  }
  r.insert_ops = recs.size() / Seconds(t0, t1);
  r.lookup_ops = order.size() / Seconds(t1, t2);
  mdb_env_close(env);
  std::string cleanup = "rm -rf '" + path + "'";
  if (std::system(cleanup.c_str()) != 0) fmt::print(stderr, "could not remove {}\n", path);
  return r;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  size_t n = 1000000, txn = 1000, rounds = 3;
  std::string dir = "/dev/shm";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--n") n = std::stoull(argv[i + 1]);
    else if (a == "--txn") txn = std::stoull(argv[i + 1]);
    else if (a == "--dir") dir = argv[i + 1];
    else if (a == "--rounds") rounds = std::stoull(argv[i + 1]);
    else {
      fmt::print(stderr, "unknown option {}\n", a);
      return 2;
    }
  }
  daxfs::base::Random rng(42);
  std::vector<Record> recs(n);
  for (auto& r : recs) r = {rng.Next(), rng.Next()};
  std::vector<uint32_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = static_cast<uint32_t>(i);
  for (size_t i = n; i > 1; --i) std::swap(order[i - 1], order[rng.Uniform(i)]);

  std::vector<double> di, dl, li, ll;
  for (size_t round = 0; round < rounds; ++round) {
    Result d = RunDaxfs(dir, recs, order, txn);
    Result l = RunLmdb(dir, recs, order, txn);
    fmt::print("round {}: daxfs insert {:.0f}/s lookup {:.0f}/s | lmdb insert {:.0f}/s lookup {:.0f}/s\n",
               round + 1, d.insert_ops, d.lookup_ops, l.insert_ops, l.lookup_ops);
    di.push_back(d.insert_ops);
    dl.push_back(d.lookup_ops);
    li.push_back(l.insert_ops);
    ll.push_back(l.lookup_ops);
  }
  fmt::print("\n{} records, 16-byte keys, 24-byte values, transactions of {}, files in {}; median of {} rounds\n",
             n, txn, dir, rounds);
  fmt::print("{:<8} {:>14} {:>14} {:>8}\n", "", "daxfs ops/s", "LMDB ops/s", "ratio");
  fmt::print("{:<8} {:>14.0f} {:>14.0f} {:>7.2f}x\n", "insert", Median(di), Median(li), Median(di) / Median(li));
  fmt::print("{:<8} {:>14.0f} {:>14.0f} {:>7.2f}x\n", "lookup", Median(dl), Median(ll), Median(dl) / Median(ll));
  return 0;
}
