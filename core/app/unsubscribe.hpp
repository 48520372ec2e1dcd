#pragma once
// One-click unsubscribe (RFC 8058) from the List-Unsubscribe link of an email delivery:
// daybreak-callbacks' `POST /unsubscribe?a=TOKEN` with the body `List-Unsubscribe=One-Click`.
// The token (channels/signature.hpp, unsubscribe_token) names the advisor and is signed with
// [email] unsubscribe_secret, so it cannot be forged for another advisor or guessed. A valid
// one opts the advisor's email channel out for good (store AdvisorChannelUnsubscribe: an import
// cannot opt it back in), with an audit_log row, in one transaction; the advisor's pending email
// deliveries move to its next opted-in channel (or are cancelled when none is left), noted for a
// running dispatch, and the next plan skips the advisor on email. With the PostgreSQL ledger the
// same change is made there, inside the file's transaction. No HTTP here.
#include <string>
#include <string_view>

#include "domain/types.hpp"
#include "store/db.hpp"

namespace daybreak::store {
class PgOperator;
}

namespace daybreak {

/// What the endpoint answers.
struct UnsubscribeOutcome {
  int http_status = 200;   ///< 200 done (or nothing to do), 400 not a one-click body, 403 bad token, 404 not configured
  std::string reason;      ///< why (answered as {"error": ...} and logged for a 4xx)
  std::string advisor_id;  ///< of a valid token
  bool changed = false;    ///< this request opted the channel out (false: it already was, or no email channel)
  std::size_t moved = 0;      ///< pending email deliveries moved to another opted-in channel (both ledgers)
  std::size_t cancelled = 0;  ///< pending email deliveries cancelled: no opted-in channel left (both ledgers)
};

/// RFC 8058 §3.1: the POST body carries the key/value pair "List-Unsubscribe=One-Click"
/// (application/x-www-form-urlencoded, or a multipart/form-data field of that name).
bool is_one_click_body(std::string_view body);

/// Checks the body and the token, then unsubscribes (inside its own write transaction) and
/// audits it as actor "daybreak-callbacks". An empty `secret` answers 404 (not configured).
/// With `pg` (the receiver on [database] url) the advisor's row, its pending deliveries and the
/// audit row change on PostgreSQL too, in one PostgreSQL transaction inside the file's: when
/// PostgreSQL fails the file is rolled back as well and the error (StoreError) propagates, so
/// nothing changed and the click can be repeated. `pg_committed` (optional) is set when
/// PostgreSQL's transaction committed, so that a failure after it (the file's own commit) is
/// told apart: PostgreSQL changed, the file did not, and a repeated click brings the file along.
UnsubscribeOutcome one_click_unsubscribe(store::Db& db, const std::string& secret, std::string_view token,
                                         std::string_view body, Millis now, store::PgOperator* pg = nullptr,
                                         bool* pg_committed = nullptr);

}  // namespace daybreak
