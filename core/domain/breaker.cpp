#include "domain/breaker.hpp"

#include <algorithm>

namespace daybreak {

std::string_view to_string(BreakerState s) {
  switch (s) {
    case BreakerState::closed: return "closed";
    case BreakerState::open: return "open";
    case BreakerState::half_open: return "half_open";
  }
  return "?";
}

Breaker::Bucket& Breaker::bucket(Millis now) {
  const Millis width = std::max<Millis>(1, p_.window_ms / kBuckets);
  const Millis start = now - now % width;
  auto& b = buckets_[static_cast<std::size_t>((start / width) % kBuckets)];
  if (b.start != start) b = Bucket{start, 0, 0};
  return b;
}

void Breaker::totals(Millis now, int& ok, int& failed) const {
  ok = failed = 0;
  for (const auto& b : buckets_) {
    if (b.start >= 0 && b.start > now - p_.window_ms) {
      ok += b.ok;
      failed += b.failed;
    }
  }
}

double Breaker::failure_ratio(Millis now) const {
  int ok = 0, failed = 0;
  totals(now, ok, failed);
  return ok + failed == 0 ? 0.0 : static_cast<double>(failed) / static_cast<double>(ok + failed);
}

BreakerState Breaker::state(Millis now) const {
  if (state_ == BreakerState::open && now >= open_until_) return BreakerState::half_open;
  return state_;
}

bool Breaker::usable(Millis now) const {
  switch (state(now)) {
    case BreakerState::closed: return true;
    case BreakerState::open: return false;
    case BreakerState::half_open: return state_ == BreakerState::open || probes_out_ < p_.half_open_probes;
  }
  return false;
}

bool Breaker::allow(Millis now) {
  if (state_ == BreakerState::open && now >= open_until_) {
    state_ = BreakerState::half_open;
    probes_out_ = probes_ok_ = 0;
  }
  if (state_ == BreakerState::closed) return true;
  if (state_ == BreakerState::open) return false;
  if (probes_out_ >= p_.half_open_probes) return false;
  ++probes_out_;
  return true;
}

void Breaker::trip(Millis now) {
  if (state_ == BreakerState::closed) {
    ++opened_;
    cooldown_ = p_.open_ms;
  } else {
    cooldown_ = std::min(p_.max_open_ms, std::max(p_.open_ms, cooldown_ * 2));
  }
  state_ = BreakerState::open;
  open_until_ = now + cooldown_;
  probes_out_ = probes_ok_ = 0;
}

void Breaker::force_open(Millis now, Millis pause_ms) {
  if (state_ == BreakerState::closed) ++opened_;
  const Millis until = now + std::max<Millis>(0, pause_ms);
  open_until_ = state_ == BreakerState::open ? std::max(open_until_, until) : until;
  state_ = BreakerState::open;
  // A probe that fails after the pause starts the usual doubling from the longest cool-down.
  cooldown_ = std::max(cooldown_, p_.max_open_ms);
  probes_out_ = probes_ok_ = 0;
}

void Breaker::force_open(Millis now) {
  if (state(now) != BreakerState::open) trip(now);
}

void Breaker::record(bool failure, Millis now) {
  if (state_ == BreakerState::open && now >= open_until_) {
    // A response to a request sent before the breaker opened, arriving after the cool-down.
    state_ = BreakerState::half_open;
    probes_out_ = probes_ok_ = 0;
  }
  auto& b = bucket(now);
  (failure ? b.failed : b.ok)++;
  switch (state_) {
    case BreakerState::closed: {
      int ok = 0, failed = 0;
      totals(now, ok, failed);
      if (failure && ok + failed >= p_.min_requests &&
          static_cast<double>(failed) >= p_.failure_ratio * static_cast<double>(ok + failed)) {
        trip(now);
      }
      break;
    }
    case BreakerState::half_open:
      if (failure) {
        trip(now);
      } else if (++probes_ok_ >= p_.half_open_probes) {
        state_ = BreakerState::closed;
        buckets_ = {};  // a fresh window: the outage's failures no longer count
      }
      break;
    case BreakerState::open:
      break;  // late responses of requests sent before it opened change nothing
  }
}

}  // namespace daybreak
