#include "cli/op_actions.hpp"

#include <algorithm>

#include "cli/common.hpp"
#include "cli/op_support.hpp"
#include "store/deliveries.hpp"
#include "store/runs.hpp"

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

std::string pause_key(store::Db& db, const PauseTarget& t, const std::vector<std::string>& known_senders) {
  const int scopes = (t.channel.empty() ? 0 : 1) + (t.run_id != 0 ? 1 : 0) + (t.sender.empty() ? 0 : 1);
  if (scopes > 1) throw UsageError("give at most one of --channel, --run and --sender");
  if (!t.channel.empty()) return "pause." + parse_channel_arg("--channel", t.channel);
  if (t.run_id != 0) {
    if (t.run_id < 0 || !store::RunGet(db, t.run_id)) throw UsageError("--run " + std::to_string(t.run_id) + ": no such run");
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

nlohmann::json set_pause_target(store::Db& db, const PauseTarget& t, const std::vector<std::string>& known_senders,
                                bool pause, const std::string& reason, const Actor& who, Millis now, bool dry_run) {
  require_reason(reason);
  const std::string key = pause_key(db, t, known_senders);
  auto before = store::ControlGet(db, key);
  const bool was_on = before && before->value == "1";
  change_tx(db, dry_run, [&] {
    store::ControlSet(db, key, pause ? "1" : "0", now, who.name);
    store::AuditAppend(db, audit_entry_as(who, now, "control:" + key, reason, {{"key", key}, {"paused", was_on}},
                                          {{"key", key}, {"paused", pause}}));
  });
  return {{"command", pause ? "pause" : "resume"}, {"key", key}, {"paused", pause}, {"was_paused", was_on}, {"dry_run", dry_run}};
}

nlohmann::json set_pause(store::Db& db, const std::string& channel, bool pause, const std::string& reason, const Actor& who,
                         Millis now, bool dry_run) {
  PauseTarget t;
  t.channel = channel;
  return set_pause_target(db, t, {}, pause, reason, who, now, dry_run);
}

nlohmann::json cancel_delivery(store::Db& db, const std::string& tz, std::int64_t delivery_id, const std::string& reason,
                               const Actor& who, Millis now, bool dry_run) {
  require_reason(reason);
  const std::string flag = "--delivery " + std::to_string(delivery_id);
  auto d = store::DeliveryInfoGet(db, delivery_id);
  if (!d) throw UsageError(flag + ": no such delivery");
  if (d->state == "sending") {
    throw UsageError(flag + ": the request is at the provider now (state sending); its outcome will be recorded, it cannot be cancelled");
  }
  if (d->state != "planned" && d->state != "retry_wait" && d->state != "uncertain") {
    throw UsageError(flag + ": already final (state " + d->state + "); nothing to cancel");
  }
  bool ok = false;
  change_tx(db, dry_run, [&] {
    ok = store::DeliveryCancel(db, delivery_id, now);
    if (!ok) return;
    auto after = store::DeliveryInfoGet(db, delivery_id);
    store::AuditAppend(db, audit_entry_as(who, now, "delivery:" + std::to_string(delivery_id), reason, to_json(*d, tz), to_json(*after, tz)));
  });
  // The row moved between the check and the transaction (dispatch claimed it): say so.
  if (!ok) throw CheckFailed("delivery " + std::to_string(delivery_id) + " was claimed by dispatch meanwhile; not cancelled");
  return {{"command", "cancel"}, {"delivery_id", delivery_id}, {"before", d->state}, {"cancelled", 1}, {"dry_run", dry_run}};
}

nlohmann::json dead_change(store::Db& db, const std::string& tz, const std::vector<std::int64_t>& ids,
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
    auto d = store::DeliveryInfoGet(db, id);
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
  if (filter && filter->run_id && !store::RunGet(db, *filter->run_id)) throw UsageError("--run " + std::to_string(*filter->run_id) + ": no such run");

  std::int64_t changed = 0;
  std::vector<std::int64_t> reopened_runs;
  change_tx(db, dry_run, [&] {
    // By filter, the set is read inside the transaction, so it is exactly what changes.
    if (filter) {
      targets.clear();
      store::DeadList(db, *filter, [&](const store::DeliveryInfo& d) { targets.push_back(d); });
    }
    for (const auto& d : targets) {
      bool ok = replay ? store::DeliveryRequeue(db, d.delivery_id, {"dead"}, "replay", now) : store::DeadDismiss(db, d.delivery_id, who.name, now);
      if (!ok) throw CheckFailed("delivery " + std::to_string(d.delivery_id) + " changed meanwhile; nothing " + (replay ? "replayed" : "dismissed"));
      if (replay) {
        auto run = store::RunGet(db, d.run_id);
        if (run && run->state == "closed" && store::RunReopen(db, d.run_id, now)) reopened_runs.push_back(d.run_id);
      }
      auto after = store::DeliveryInfoGet(db, d.delivery_id);
      store::AuditAppend(db, audit_entry_as(who, now, "delivery:" + std::to_string(d.delivery_id), reason, to_json(d, tz), to_json(*after, tz)));
      ++changed;
    }
  });
  nlohmann::json out_ids = nlohmann::json::array();
  for (const auto& d : targets) out_ids.push_back(d.delivery_id);
  return {{"command", "dead " + verb}, {"count", changed}, {"delivery_ids", out_ids}, {"runs_reopened", reopened_runs}, {"dry_run", dry_run}};
}

}  // namespace daybreak::ops
