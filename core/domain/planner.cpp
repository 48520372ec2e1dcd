#include "domain/planner.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <queue>
#include <unordered_set>

namespace daybreak {
namespace {

// floor(u × mps) can land a hair under an integer in binary floating point (0.7 × 80 is not
// exactly 56); this nudge makes the cap what an operator computes by hand.
constexpr double kFloorEpsilon = 1e-9;

// A window longer than a day is a configuration mistake, and would make the per-bucket
// tables large for no reason.
constexpr Millis kMaxWindowMs = 86'400'000;

// No provider account sends a million messages a second; the bound keeps every per-second
// count well inside integer range.
constexpr double kMaxMps = 1'000'000;

// Seed mixed into the item hash for the jitter, so the jitter is not correlated with the
// within-tier order (which is sorted by the same hash).
constexpr std::uint64_t kJitterSeed = 0xa0761d6478bd642fULL;

constexpr std::size_t kNumChannels = 3;

std::size_t channel_index(Channel c) { return static_cast<std::size_t>(c); }

// floor(x) for a positive rate, at least 1: the most sends a sender may get per full second.
std::size_t per_second(double x) {
  double f = std::floor(x + kFloorEpsilon);
  return f < 1 ? 1 : static_cast<std::size_t>(f);
}

// The window cut into one-second buckets [start + k·1000, +1000); the last may be shorter
// (the window is inclusive of `end`), and its capacity shrinks in proportion.
struct Buckets {
  Millis start = 0;
  Millis span = 0;  // inclusive length in ms: end - start + 1
  std::size_t count = 0;
  Millis last_len = 0;  // length of the last bucket, 1..1000

  Millis len(std::size_t k) const { return k + 1 < count ? 1000 : last_len; }
  std::size_t cap(std::size_t k, std::size_t rate) const {
    return k + 1 < count ? rate : rate * static_cast<std::size_t>(last_len) / 1000;
  }
  std::size_t capacity(std::size_t rate) const { return rate * (count - 1) + cap(count - 1, rate); }
};

// The fill cursor of one sender: its next free slot, and how to compare slots across senders.
struct Cursor {
  std::size_t sender = 0;   // index into PlanInput::senders
  std::size_t id_rank = 0;  // rank of sender_id among the channel's senders: a stable tie-break
  std::size_t rate = 0;     // sends per full second in this plan (the cap, or mps when over)
  std::size_t bucket = 0;   // == buckets.count once the window is full
  std::size_t used = 0;     // sends already in `bucket` (or past the window, once full)
  double next = 0;          // nominal time of the next free slot, ms after window.start
};

void set_next(Cursor& c, const Buckets& b) {
  if (c.bucket < b.count) {
    c.next = static_cast<double>(c.bucket) * 1000.0 +
             static_cast<double>(c.used) * 1000.0 / static_cast<double>(b.cap(c.bucket, c.rate));
  } else {
    // Past the window: keep balancing by mps, although every such send lands at window.end.
    c.next = static_cast<double>(b.count) * 1000.0 + static_cast<double>(c.used) * 1000.0 / static_cast<double>(c.rate);
  }
}

void skip_empty_buckets(Cursor& c, const Buckets& b) {
  while (c.bucket < b.count && b.cap(c.bucket, c.rate) == 0) ++c.bucket;
}

struct LaterSlot {
  bool operator()(const Cursor& a, const Cursor& b) const {
    if (a.next != b.next) return a.next > b.next;
    return a.id_rank > b.id_rank;
  }
};

std::string format_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

Error bad(std::string message) { return Error{"bad_plan_input", std::move(message)}; }

}  // namespace

std::uint64_t mix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

namespace {
constexpr std::uint64_t kFnvBasis = 14695981039346656037ULL;  // FNV-1a 64-bit offset basis
std::uint64_t fnv1a(std::uint64_t h, std::string_view bytes) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ULL;  // FNV-1a 64-bit prime
  }
  return h;
}
}  // namespace

std::uint64_t stable_key_hash(std::string_view key) {
  // FNV-1a alone clusters on keys that differ only in their last bytes; finish with a mixer.
  return mix64(fnv1a(kFnvBasis, key));
}

std::string plan_item_key(std::string_view advisor_id, std::string_view date) {
  std::string key;
  key.reserve(advisor_id.size() + 1 + date.size());
  key.append(advisor_id).append("|").append(date);
  return key;
}

std::int64_t delivery_order_key(std::string_view advisor_id, std::string_view date) {
  // stable_key_hash of plan_item_key, without building the string (a million rows per plan).
  const std::uint64_t h = mix64(fnv1a(fnv1a(fnv1a(kFnvBasis, advisor_id), "|"), date));
  return static_cast<std::int64_t>(h >> 1);
}

Result<PlanResult> plan_run(const PlanInput& in) {
  // Pass 1: validate, so a bad configuration is an error naming the field, not a strange plan.
  const Window& w = in.window;
  if (w.end < w.start) return bad("window: end is before start");
  if (w.end - w.start >= kMaxWindowMs) return bad("window: longer than a day");
  if (!(in.utilisation > 0.0 && in.utilisation <= 1.0)) {
    return bad("utilisation " + format_number(in.utilisation) + ": must be in (0, 1]");
  }
  std::array<std::vector<std::size_t>, kNumChannels> senders_of;
  {
    std::unordered_set<std::string_view> ids;
    for (std::size_t s = 0; s < in.senders.size(); ++s) {
      const SenderCapacity& sc = in.senders[s];
      if (sc.sender_id.empty()) return bad("sender #" + std::to_string(s + 1) + ": empty sender_id");
      if (!ids.insert(sc.sender_id).second) return bad("sender \"" + sc.sender_id + "\": duplicate sender_id");
      if (!std::isfinite(sc.mps) || sc.mps <= 0 || sc.mps > kMaxMps) {
        return bad("sender \"" + sc.sender_id + "\": mps " + format_number(sc.mps) +
                   " must be a positive number up to 1000000");
      }
      senders_of[channel_index(sc.channel)].push_back(s);
    }
  }
  const std::size_t n = in.items.size();
  if (n > UINT32_MAX) return bad("more than 2^32 items in one run");
  std::array<std::size_t, kNumChannels> items_on{};
  for (std::size_t i = 0; i < n; ++i) {
    std::size_t c = channel_index(in.items[i].channel);
    if (senders_of[c].empty()) {
      return bad("item \"" + in.items[i].key + "\": no sender for channel " +
                 std::string(to_string(in.items[i].channel)));
    }
    ++items_on[c];
  }

  Buckets b;
  b.start = w.start;
  b.span = w.end - w.start + 1;
  b.count = static_cast<std::size_t>((b.span + 999) / 1000);
  b.last_len = b.span - static_cast<Millis>(b.count - 1) * 1000;

  PlanResult out;
  out.sends.resize(n);
  out.senders.reserve(in.senders.size());
  std::vector<std::size_t> cap(in.senders.size()), hard(in.senders.size());
  for (std::size_t s = 0; s < in.senders.size(); ++s) {
    const SenderCapacity& sc = in.senders[s];
    cap[s] = per_second(in.utilisation * sc.mps);
    hard[s] = std::max(cap[s], per_second(sc.mps));
    out.senders.push_back(
        SenderLoad{sc.sender_id, sc.channel, sc.mps, 0, static_cast<double>(cap[s]), 0, b.capacity(cap[s])});
  }
  out.required_peak_mps = static_cast<double>(n) / (static_cast<double>(b.span) / 1000.0 * in.utilisation);

  // Pass 2: one sort. Channel first (channels plan independently), then tier, then the stable
  // hash (random but reproducible order inside a tier), then key and index only to break ties.
  // The sort runs over a compact array, not over the items, so it stays in cache at 1M items.
  struct SortKey {
    std::uint64_t group;  // channel in the high bits, tier rank (offset to unsigned) in the low
    std::uint64_t hash;
    std::uint32_t item;
  };
  std::vector<std::uint64_t> hash(n);
  std::vector<SortKey> keys(n);
  for (std::size_t i = 0; i < n; ++i) {
    const PlanItem& it = in.items[i];
    hash[i] = stable_key_hash(it.key);
    const auto tier = static_cast<std::uint32_t>(static_cast<std::int64_t>(it.tier_rank) - INT32_MIN);
    keys[i] = SortKey{(static_cast<std::uint64_t>(channel_index(it.channel)) << 32) | tier, hash[i],
                      static_cast<std::uint32_t>(i)};
  }
  std::sort(keys.begin(), keys.end(), [&](const SortKey& x, const SortKey& y) {
    if (x.group != y.group) return x.group < y.group;
    if (x.hash != y.hash) return x.hash < y.hash;
    const std::string& kx = in.items[x.item].key;
    const std::string& ky = in.items[y.item].key;
    if (kx != ky) return kx < ky;
    return x.item < y.item;
  });
  std::vector<std::uint32_t> order(n);
  for (std::size_t p = 0; p < n; ++p) order[p] = keys[p].item;
  keys = {};

  // Where each sorted item landed: its sender, bucket and position inside the bucket.
  std::vector<std::uint32_t> slot_sender(n), slot_bucket(n), slot_pos(n);
  // counts[s][k]: sends of sender s in bucket k; index b.count holds sends past the window.
  std::vector<std::vector<std::uint32_t>> counts(in.senders.size(), std::vector<std::uint32_t>(b.count + 1, 0));

  std::string recommendation;
  std::size_t begin = 0;
  for (std::size_t c = 0; c < kNumChannels; ++c) {
    const std::size_t n_c = items_on[c];
    const std::size_t first = begin;
    begin += n_c;
    if (n_c == 0) continue;
    const std::vector<std::size_t>& ss = senders_of[c];

    std::size_t fit = 0, fit_hard = 0;
    for (std::size_t s : ss) {
      fit += b.capacity(cap[s]);
      fit_hard += b.capacity(hard[s]);
    }
    const bool over = n_c > fit;

    // Pass 3: sequential fill. Each next item (in priority order) takes the earliest next free
    // slot among the channel's senders, which spreads load in proportion to mps. An over-full
    // channel fills at 100% of mps instead, so that the tier order still holds and as many
    // deliveries as possible land inside the window.
    std::vector<std::size_t> sorted_ids(ss.size());
    std::iota(sorted_ids.begin(), sorted_ids.end(), std::size_t{0});
    std::sort(sorted_ids.begin(), sorted_ids.end(),
              [&](std::size_t x, std::size_t y) { return in.senders[ss[x]].sender_id < in.senders[ss[y]].sender_id; });
    std::priority_queue<Cursor, std::vector<Cursor>, LaterSlot> heap;
    for (std::size_t r = 0; r < sorted_ids.size(); ++r) {
      Cursor cur;
      cur.sender = ss[sorted_ids[r]];
      cur.id_rank = r;
      cur.rate = over ? hard[cur.sender] : cap[cur.sender];
      skip_empty_buckets(cur, b);
      set_next(cur, b);
      heap.push(cur);
    }
    for (std::size_t p = first; p < first + n_c; ++p) {
      Cursor cur = heap.top();
      heap.pop();
      slot_sender[p] = static_cast<std::uint32_t>(cur.sender);
      slot_bucket[p] = static_cast<std::uint32_t>(cur.bucket);
      slot_pos[p] = static_cast<std::uint32_t>(cur.used);
      ++counts[cur.sender][cur.bucket];
      ++cur.used;
      if (cur.bucket < b.count && cur.used >= b.cap(cur.bucket, cur.rate)) {
        ++cur.bucket;
        cur.used = 0;
        skip_empty_buckets(cur, b);
      }
      set_next(cur, b);
      heap.push(cur);
    }

    // The lowest-priority items beyond what fits under the cap are the shortfall.
    for (std::size_t p = first; p < first + n_c; ++p) {
      out.sends[order[p]].over_capacity = over && (p - first) >= fit;
    }
    if (!over) continue;

    const std::size_t short_c = n_c - fit;
    out.shortfall += short_c;
    double total_mps = 0, best_mps = 0;
    for (std::size_t s : ss) {
      total_mps += in.senders[s].mps;
      best_mps = std::max(best_mps, in.senders[s].mps);
    }
    const std::string ch(to_string(static_cast<Channel>(c)));
    char pct[16];
    std::snprintf(pct, sizeof pct, "%.0f%%", in.utilisation * 100.0);
    std::string clause = ch + ": " + std::to_string(short_c) + " of " + std::to_string(n_c) +
                         " deliveries do not fit under " + pct + " of " + format_number(total_mps) + " msg/s (" +
                         std::to_string(ss.size()) + (ss.size() == 1 ? " sender" : " senders") + ")";
    // Another sender like the channel's fastest: how many would close the gap.
    const std::size_t per_new = b.capacity(per_second(in.utilisation * best_mps));
    if (per_new > 0) {
      const std::size_t add = (short_c + per_new - 1) / per_new;
      clause += "; add " + std::to_string(add) + " " + ch + (add == 1 ? " sender" : " senders") + " of " +
                format_number(best_mps) + " msg/s";
    } else {
      clause += "; the window is too short for whole seconds of sending: widen it";
    }
    // The smallest utilisation, in hundredths, at which the channel fits as it is.
    bool raised = false;
    for (int hundredths = static_cast<int>(std::floor(in.utilisation * 100.0 + kFloorEpsilon)) + 1; hundredths <= 100;
         ++hundredths) {
      const double u = hundredths / 100.0;
      std::size_t capacity = 0;
      for (std::size_t s : ss) capacity += b.capacity(per_second(u * in.senders[s].mps));
      if (capacity >= n_c) {
        char buf[64];
        std::snprintf(buf, sizeof buf, ", or raise utilisation to %.2f", u);
        clause += buf;
        raised = true;
        break;
      }
    }
    if (!raised) clause += " (raising utilisation alone is not enough)";
    if (n_c > fit_hard) {
      clause += "; " + std::to_string(n_c - fit_hard) + " do not fit even at 100% and are planned at the window end";
    }
    if (!recommendation.empty()) recommendation += "; ";
    recommendation += clause;
  }

  // Pass 4: turn (sender, bucket, position) into instants. A bucket's m sends split it into m
  // equal sub-slots in priority order; each send gets a hash-derived jitter inside its own
  // sub-slot, so sends are spread over the second and jitter never reorders tiers.
  for (std::size_t p = 0; p < n; ++p) {
    const std::size_t i = order[p];
    const std::size_t s = slot_sender[p];
    const std::size_t k = slot_bucket[p];
    PlannedSend& send = out.sends[i];
    send.item = i;
    send.sender_id = in.senders[s].sender_id;
    if (k >= b.count) {
      send.planned_at = w.end;  // late: reported through shortfall, not hidden
      continue;
    }
    const auto m = static_cast<Millis>(counts[s][k]);
    const Millis len = b.len(k);
    const auto j = static_cast<Millis>(slot_pos[p]);
    const Millis lo = j * len / m;
    const Millis width = (j + 1) * len / m - lo;
    const Millis jitter =
        width > 0 ? static_cast<Millis>(mix64(hash[i] ^ kJitterSeed) % static_cast<std::uint64_t>(width)) : 0;
    send.planned_at = b.start + static_cast<Millis>(k) * 1000 + lo + jitter;
  }

  for (std::size_t s = 0; s < in.senders.size(); ++s) {
    SenderLoad& load = out.senders[s];
    std::vector<std::uint32_t>& cs = counts[s];
    cs[b.count - 1] += cs[b.count];  // sends past the window land at window.end, in the last bucket
    load.assigned = std::accumulate(cs.begin(), cs.begin() + static_cast<std::ptrdiff_t>(b.count), std::size_t{0});
    load.peak_per_second = *std::max_element(cs.begin(), cs.begin() + static_cast<std::ptrdiff_t>(b.count));
  }
  out.feasible = out.shortfall == 0;
  out.recommendation = std::move(recommendation);
  return out;
}

}  // namespace daybreak
