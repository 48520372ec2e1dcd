#include "engine/sender_pool.hpp"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <limits>

namespace daybreak::engine {

SenderPool::SenderPool(const Config& cfg, Millis steady) {
  senders_.reserve(cfg.senders.size());
  for (const auto& s : cfg.senders) {
    index_[s.id] = static_cast<int>(senders_.size());
    senders_.push_back(SenderState{&s, channels::make_adapter(cfg, s), TokenBucket(s.mps, std::max(2.0, s.mps * 0.05), steady),
                                   Breaker(cfg.breaker)});
    auto& st = senders_.back();
    if (!s.account.empty()) {
      st.account = s.account;
    } else if (s.channel == Channel::whatsapp) {
      // Default: the senders sharing one access token are one account (a WABA's system-user
      // token serves its numbers). Named by a hash: the token itself is never kept here.
      char buf[24];
      std::snprintf(buf, sizeof buf, "token:%016zx", std::hash<std::string>{}(s.token.value()));
      st.account = buf;
    } else {
      st.account = "sender:" + s.id;
    }
  }
}

std::vector<std::size_t> SenderPool::block(std::size_t i, ErrorScope scope, Millis pause_ms, const std::string& reason,
                                           Millis steady) {
  std::vector<std::size_t> out;
  const auto& origin = senders_[i];
  for (std::size_t k = 0; k < senders_.size(); ++k) {
    auto& st = senders_[k];
    const bool hit = k == i || (scope == ErrorScope::account && st.cfg->channel == origin.cfg->channel &&
                                st.account == origin.account);
    if (!hit) continue;
    const bool fresh = st.blocked_until <= steady;
    if (fresh) out.push_back(k);
    st.breaker.force_open(steady, pause_ms);
    st.last_state = BreakerState::open;
    st.blocked_until = std::max(st.blocked_until, steady + pause_ms);
    if (fresh || scope == ErrorScope::account) {  // an account block outranks a number block
      st.blocked_scope = scope;
      st.blocked_reason = reason;
    }
  }
  return out;
}

int SenderPool::index_of(const std::string& id) const {
  auto it = index_.find(id);
  return it == index_.end() ? -1 : it->second;
}

bool SenderPool::has_channel(Channel ch) const {
  return std::any_of(senders_.begin(), senders_.end(), [&](const SenderState& s) { return s.cfg->channel == ch; });
}

bool SenderPool::addressable(const Reach& r, Channel ch) const {
  if (!has_channel(ch)) return false;
  switch (ch) {
    case Channel::whatsapp: return r.phone;
    case Channel::email: return r.email;
    case Channel::webhook: return true;
  }
  return false;
}

int SenderPool::pick(Channel ch, int preferred, Millis steady, const std::function<std::size_t(std::size_t)>& queued,
                     int exclude) const {
  if (preferred >= 0 && senders_[preferred].cfg->channel == ch && senders_[preferred].paused_until <= steady &&
      senders_[preferred].breaker.state(steady) == BreakerState::closed)
    return preferred;
  int best = -1;
  double best_load = 1e300;
  for (std::size_t i = 0; i < senders_.size(); ++i) {
    const auto& s = senders_[i];
    if (s.cfg->channel != ch || !s.breaker.usable(steady) || static_cast<int>(i) == exclude) continue;
    // Prefer healthy senders, then the least loaded relative to its rate.
    double load = static_cast<double>(s.in_flight + static_cast<int>(queued(i))) / s.cfg->mps;
    if (s.paused_until > steady) load += 1e9;
    if (load < best_load) {
      best_load = load;
      best = static_cast<int>(i);
    }
  }
  return best;
}

int SenderPool::next_channel(const Reach& r) const {
  return first_usable_channel(r.chans, r.nchans, r.current + 1, [&](Channel c) { return addressable(r, c); });
}

std::pair<int, int> SenderPool::next_usable_channel(const Reach& r, Millis steady,
                                                    const std::function<std::size_t(std::size_t)>& queued) const {
  int sender = -1;
  int ch = first_usable_channel(r.chans, r.nchans, r.current + 1, [&](Channel c) {
    if (!addressable(r, c)) return false;
    sender = pick(c, -1, steady, queued);
    return sender >= 0;
  });
  return ch < 0 ? std::pair<int, int>{-1, -1} : std::pair<int, int>{ch, sender};
}

Millis SenderPool::channel_reopens_at(Channel ch, Millis now, Millis steady) const {
  Millis t = std::numeric_limits<Millis>::max();
  for (const auto& s : senders_) {
    if (s.cfg->channel == ch) t = std::min(t, s.breaker.reopens_at());
  }
  return now + std::max<Millis>(50, t - steady);
}

std::optional<BreakerState> SenderPool::record(std::size_t i, bool failure, Millis steady) {
  auto& st = senders_[i];
  st.breaker.record(failure, steady);
  if (failure) ++st.failed;
  auto state = st.breaker.state(steady);
  if (state == st.last_state) return std::nullopt;
  st.last_state = state;
  return state;
}

}  // namespace daybreak::engine
