#pragma once
// The delivery state machine, written once: every transition a delivery row may make and who
// makes it, and the sets the store's statements and the dispatcher test states against
// (claimable, cancellable, re-pointable, final). docs/state_machine.md draws the same table; a
// unit test (delivery_fsm_test.cpp) reads its diagram and fails when the two disagree.
// Pure: no I/O.
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "domain/types.hpp"

namespace daybreak {

/// Who moves a row.
enum class FsmActor { planner, dispatch, status, operator_ };
std::string_view to_string(FsmActor a);

/// One allowed move.
struct DeliveryTransition {
  DeliveryState from;
  DeliveryState to;
  FsmActor by;
  std::string_view why;
};

/// Every allowed transition (several may share a pair of states, for different reasons).
const std::vector<DeliveryTransition>& delivery_transitions();

/// True when some actor may move a row from `from` to `to`.
bool transition_allowed(DeliveryState from, DeliveryState to);

/// Dispatch may claim it (→ sending): planned, retry_wait, uncertain.
constexpr bool is_claimable(DeliveryState s) {
  return s == DeliveryState::planned || s == DeliveryState::retry_wait || s == DeliveryState::uncertain;
}
/// An operator may cancel it (cancel, an advisor's absence): the claimable rows. A row already
/// at the provider (`sending` or later) is left to finish.
constexpr bool is_cancellable(DeliveryState s) { return is_claimable(s); }
/// Its content may still be re-pointed (assign, content withdraw/replace): not attempted yet, or
/// waiting for its next attempt.
constexpr bool is_repointable(DeliveryState s) { return s == DeliveryState::planned || s == DeliveryState::retry_wait; }

/// A request for it may be at the provider right now: sending, uncertain.
constexpr bool is_in_flight(DeliveryState s) { return s == DeliveryState::sending || s == DeliveryState::uncertain; }
/// Attempted or being attempted and not final: a request may have reached the provider (in
/// flight, or waiting for its next attempt after one).
constexpr bool is_attempted_open(DeliveryState s) { return is_in_flight(s) || s == DeliveryState::retry_wait; }

/// Where a pending delivery on `channel` goes once its advisor's channels changed (an opt-out, an
/// unsubscribe, a new channel list): the index in `list` (the advisor's preference order) of the
/// channel it is sent on — its own while `usable` (in the list, opted in, the advisor opted in)
/// has it, else the first usable channel of the list — or -1 when none is left (cancelled).
int follow_channel_index(const std::string& channel, const std::vector<std::string>& list, const std::set<std::string>& usable);

/// The SQL list "'a', 'b'" of the states a predicate accepts, for the store's statements (built
/// once per predicate; the store never spells a state set itself).
const std::string& claimable_states_sql();
const std::string& cancellable_states_sql();
const std::string& repointable_states_sql();
const std::string& in_flight_states_sql();
const std::string& attempted_open_states_sql();
// non_final_states_sql() (types.hpp): the complement of is_final_state.

}  // namespace daybreak
