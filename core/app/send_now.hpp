#pragma once
// `daybreak send-now`: one content item to a segment of advisors at once, as a run of kind urgent
// (sql/014). Two steps so that nothing is written before the operator has seen the capacity
// verdict: prepare_send_now checks the item (the content guard's one "usable on the day" rule,
// domain/emergency.hpp), selects the segment's eligible advisors, plans them with the planner
// (plan_channel_choice, plan_run) and judges the run against the morning run sending on the same
// senders (domain/capacity.hpp check_urgent_capacity); commit_send_now writes the run, its
// deliveries and the audit row in one transaction. The command line (cli/op_send_now.cpp) and the
// console (`daybreak serve`) call both.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "config/config.hpp"
#include "domain/capacity.hpp"
#include "domain/time.hpp"
#include "store/db.hpp"
#include "store/pg.hpp"

namespace daybreak {

/// Who is sent to: every eligible advisor, one tier, one language, or the advisors of a list.
struct SendNowSegment {
  enum class Kind { all, tier, language, list } kind = Kind::all;
  std::string value;                         ///< the tier, the language, or the list's file name
  std::unordered_set<std::string> advisors;  ///< list: the advisor ids
  /// True when an advisor of this tier and language (and id) belongs to the segment.
  [[nodiscard]] bool matches(const std::string& advisor_id, const std::string& tier, const std::string& language) const;
  /// "all", "tier:gold", "language:hi", "list:FILE".
  [[nodiscard]] std::string describe() const;
};

/// Parses `all`, `tier:T`, `language:L` or `list:FILE` (the file's advisor ids are `list_ids`,
/// read by the caller: parse_advisor_list). UsageError for anything else, an empty value or an
/// empty list.
SendNowSegment parse_send_now_segment(const std::string& spec, const std::vector<std::string>& list_ids = {});

/// The advisor ids of a list file: one per line, the first comma-separated field; blank lines,
/// lines starting with '#' and a first line "advisor_id" (a CSV header) are skipped.
std::vector<std::string> parse_advisor_list(std::string_view text);

/// What an operator asks for.
struct SendNowRequest {
  std::string content_id;
  SendNowSegment segment;
  int deadline_minutes = 15;  ///< the urgent run's deadline: now + this
  std::string reason;         ///< recorded in the audit log
  std::string actor;          ///< audit_log.actor (OS user, or the console operator)
  std::string sudo_user;
  std::string command;        ///< the command line, or the console's description
};

/// The capacity verdict of one channel of the urgent run (domain check_urgent_capacity).
struct SendNowChannelVerdict {
  std::string channel;
  std::int64_t urgent = 0;
  std::int64_t morning_remaining = 0;  ///< morning rows on this channel not sent yet
  Millis morning_deadline = 0;         ///< 0 when no morning run is sending on it
  UrgentCapacity capacity;
};

/// The whole verdict: the urgent run's finish estimate and what it does to a running morning.
struct SendNowVerdict {
  std::vector<SendNowChannelVerdict> channels;
  Millis now = 0;
  Millis deadline = 0;           ///< the urgent run's
  Millis urgent_finish = 0;      ///< now + the slowest channel's urgent_seconds
  bool urgent_on_time = true;    ///< urgent_finish <= deadline
  bool morning_disturbed = false;   ///< a morning's last send moves later
  bool morning_misses_deadline = false;
  double morning_delay_seconds = 0;  ///< the most any channel's morning end moves
  bool refused = false;          ///< the urgent run cannot be sent in time (or a channel has no sender)
  std::string refusal;           ///< why, with the numbers and what to change
};

/// Judges one urgent run (pure: the caller loads the counts). `inputs` has one entry per channel
/// of the run, with `now` and the morning backlog of that channel filled in; `deadline` is the
/// urgent run's. Refused when a channel has no sender or the urgent run would not finish by its
/// own deadline at the full provider rate; a morning run pushed past its deadline is not a
/// refusal (the operator decides, seeing the numbers).
SendNowVerdict judge_send_now(const std::vector<UrgentCapacityInput>& inputs, Millis now, Millis deadline);

/// The verdict as lines for an operator (instants in zone `tz`): the urgent run's size, finish
/// estimate and deadline, then per channel the morning's backlog and how much later it ends.
std::string format_send_now_verdict(const SendNowVerdict& v, std::string_view tz);
nlohmann::json send_now_verdict_json(const SendNowVerdict& v);

/// One planned urgent delivery.
struct SendNowRow {
  std::string advisor_id, tier, channel, sender;
  int tier_rank = 0;
  int channel_index = 0;
  Millis planned_at = 0;
};

/// Everything prepare_send_now decided; nothing written yet.
struct SendNowPlan {
  std::string date;  ///< delivery day: today in the default time zone
  Window window;     ///< slot = start = now; end = deadline = now + deadline_minutes
  std::string content_id;
  std::string segment;
  std::size_t eligible = 0;     ///< eligible advisors of the day in the segment
  std::size_t unreachable = 0;  ///< of them, no opted-in channel with a configured sender
  std::vector<std::string> list_unknown;  ///< list segment: ids that are not eligible advisors today
  std::vector<SendNowRow> rows;
  SendNowVerdict verdict;
  nlohmann::json report;  ///< the whole plan and verdict (printed, stored as the run's plan_report)
};

/// Checks and plans a send-now (reads only). CheckFailed: the item does not exist or may not go
/// out today (withdrawn, expired, not valid yet), or the segment selects no reachable advisor.
/// The verdict may be `refused`: the caller refuses then (commit_send_now does too).
SendNowPlan prepare_send_now(store::Db& db, const Config& cfg, const SendNowRequest& req, Millis now);

/// Writes the urgent run (kind urgent), its deliveries and the audit row (target "run:ID") in
/// one transaction, re-checking the item inside it. CheckFailed when the verdict was refused or
/// the item was withdrawn meanwhile. Returns {"run_id", "deliveries", "date", "slot_at",
/// "deadline", ...}.
nlohmann::json commit_send_now(store::Db& db, const Config& cfg, SendNowPlan& plan, const SendNowRequest& req, Millis now);

/// Who will send the run: a dispatch holding a live lease (the owner), or nobody.
/// {"dispatch_running": bool, "owner": ..., "run_owner": the urgent run's owner once taken}.
nlohmann::json send_now_pickup_state(store::Db& db, std::int64_t run_id, Millis now);
/// The same on the PostgreSQL ledger ([database] url), where `run_id` is the published run:
/// a dispatch on any host sharing it adopts the urgent run as on SQLite.
nlohmann::json send_now_pickup_state_pg(store::PgConn& c, std::int64_t run_id, Millis now);

}  // namespace daybreak
