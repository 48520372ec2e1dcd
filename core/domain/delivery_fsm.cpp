#include "domain/delivery_fsm.hpp"

#include <algorithm>
#include <array>

namespace daybreak {
namespace {

using S = DeliveryState;
using A = FsmActor;

constexpr std::array kAllStates = {S::planned,   S::sending, S::uncertain, S::retry_wait, S::accepted,
                                   S::delivered, S::read,    S::dead,      S::cancelled};

template <typename Pred>
std::string sql_list(Pred p) {
  std::string out;
  for (auto s : kAllStates) {
    if (!p(s)) continue;
    out += (out.empty() ? "'" : ", '") + std::string(to_string(s)) + "'";
  }
  return out;
}

}  // namespace

std::string_view to_string(FsmActor a) {
  switch (a) {
    case A::planner: return "planner";
    case A::dispatch: return "dispatch";
    case A::status: return "status";
    case A::operator_: return "operator";
  }
  return "?";
}

const std::vector<DeliveryTransition>& delivery_transitions() {
  static const std::vector<DeliveryTransition> t = {
      // dispatch: claim, outcome, hand back, restart, give up, hold
      {S::planned, S::sending, A::dispatch, "claim (claim lead before planned_at)"},
      {S::retry_wait, S::sending, A::dispatch, "claim (next_attempt_at)"},
      {S::uncertain, S::sending, A::dispatch, "claim (after the grace)"},
      {S::sending, S::accepted, A::dispatch, "provider accepted"},
      {S::sending, S::retry_wait, A::dispatch, "retry, or move to the next channel"},
      {S::sending, S::dead, A::dispatch, "permanent / exhausted, no channel left; held by the content guard"},
      {S::sending, S::uncertain, A::dispatch, "restart: the owner is dead"},
      {S::sending, S::planned, A::dispatch, "graceful stop: an unsent claim handed back"},
      {S::planned, S::dead, A::dispatch, "give up past deadline + drain; no sender; held"},
      {S::retry_wait, S::dead, A::dispatch, "give up; held"},
      {S::uncertain, S::dead, A::dispatch, "give up"},
      // status callbacks
      {S::accepted, S::delivered, A::status, "status: delivered"},
      {S::delivered, S::read, A::status, "status: read"},
      {S::accepted, S::read, A::status, "status: read"},
      {S::uncertain, S::accepted, A::status, "a status event names it"},
      {S::retry_wait, S::accepted, A::status, "a status event names it"},
      // A `failed` status about an accepted WhatsApp row, while its run is open and the deadline
      // allows a send: the advisor's next channel (status_event.hpp decide_after_failed_status;
      // dispatch writes it, the status decides it)
      {S::accepted, S::retry_wait, A::status, "failed status after accept: next channel"},
      // operator
      {S::planned, S::cancelled, A::operator_, "cancel, an advisor's absence"},
      {S::retry_wait, S::cancelled, A::operator_, "cancel, an advisor's absence"},
      {S::uncertain, S::cancelled, A::operator_, "cancel, an advisor's absence"},
      {S::dead, S::planned, A::operator_, "dead replay, resend"},
      {S::accepted, S::planned, A::operator_, "resend"},
      {S::delivered, S::planned, A::operator_, "resend"},
      {S::read, S::planned, A::operator_, "resend"},
      {S::cancelled, S::planned, A::operator_, "resend"},
      {S::planned, S::uncertain, A::operator_, "restore --force of a mid-run backup: may have been sent since"},
      {S::retry_wait, S::uncertain, A::operator_, "restore --force of a mid-run backup"},
      {S::sending, S::uncertain, A::operator_, "restore --force of a mid-run backup"},
  };
  return t;
}

bool transition_allowed(DeliveryState from, DeliveryState to) {
  const auto& t = delivery_transitions();
  return std::any_of(t.begin(), t.end(), [&](const DeliveryTransition& x) { return x.from == from && x.to == to; });
}

const std::string& claimable_states_sql() {
  static const std::string s = sql_list([](S x) { return is_claimable(x); });
  return s;
}
const std::string& cancellable_states_sql() {
  static const std::string s = sql_list([](S x) { return is_cancellable(x); });
  return s;
}
const std::string& repointable_states_sql() {
  static const std::string s = sql_list([](S x) { return is_repointable(x); });
  return s;
}
const std::string& in_flight_states_sql() {
  static const std::string s = sql_list([](S x) { return is_in_flight(x); });
  return s;
}
const std::string& attempted_open_states_sql() {
  static const std::string s = sql_list([](S x) { return is_attempted_open(x); });
  return s;
}

int follow_channel_index(const std::string& channel, const std::vector<std::string>& list, const std::set<std::string>& usable) {
  int first = -1;
  for (std::size_t k = 0; k < list.size(); ++k) {
    if (usable.count(list[k]) == 0) continue;
    if (list[k] == channel) return static_cast<int>(k);
    if (first < 0) first = static_cast<int>(k);
  }
  return first;
}

}  // namespace daybreak
