#pragma once
// A fixed log-linear histogram of microsecond values (HDR style), for dispatch's lag_us: how
// long after its planned instant each delivery's first request was handed to the transport.
// Values below 128 µs have a bucket each; above, every power of two [2^k, 2^(k+1)) is split into
// 64 equal buckets, so a bucket is at most 1/64 of its lower bound wide and its midpoint is
// within 1/128 (0.79%) of any value in it. Values up to 2^40 µs (12.7 days) are bucketed; larger
// ones count in the top bucket (their exact maximum is kept). 2,240 four-byte counters, about
// 9 KB, allocated with the object: record() is a few integer operations and one increment, no
// allocation and no lock (the owner is one thread; merge() sums histograms afterwards).
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>

#include "domain/types.hpp"

namespace daybreak {

/// What lag_us publishes: n, the exact mean and maximum, and nearest-rank percentiles (see
/// LagHistogram::quantile). Every figure in microseconds; all zero when n == 0.
struct LagUsSummary {
  std::uint64_t n = 0;
  double mean = 0;
  Micros p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0;
};

class LagHistogram {
 public:
  static constexpr int kSubBits = 6;                      ///< 64 buckets per power of two
  static constexpr Micros kSub = Micros{1} << kSubBits;   ///< 64
  static constexpr int kMaxBits = 40;                     ///< values below 2^40 µs are bucketed
  static constexpr std::size_t kBuckets = static_cast<std::size_t>(2 * kSub + (kMaxBits - kSubBits - 1) * kSub);

  /// Adds one value. A negative one (sent before its planned instant: a backward wall-clock
  /// step) counts as 0.
  void record(Micros v) noexcept {
    if (v < 0) v = 0;
    ++counts_[index_of(v)];
    ++n_;
    sum_ += v;
    if (v > max_) max_ = v;
    if (n_ == 1 || v < min_) min_ = v;
  }
  /// Adds every value of `o` into this one.
  void merge(const LagHistogram& o) noexcept;

  [[nodiscard]] std::uint64_t count() const noexcept { return n_; }
  [[nodiscard]] Micros max() const noexcept { return max_; }
  [[nodiscard]] Micros min() const noexcept { return min_; }
  /// The exact mean; 0 when empty.
  [[nodiscard]] double mean() const noexcept {
    return n_ == 0 ? 0.0 : static_cast<double>(sum_) / static_cast<double>(n_);
  }
  /// The per-mille-th percentile by nearest rank (the value of rank ceil(permille/1000 · n), as
  /// domain/sla.hpp's percentiles() ranks the ledger's lag): the midpoint of the bucket holding
  /// that rank, kept within the smallest and largest values recorded, so within 0.79% of the
  /// exact value (exact below 128 µs); the exact maximum for a rank past 2^40 µs. 0 when empty.
  [[nodiscard]] Micros quantile(unsigned permille) const noexcept;
  [[nodiscard]] LagUsSummary summary() const noexcept;

  /// The bucket of `v` (0 <= v), and a bucket's lowest value and width: exposed for the tests.
  static std::size_t index_of(Micros v) noexcept {
    if (v < 2 * kSub) return static_cast<std::size_t>(v);
    if (v >= (Micros{1} << kMaxBits)) v = (Micros{1} << kMaxBits) - 1;
    const int shift = std::bit_width(static_cast<std::uint64_t>(v)) - (kSubBits + 1);  // >= 1
    return static_cast<std::size_t>(2 * kSub + (shift - 1) * kSub + ((v >> shift) - kSub));
  }
  static Micros bucket_low(std::size_t i) noexcept;
  static Micros bucket_width(std::size_t i) noexcept;

 private:
  std::array<std::uint32_t, kBuckets> counts_{};
  std::uint64_t n_ = 0;
  Micros sum_ = 0;
  Micros max_ = 0;
  Micros min_ = 0;
};

}  // namespace daybreak
