#include "domain/lag_histogram.hpp"

#include <algorithm>

namespace daybreak {

Micros LagHistogram::bucket_low(std::size_t i) noexcept {
  if (i < static_cast<std::size_t>(2 * kSub)) return static_cast<Micros>(i);
  const std::size_t k = i - static_cast<std::size_t>(2 * kSub);
  const int shift = static_cast<int>(k / kSub) + 1;
  return (static_cast<Micros>(k % kSub) + kSub) << shift;
}

Micros LagHistogram::bucket_width(std::size_t i) noexcept {
  if (i < static_cast<std::size_t>(2 * kSub)) return 1;
  return Micros{1} << (static_cast<int>((i - static_cast<std::size_t>(2 * kSub)) / kSub) + 1);
}

void LagHistogram::merge(const LagHistogram& o) noexcept {
  if (o.n_ == 0) return;
  for (std::size_t i = 0; i < kBuckets; ++i) counts_[i] += o.counts_[i];
  min_ = n_ == 0 ? o.min_ : std::min(min_, o.min_);
  n_ += o.n_;
  sum_ += o.sum_;
  max_ = std::max(max_, o.max_);
}

Micros LagHistogram::quantile(unsigned permille) const noexcept {
  if (n_ == 0) return 0;
  // Nearest rank: ceil(permille/1000 · n), clamped to [1, n]; integer arithmetic, as percentiles().
  std::uint64_t rank = (static_cast<std::uint64_t>(permille) * n_ + 999) / 1000;
  rank = std::clamp<std::uint64_t>(rank, 1, n_);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < kBuckets; ++i) {
    seen += counts_[i];
    if (seen < rank) continue;
    if (i == kBuckets - 1 && max_ >= bucket_low(i) + bucket_width(i)) return max_;  // past 2^40 µs
    const Micros mid = bucket_low(i) + bucket_width(i) / 2;
    return std::clamp(mid, min_, max_);
  }
  return max_;
}

LagUsSummary LagHistogram::summary() const noexcept {
  LagUsSummary s;
  s.n = n_;
  s.mean = mean();
  s.p50 = quantile(500);
  s.p90 = quantile(900);
  s.p99 = quantile(990);
  s.p999 = quantile(999);
  s.max = max_;
  return s;
}

}  // namespace daybreak
