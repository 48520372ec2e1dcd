#include "cli/op_actions.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <thread>
#include <utility>

#include "cli/common.hpp"
#include "cli/op_support.hpp"
#include "domain/time.hpp"
#include "store/catalog.hpp"
#include "store/deliveries.hpp"
#include "store/pg_ledger.hpp"
#include "store/runs.hpp"
#include "store/withdrawal.hpp"

namespace daybreak::ops {

Actor cli_actor() { return Actor{current_actor(), current_sudo_user(), command_line()}; }

store::AuditEntry audit_entry_as(const Actor& who, Millis now, const std::string& target, const std::string& reason,
                                 const nlohmann::json& before, const nlohmann::json& after) {
  store::AuditEntry e;
  e.at = now;
  e.actor = who.name;
  e.sudo_user = who.sudo_user;
  e.command = who.command;
  e.reason = reason;
  e.target = target;
  e.before = before.is_null() ? "" : before.dump();
  e.after = after.is_null() ? "" : after.dump();
  return e;
}

std::string pause_key(const PauseTarget& t, const std::vector<std::string>& known_senders,
                      const std::function<bool(std::int64_t)>& run_exists) {
  const int scopes = (t.channel.empty() ? 0 : 1) + (t.run_id != 0 ? 1 : 0) + (t.sender.empty() ? 0 : 1);
  if (scopes > 1) throw UsageError("give at most one of --channel, --run and --sender");
  if (!t.channel.empty()) return "pause." + parse_channel_arg("--channel", t.channel);
  if (t.run_id != 0) {
    if (t.run_id < 0 || !run_exists(t.run_id)) throw UsageError("--run " + std::to_string(t.run_id) + ": no such run");
    return "pause.run." + std::to_string(t.run_id);
  }
  if (!t.sender.empty()) {
    if (std::find(known_senders.begin(), known_senders.end(), t.sender) == known_senders.end()) {
      throw UsageError("--sender " + t.sender + ": no such sender in the configuration");
    }
    return "pause.sender." + t.sender;
  }
  return "pause";
}

std::string pause_key(store::Db& db, const PauseTarget& t, const std::vector<std::string>& known_senders) {
  return pause_key(t, known_senders, [&](std::int64_t id) { return store::RunGet(db, id).has_value(); });
}

namespace {

// The two ledgers an action writes, behind the same few calls, so each action below is written
// once: the SQLite file (store/overrides.hpp, store/audit.hpp) and PostgreSQL (store::PgOperator,
// the same statements in PostgreSQL's dialect).
struct SqliteLedger {
  store::Db& db;
  template <class Fn>
  void tx(bool dry_run, Fn&& fn) { change_tx(db, dry_run, std::forward<Fn>(fn)); }
  std::optional<store::Control> control_get(const std::string& key) { return store::ControlGet(db, key); }
  void control_set(const std::string& key, const std::string& value, Millis now, const std::string& by) {
    store::ControlSet(db, key, value, now, by);
  }
  void audit(const store::AuditEntry& e) { store::AuditAppend(db, e); }
  std::optional<store::Run> run_get(std::int64_t id) { return store::RunGet(db, id); }
  std::optional<store::DeliveryInfo> delivery_get(std::int64_t id) { return store::DeliveryInfoGet(db, id); }
  bool delivery_cancel(std::int64_t id, Millis now) { return store::DeliveryCancel(db, id, now); }
  store::RunCancelResult run_cancel(std::int64_t id, Millis now) { return store::RunCancel(db, id, now); }
  void dead_list(const store::DeadFilter& f, const std::function<void(const store::DeliveryInfo&)>& fn) { store::DeadList(db, f, fn); }
  bool requeue_dead(std::int64_t id, Millis now) { return store::DeliveryRequeue(db, id, {"dead"}, "replay", now); }
  bool requeue(std::int64_t id, const std::vector<std::string>& from_states, const std::string& kind, Millis now) {
    return store::DeliveryRequeue(db, id, from_states, kind, now);
  }
  bool run_reopen(std::int64_t id, Millis now) { return store::RunReopen(db, id, now); }
  bool dead_dismiss(std::int64_t id, const std::string& by, Millis now) { return store::DeadDismiss(db, id, by, now); }
  std::optional<store::ContentInfo> content_get(const std::string& id) { return store::ContentInfoGet(db, id); }
  std::vector<std::string> assignment_dates(const std::string& id, const std::string& since) {
    return store::AssignmentDatesForContent(db, id, since);
  }
  store::ContentWithdrawResult content_withdraw(const std::string& id, const std::string& actor, Millis now) {
    return store::ContentWithdraw(db, id, actor, now);
  }
  std::int64_t assignment_replace(const std::string& from, const std::string& to, const std::string& since, Millis now) {
    return store::AssignmentReplaceContent(db, from, to, since, now);
  }
  std::vector<std::int64_t> repoint_pending(const std::string& id, const std::string& since, Millis now) {
    return store::DeliveryRepointPending(db, id, since, now);
  }
  store::PulledResolution resolve_pulled(const std::string& id, const std::string& since, const std::string& lang, Millis now) {
    return store::DeliveryResolvePulled(db, id, since, lang, now);
  }
  std::int64_t count_in_flight(const std::string& id, const std::string& since) { return store::DeliveryCountInFlight(db, id, since); }
};

struct PgLedger {
  store::PgOperator& pg;
  template <class Fn>
  void tx(bool dry_run, Fn&& fn) { pg.tx(dry_run, std::forward<Fn>(fn)); }
  std::optional<store::Control> control_get(const std::string& key) { return pg.control_get(key); }
  void control_set(const std::string& key, const std::string& value, Millis now, const std::string& by) {
    pg.control_set(key, value, now, by);
  }
  void audit(const store::AuditEntry& e) { pg.audit_append(e); }
  std::optional<store::Run> run_get(std::int64_t id) { return pg.run_get(id); }
  std::optional<store::DeliveryInfo> delivery_get(std::int64_t id) { return pg.delivery_info_get(id); }
  bool delivery_cancel(std::int64_t id, Millis now) { return pg.delivery_cancel(id, now); }
  store::RunCancelResult run_cancel(std::int64_t id, Millis now) { return pg.run_cancel(id, now); }
  void dead_list(const store::DeadFilter& f, const std::function<void(const store::DeliveryInfo&)>& fn) { pg.dead_list(f, fn); }
  bool requeue_dead(std::int64_t id, Millis now) { return pg.delivery_requeue(id, "dead", "replay", now); }
  bool requeue(std::int64_t id, const std::vector<std::string>& from_states, const std::string& kind, Millis now) {
    // DeliveryRequeue: only a row now in one of `from_states` moves (the update names its state).
    auto cur = pg.delivery_info_get(id);
    if (!cur || std::find(from_states.begin(), from_states.end(), cur->state) == from_states.end()) return false;
    return pg.delivery_requeue(id, cur->state, kind, now);
  }
  bool run_reopen(std::int64_t id, Millis now) { return pg.run_reopen(id, now); }
  bool dead_dismiss(std::int64_t id, const std::string& by, Millis now) { return pg.dead_dismiss(id, by, now); }
  std::optional<store::ContentInfo> content_get(const std::string& id) { return pg.content_info_get(id); }
  std::vector<std::string> assignment_dates(const std::string& id, const std::string& since) {
    return pg.assignment_dates_for_content(id, since);
  }
  store::ContentWithdrawResult content_withdraw(const std::string& id, const std::string& actor, Millis now) {
    return pg.content_withdraw(id, actor, now);
  }
  std::int64_t assignment_replace(const std::string& from, const std::string& to, const std::string& since, Millis now) {
    return pg.assignment_replace_content(from, to, since, now);
  }
  std::vector<std::int64_t> repoint_pending(const std::string& id, const std::string& since, Millis now) {
    return pg.delivery_repoint_pending(id, since, now);
  }
  store::PulledResolution resolve_pulled(const std::string& id, const std::string& since, const std::string& lang, Millis now) {
    return pg.delivery_resolve_pulled(id, since, lang, now);
  }
  std::int64_t count_in_flight(const std::string& id, const std::string& since) { return pg.delivery_count_in_flight(id, since); }
};

template <class Ledger>
nlohmann::json set_pause_on(Ledger& l, const PauseTarget& t, const std::vector<std::string>& known_senders, bool pause,
                            const std::string& reason, const Actor& who, Millis now, bool dry_run) {
  require_reason(reason);
  const std::string key = pause_key(t, known_senders, [&](std::int64_t id) { return l.run_get(id).has_value(); });
  bool was_on = false;
  l.tx(dry_run, [&] {
    auto before = l.control_get(key);
    was_on = before && before->value == "1";
    l.control_set(key, pause ? "1" : "0", now, who.name);
    l.audit(audit_entry_as(who, now, "control:" + key, reason, {{"key", key}, {"paused", was_on}}, {{"key", key}, {"paused", pause}}));
  });
  return {{"command", pause ? "pause" : "resume"}, {"key", key}, {"paused", pause}, {"was_paused", was_on}, {"dry_run", dry_run}};
}

template <class Ledger>
nlohmann::json cancel_delivery_on(Ledger& l, const std::string& tz, std::int64_t delivery_id, const std::string& reason,
                                  const Actor& who, Millis now, bool dry_run) {
  require_reason(reason);
  const std::string flag = "--delivery " + std::to_string(delivery_id);
  auto d = l.delivery_get(delivery_id);
  if (!d) throw UsageError(flag + ": no such delivery");
  if (d->state == "sending") {
    throw UsageError(flag + ": the request is at the provider now (state sending); its outcome will be recorded, it cannot be cancelled");
  }
  if (d->state != "planned" && d->state != "retry_wait" && d->state != "uncertain") {
    throw UsageError(flag + ": already final (state " + d->state + "); nothing to cancel");
  }
  bool ok = false;
  l.tx(dry_run, [&] {
    ok = l.delivery_cancel(delivery_id, now);
    if (!ok) return;
    auto after = l.delivery_get(delivery_id);
    l.audit(audit_entry_as(who, now, "delivery:" + std::to_string(delivery_id), reason, to_json(*d, tz), to_json(*after, tz)));
  });
  // The row moved between the check and the transaction (dispatch claimed it): say so.
  if (!ok) throw CheckFailed("delivery " + std::to_string(delivery_id) + " was claimed by dispatch meanwhile; not cancelled");
  return {{"command", "cancel"}, {"delivery_id", delivery_id}, {"before", d->state}, {"cancelled", 1}, {"dry_run", dry_run}};
}

template <class Ledger>
nlohmann::json cancel_run_on(Ledger& l, std::int64_t run_id, const std::string& reason, const Actor& who, Millis now, bool dry_run) {
  require_reason(reason);
  auto r = l.run_get(run_id);
  if (!r) throw UsageError("--run " + std::to_string(run_id) + ": no such run");
  if (r->state == "cancelled") throw UsageError("--run " + std::to_string(run_id) + ": already cancelled");
  store::RunCancelResult res;
  l.tx(dry_run, [&] {
    res = l.run_cancel(run_id, now);
    l.audit(audit_entry_as(who, now, "run:" + std::to_string(run_id), reason, {{"state", r->state}, {"date", r->date}},
                           {{"state", "cancelled"}, {"deliveries_cancelled", res.cancelled.size()}, {"in_flight", res.in_flight}}));
  });
  return {{"command", "cancel"}, {"run_id", run_id}, {"date", r->date}, {"before", r->state}, {"cancelled", res.cancelled.size()},
          {"in_flight", res.in_flight}, {"dry_run", dry_run}};
}

template <class Ledger>
nlohmann::json dead_change_on(Ledger& l, const std::string& tz, const std::vector<std::int64_t>& ids,
                              const std::optional<store::DeadFilter>& filter, bool replay, const std::string& reason,
                              const Actor& who, Millis now, bool dry_run) {
  const std::string verb = replay ? "replay" : "dismiss";
  if (ids.empty() && !filter) throw UsageError("dead " + verb + ": give delivery ids or at least one filter (--date, --run, --channel, --error, --since)");
  if (!ids.empty() && filter) throw UsageError("dead " + verb + ": give delivery ids or filters, not both");
  require_reason(reason);
  // Validate every id before changing anything: unknown, not dead, or (for dismiss) already dismissed.
  std::vector<store::DeliveryInfo> targets;
  std::vector<std::string> problems;
  for (auto id : ids) {
    auto d = l.delivery_get(id);
    if (!d) {
      problems.push_back("delivery " + std::to_string(id) + ": no such delivery");
    } else if (d->state != "dead") {
      problems.push_back("delivery " + std::to_string(id) + ": not dead (state " + d->state + ")");
    } else if (!replay && d->dismissed_at) {
      problems.push_back("delivery " + std::to_string(id) + ": already dismissed");
    } else {
      targets.push_back(*d);
    }
  }
  if (!problems.empty()) {
    std::string msg = "nothing changed:";
    for (const auto& p : problems) msg += "\n  " + p;
    throw UsageError(msg);
  }
  if (filter && filter->run_id && !l.run_get(*filter->run_id)) throw UsageError("--run " + std::to_string(*filter->run_id) + ": no such run");

  std::int64_t changed = 0;
  std::vector<std::int64_t> reopened_runs;
  l.tx(dry_run, [&] {
    changed = 0;  // afresh when the transaction is run again (PgOperator::tx)
    reopened_runs.clear();
    // By filter, the set is read inside the transaction, so it is exactly what changes.
    if (filter) {
      targets.clear();
      l.dead_list(*filter, [&](const store::DeliveryInfo& d) { targets.push_back(d); });
    }
    for (const auto& d : targets) {
      bool ok = replay ? l.requeue_dead(d.delivery_id, now) : l.dead_dismiss(d.delivery_id, who.name, now);
      if (!ok) throw CheckFailed("delivery " + std::to_string(d.delivery_id) + " changed meanwhile; nothing " + (replay ? "replayed" : "dismissed"));
      if (replay) {
        auto run = l.run_get(d.run_id);
        if (run && run->state == "closed" && l.run_reopen(d.run_id, now)) reopened_runs.push_back(d.run_id);
      }
      auto after = l.delivery_get(d.delivery_id);
      l.audit(audit_entry_as(who, now, "delivery:" + std::to_string(d.delivery_id), reason, to_json(d, tz), to_json(*after, tz)));
      ++changed;
    }
  });
  nlohmann::json out_ids = nlohmann::json::array();
  for (const auto& d : targets) out_ids.push_back(d.delivery_id);
  return {{"command", "dead " + verb}, {"count", changed}, {"delivery_ids", out_ids}, {"runs_reopened", reopened_runs}, {"dry_run", dry_run}};
}

template <class Ledger>
nlohmann::json resend_on(Ledger& l, const std::string& tz, std::int64_t delivery_id, const std::string& reason, const Actor& who,
                         Millis now, bool dry_run) {
  require_reason(reason);
  const std::string flag = "--delivery " + std::to_string(delivery_id);
  auto d = l.delivery_get(delivery_id);
  if (!d) throw UsageError(flag + ": no such delivery");
  static const std::vector<std::string> kResendable = {"accepted", "delivered", "read", "dead", "cancelled"};
  if (std::find(kResendable.begin(), kResendable.end(), d->state) == kResendable.end()) {
    throw UsageError(flag + ": state " + d->state + " is not final; dispatch will still send it (resend takes final or dead deliveries)");
  }
  auto run = l.run_get(d->run_id);
  if (run && run->state == "cancelled") throw UsageError(flag + ": its run " + std::to_string(d->run_id) + " was cancelled");
  bool reopened = false;
  l.tx(dry_run, [&] {
    reopened = false;  // afresh when the transaction is run again (PgOperator::tx)
    if (!l.requeue(delivery_id, kResendable, "resend", now)) {
      throw CheckFailed("delivery " + std::to_string(delivery_id) + " changed meanwhile; nothing resent");
    }
    // A closed run is not chosen by dispatch any more: reopen it so the next dispatch (cron's
    // watchdog starts one every minute) takes the resent delivery.
    if (run && run->state == "closed") reopened = l.run_reopen(run->run_id, now);
    nlohmann::json a = to_json(*l.delivery_get(delivery_id), tz);
    a["run_reopened"] = reopened;
    l.audit(audit_entry_as(who, now, "delivery:" + std::to_string(delivery_id), reason, to_json(*d, tz), a));
  });
  return {{"command", "resend"}, {"delivery_id", delivery_id}, {"before", d->state}, {"state", "planned"},
          {"run_id", d->run_id}, {"run_reopened", reopened}, {"dry_run", dry_run}};
}

template <class Ledger>
nlohmann::json replace_content_on(Ledger& l, const std::string& tz, const std::string& emergency_language, const std::string& content_id,
                                  const std::string& with, const std::string& reason, const Actor& who, Millis now, bool dry_run) {
  require_reason(reason);
  if (content_id == with) throw UsageError("--with: must name another item than " + content_id);
  auto from = l.content_get(content_id);
  if (!from) throw UsageError("content \"" + content_id + "\": no such content");
  auto to = l.content_get(with);
  if (!to) throw UsageError("--with \"" + with + "\": no such content");
  if (to->content.withdrawn) throw UsageError("--with \"" + with + "\": withdrawn itself");
  if (to->content.language != from->content.language) {
    throw UsageError("--with \"" + with + "\": language " + to->content.language + " differs from " + content_id + "'s " +
                     from->content.language + "; advisors get content in their language");
  }
  auto today = local_date(now, tz);
  if (!today) throw ConfigError(today.error().message);
  // From yesterday on: advisors west of the default zone are still on yesterday.
  const std::string since = format_date(add_days(*today, -1));
  // Every day the replacement must cover has to be inside its validity.
  for (const auto& day : l.assignment_dates(content_id, since)) {
    if ((!to->content.valid_from.empty() && day < to->content.valid_from) || (!to->content.valid_until.empty() && day > to->content.valid_until)) {
      throw UsageError("--with \"" + with + "\": not valid on " + day + ", a day " + content_id + " is assigned");
    }
  }
  std::int64_t assignments = 0, in_flight = 0;
  std::vector<std::int64_t> repointed;
  bool newly = false;
  l.tx(dry_run, [&] {
    auto w = l.content_withdraw(content_id, who.name, now);
    newly = w.newly_withdrawn;
    assignments = l.assignment_replace(content_id, with, since, now);
    repointed = l.repoint_pending(content_id, since, now);
    // Rows whose assignment is not the item's (an operator's): the same rule as a withdrawal.
    l.resolve_pulled(content_id, since, emergency_language, now);
    in_flight = l.count_in_flight(content_id, since);
    l.audit(audit_entry_as(who, now, "content:" + content_id, reason, to_json(*from, tz),
                           {{"withdrawn", true}, {"replaced_by", with}, {"assignments_replaced", assignments},
                            {"deliveries_repointed", repointed.size()}, {"deliveries_in_flight", in_flight}, {"from_date", since}}));
  });
  return {{"command", "content replace"}, {"content_id", content_id}, {"with", with},
          {"already_withdrawn", !newly}, {"assignments_replaced", assignments},
          {"deliveries_repointed", repointed.size()}, {"deliveries_in_flight", in_flight}, {"dry_run", dry_run}};
}

}  // namespace

bool await_dispatch_polls(store::PgOperator& pg, Millis now) {
  std::map<std::int64_t, std::pair<std::int64_t, int>> seen;  // run → (last heartbeat, new ones seen)
  for (const auto& [run, hb] : pg.live_heartbeats(now)) seen[run] = {hb, 0};
  for (int i = 0; i < 200 && !seen.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    bool all = true;
    std::map<std::int64_t, std::int64_t> cur;
    for (const auto& [run, hb] : pg.live_heartbeats(now)) cur[run] = hb;
    for (auto it = seen.begin(); it != seen.end();) {
      auto c = cur.find(it->first);
      if (c == cur.end()) {  // the run closed or its lease ended: nothing left to send for it
        it = seen.erase(it);
        continue;
      }
      if (c->second != it->second.first) it->second = {c->second, it->second.second + 1};
      if (it->second.second < 3) all = false;
      ++it;
    }
    if (all) seen.clear();
  }
  return seen.empty();
}

std::unique_ptr<store::PgOperator> connect_pg_first(const Config& cfg, const std::string& command) {
  if (cfg.database_url.empty()) return nullptr;
  try {
    return std::make_unique<store::PgOperator>(cfg.database_url);
  } catch (const std::exception& e) {
    throw store::StoreError(command + ": nothing changed: the PostgreSQL ledger at " + store::pg_url_for_display(cfg.database_url) +
                            " cannot be reached: " + e.what());
  }
}

void change_both(store::Db& db, store::PgOperator* pg, bool dry_run, const std::string& command, const std::function<void()>& on_sqlite,
                 const std::function<void()>& on_pg) {
  bool pg_committed = false;
  try {
    change_tx(db, dry_run, [&] {
      on_sqlite();
      if (!pg) return;
      pg->tx(dry_run, on_pg);
      pg_committed = !dry_run;
    });
  } catch (const DryRunRollback&) {
  } catch (const store::StoreError& e) {
    if (!pg) throw;
    if (pg_committed) {
      throw store::StoreError(command + ": PostgreSQL changed but the SQLite file " + db.path() + " did not: " + e.what() +
                              "; run the same command with --database " + db.path() + " to change the file too");
    }
    throw store::StoreError(command + ": nothing changed (neither PostgreSQL nor the SQLite file): " + e.what());
  }
}

nlohmann::json replace_content(store::Db& db, const std::string& tz, const std::string& emergency_language, const std::string& content_id,
                               const std::string& with, const std::string& reason, const Actor& who, Millis now, bool dry_run) {
  SqliteLedger l{db};
  return replace_content_on(l, tz, emergency_language, content_id, with, reason, who, now, dry_run);
}

nlohmann::json replace_content_pg(store::PgOperator& pg, const std::string& tz, const std::string& emergency_language,
                                  const std::string& content_id, const std::string& with, const std::string& reason, const Actor& who,
                                  Millis now, bool dry_run) {
  PgLedger l{pg};
  auto out = replace_content_on(l, tz, emergency_language, content_id, with, reason, who, now, dry_run);
  // Claimed rows of the item are held by a running dispatch's content guard once it polled the
  // change: return only after every dispatch with a live lease has (as withdraw_content_pg).
  const bool wait = !dry_run && out["deliveries_in_flight"].get<std::int64_t>() > 0;
  out["dispatch_confirmed"] = wait ? nlohmann::json(await_dispatch_polls(pg, now)) : nlohmann::json(nullptr);
  out["ledger"] = "postgresql";
  return out;
}

nlohmann::json resend_delivery(store::Db& db, const std::string& tz, std::int64_t delivery_id, const std::string& reason,
                               const Actor& who, Millis now, bool dry_run) {
  SqliteLedger l{db};
  return resend_on(l, tz, delivery_id, reason, who, now, dry_run);
}

nlohmann::json resend_delivery_pg(store::PgOperator& pg, const std::string& tz, std::int64_t delivery_id, const std::string& reason,
                                  const Actor& who, Millis now, bool dry_run) {
  PgLedger l{pg};
  return resend_on(l, tz, delivery_id, reason, who, now, dry_run);
}

nlohmann::json set_pause_target(store::Db& db, const PauseTarget& t, const std::vector<std::string>& known_senders,
                                bool pause, const std::string& reason, const Actor& who, Millis now, bool dry_run) {
  SqliteLedger l{db};
  return set_pause_on(l, t, known_senders, pause, reason, who, now, dry_run);
}

nlohmann::json set_pause(store::Db& db, const std::string& channel, bool pause, const std::string& reason, const Actor& who,
                         Millis now, bool dry_run) {
  PauseTarget t;
  t.channel = channel;
  return set_pause_target(db, t, {}, pause, reason, who, now, dry_run);
}

nlohmann::json cancel_delivery(store::Db& db, const std::string& tz, std::int64_t delivery_id, const std::string& reason,
                               const Actor& who, Millis now, bool dry_run) {
  SqliteLedger l{db};
  return cancel_delivery_on(l, tz, delivery_id, reason, who, now, dry_run);
}

nlohmann::json dead_change(store::Db& db, const std::string& tz, const std::vector<std::int64_t>& ids,
                           const std::optional<store::DeadFilter>& filter, bool replay, const std::string& reason,
                           const Actor& who, Millis now, bool dry_run) {
  SqliteLedger l{db};
  return dead_change_on(l, tz, ids, filter, replay, reason, who, now, dry_run);
}

// ---- PostgreSQL ----

nlohmann::json set_pause_target_pg(store::PgOperator& pg, const PauseTarget& t, const std::vector<std::string>& known_senders,
                                   bool pause, const std::string& reason, const Actor& who, Millis now, bool dry_run) {
  PgLedger l{pg};
  return set_pause_on(l, t, known_senders, pause, reason, who, now, dry_run);
}

nlohmann::json cancel_delivery_pg(store::PgOperator& pg, const std::string& tz, std::int64_t delivery_id, const std::string& reason,
                                  const Actor& who, Millis now, bool dry_run) {
  PgLedger l{pg};
  return cancel_delivery_on(l, tz, delivery_id, reason, who, now, dry_run);
}

nlohmann::json dead_change_pg(store::PgOperator& pg, const std::string& tz, const std::vector<std::int64_t>& ids,
                              const std::optional<store::DeadFilter>& filter, bool replay, const std::string& reason,
                              const Actor& who, Millis now, bool dry_run) {
  PgLedger l{pg};
  return dead_change_on(l, tz, ids, filter, replay, reason, who, now, dry_run);
}

nlohmann::json cancel_run(store::Db& db, std::int64_t run_id, const std::string& reason, const Actor& who, Millis now, bool dry_run) {
  SqliteLedger l{db};
  return cancel_run_on(l, run_id, reason, who, now, dry_run);
}

nlohmann::json cancel_run_pg(store::PgOperator& pg, std::int64_t run_id, const std::string& reason, const Actor& who, Millis now,
                             bool dry_run) {
  PgLedger l{pg};
  return cancel_run_on(l, run_id, reason, who, now, dry_run);
}

nlohmann::json withdraw_content_pg(store::PgOperator& pg, const std::string& emergency_language, const std::string& from_date,
                                   const std::string& content_id, const std::string& reason, const Actor& who, Millis now) {
  store::ContentWithdrawResult w;
  std::vector<std::int64_t> repointed;
  store::PulledResolution resolved;
  std::int64_t in_flight = 0;
  // One transaction: the item is withdrawn and no pending delivery points at it, together; a
  // dispatch's claim that commits after it finds the rows re-pointed or held.
  pg.tx(false, [&] {
    w = pg.content_withdraw(content_id, who.name, now);
    if (!w.found) return;
    pg.audit_append({now, who.name, who.sudo_user, "content withdraw", reason, content_id,
                     nlohmann::json{{"withdrawn", !w.newly_withdrawn}}.dump(),
                     nlohmann::json{{"withdrawn", true}, {"withdrawn_at", *w.withdrawn_at}, {"withdrawn_by", w.withdrawn_by}}.dump()});
    repointed = pg.delivery_repoint_pending(content_id, from_date, now);
    resolved = pg.delivery_resolve_pulled(content_id, from_date, emergency_language, now);
    in_flight = pg.delivery_count_in_flight(content_id, from_date);
    pg.audit_append({now, who.name, who.sudo_user, "content withdraw: replace", reason, content_id, "",
                     nlohmann::json{{"assignments_replaced", 0}, {"deliveries_repointed", repointed.size()},
                                    {"deliveries_emergency", resolved.emergency.size()},
                                    {"deliveries_held", resolved.held.size()},
                                    {"deliveries_in_flight", in_flight}, {"from_date", from_date}}.dump()});
  });
  if (!w.found) throw CheckFailed("content " + content_id + ": not found");
  // Rows of the item already claimed (in flight) are stopped by a running dispatch's content
  // guard once its PollChanges has read the withdrawal: wait for every dispatch holding a live
  // lease to have polled it, so nothing of the item is sent after this returns.
  std::optional<bool> confirmed;
  if (in_flight > 0) confirmed = await_dispatch_polls(pg, now);
  return {{"content_id", content_id},
          {"withdrawn_at", *w.withdrawn_at},
          {"withdrawn_by", w.withdrawn_by},
          {"already_withdrawn", !w.newly_withdrawn},
          {"assignments_replaced", 0},
          {"deliveries_repointed", repointed.size()},
          {"deliveries_emergency", resolved.emergency.size()},
          {"deliveries_held", resolved.held.size()},
          {"held_languages", resolved.held_languages},
          {"emergency_language", emergency_language},
          {"deliveries_in_flight", in_flight},
          {"missing", 0},
          {"days", nlohmann::json::array()},
          {"dispatch_confirmed", confirmed ? nlohmann::json(*confirmed) : nlohmann::json(nullptr)},
          {"ledger", "postgresql"}};
}

}  // namespace daybreak::ops
