#pragma once
// Restoring a backup over a ledger that went on after it (`daybreak restore`, core/cli/op_backup.cpp):
// which deliveries of the backup may have reached a provider after the backup was taken.
//
// The backup is a snapshot. A dispatch that ran between the snapshot and the restore may have sent
// any delivery the snapshot still holds as not final; the restored row would be sent again by the
// next dispatch, and nothing would count it as a possible duplicate. From the snapshot alone:
// - `sending`, `uncertain` and `retry_wait` rows were already being sent when it was taken: any of
//   them may have been (re)sent afterwards;
// - a `planned` row is claimed only `claim_lead` before its `planned_at` (dispatch never claims a
//   planned row earlier), so it may have been sent before the restore exactly when
//   planned_at − claim_lead ≤ restore time; a row planned later than that cannot have been sent;
// - final rows (accepted, delivered, read, dead, cancelled) are never sent by dispatch again.
// The backup's own time does not narrow this: a dispatch may have run at any time between the
// snapshot and the restore, so a backup taken before a run's window and restored after it is as
// much at risk as one taken mid-run.
#include "domain/delivery_fsm.hpp"
#include "domain/types.hpp"

namespace daybreak {

/// True when a delivery in `state`, planned for `planned_at`, in a backup restored at
/// `restore_at`, may have been sent after the backup was taken (see above).
constexpr bool restored_row_may_have_been_sent(DeliveryState state, Millis planned_at, Millis restore_at,
                                               Millis claim_lead_ms) {
  if (is_attempted_open(state)) return true;
  return state == DeliveryState::planned && planned_at - claim_lead_ms <= restore_at;
}

}  // namespace daybreak
