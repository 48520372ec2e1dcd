#include "app/unsubscribe.hpp"

#include <nlohmann/json.hpp>

#include "channels/signature.hpp"
#include "store/advisors.hpp"
#include "store/audit.hpp"
#include "store/overrides.hpp"
#include "app/publish.hpp"
#include "store/pg_operator.hpp"

namespace daybreak {

bool is_one_click_body(std::string_view body) {
  // urlencoded: pairs separated by '&' (a trailing CRLF some clients add is tolerated).
  std::string_view rest = body;
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    while (!pair.empty() && (pair.back() == '\r' || pair.back() == '\n' || pair.back() == ' ')) pair.remove_suffix(1);
    if (pair == "List-Unsubscribe=One-Click") return true;
    if (amp == std::string_view::npos) break;
    rest.remove_prefix(amp + 1);
  }
  // multipart/form-data: a part named List-Unsubscribe whose value is One-Click.
  const auto name = body.find("name=\"List-Unsubscribe\"");
  if (name == std::string_view::npos) return false;
  const auto blank = body.find("\r\n\r\n", name);
  return blank != std::string_view::npos && body.substr(blank + 4, 9) == "One-Click";
}

UnsubscribeOutcome one_click_unsubscribe(store::Db& db, const std::string& secret, std::string_view token,
                                         std::string_view body, Millis now, store::PgOperator* pg,
                                         bool* pg_committed) {
  UnsubscribeOutcome out;
  if (secret.empty()) {
    out.http_status = 404;
    out.reason = "one-click unsubscribe is not configured ([email] unsubscribe_secret)";
    return out;
  }
  if (!is_one_click_body(body)) {
    out.http_status = 400;
    out.reason = "the body must be List-Unsubscribe=One-Click (RFC 8058)";
    return out;
  }
  auto id = channels::verify_unsubscribe_token(secret, token);
  if (!id) {
    out.http_status = 403;
    out.reason = token.empty() ? "no unsubscribe token (?a=)" : "the unsubscribe token is not valid";
    return out;
  }
  out.advisor_id = *id;
  db.write_tx([&] {
    auto before = store::AdvisorGet(db, *id);
    if (!before) {
      out.reason = "no such advisor: nothing to do";
      return;
    }
    bool has_email = false, was_in = false;
    for (const auto& c : before->channels) {
      if (c.channel == Channel::email) {
        has_email = true;
        was_in = c.opted_in;
      }
    }
    if (!has_email) {
      out.reason = "the advisor has no email channel: nothing to do";
      return;
    }
    out.changed = store::AdvisorChannelUnsubscribe(db, *id, "email", now);
    if (!out.changed) {
      out.reason = "already unsubscribed";
      return;
    }
    // No more email from now on: a pending email delivery moves to the advisor's next opted-in
    // channel (or is cancelled), noted for a running dispatch, which reloads it within a second.
    const auto follow = store::DeliveryFollowAdvisorChannels(db, *id, now);
    store::AuditEntry e;
    e.at = now;
    e.actor = "daybreak-callbacks";
    e.command = "POST /unsubscribe (List-Unsubscribe one-click, RFC 8058)";
    e.reason = "the advisor unsubscribed through the List-Unsubscribe link of an email";
    e.target = "advisor:" + *id;
    e.before = nlohmann::json{{"channel", "email"}, {"opted_in", was_in}}.dump();
    e.after = nlohmann::json{{"channel", "email"},
                             {"opted_in", false},
                             {"unsubscribed_at", now},
                             {"deliveries_moved", follow.moved},
                             {"deliveries_cancelled_unreachable", follow.cancelled}}
                  .dump();
    store::AuditAppend(db, e);
    out.moved = follow.moved.size();
    out.cancelled = follow.cancelled.size();
    if (pg != nullptr) {
      // The PostgreSQL ledger holds the day's deliveries a dispatch sends from: the advisor's
      // row there becomes the file's and its pending deliveries there follow it, as
      // `daybreak advisors opt-out` does with [database] url, and the audit row goes there too.
      const auto after = store::AdvisorGet(db, *id);
      store::PgOperator::AdvisorFollow pf;
      pg->tx(false, [&] { pf = follow_advisor_on_pg(*pg, *after, e, now).follow; });
      if (pg_committed != nullptr) *pg_committed = true;
      out.moved += pf.moved.size();
      out.cancelled += pf.cancelled.size();
    }
    out.reason = "unsubscribed from email";
  });
  return out;
}

}  // namespace daybreak
