#pragma once
// Query module for the `advisors` and `advisor_channels` tables (STYLE.md item 9: one module per
// table, noun-then-verb names, statements prepared once through Db::stmt).
//
// An advisor's addresses live in advisor_channels, one row per channel in its preference list:
// whatsapp → the E.164 phone, email → the email address, webhook → the advisor_id (the webhook
// integration identifies the advisor, not an address). Each row carries its own opt-in so a
// single channel can be switched off later; an import sets every row to the advisor's opted_in.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "domain/types.hpp"
#include "store/db.hpp"

namespace daybreak::store {

/// One of an advisor's channels with the address it delivers to.
struct AdvisorChannel {
  Channel channel = Channel::whatsapp;  ///< which channel
  std::string address;  ///< E.164 phone, email address, or advisor_id for webhook
  bool opted_in = true;  ///< this channel may be used
};

/// An advisor as stored, with its channel rows in preference order.
struct AdvisorRow {
  /// The advisor; `channels` is the whole stored preference list, `phone`/`email` come from the
  /// channel rows (empty when the advisor has no such channel).
  Advisor advisor;
  /// Channel rows in the advisor's preference order. AdvisorListEligible returns only the
  /// opted-in ones; AdvisorGet returns all.
  std::vector<AdvisorChannel> channels;
  Millis updated_at = 0;  ///< when the advisors row last changed
};

/// What AdvisorUpsert writes.
struct AdvisorUpsertParams {
  Advisor advisor;        ///< validated (domain/validate.hpp); paused_from/until are ignored
  Millis updated_at = 0;  ///< the caller's clock: core never reads the wall clock
};

/// Inserts the advisor or updates it in place, and makes its channel rows match its channel list
/// (adding, updating and deleting rows). An absence (paused_from/until) set by an operator is
/// kept. Rows whose values did not change are not rewritten, so a re-import of the same file
/// changes nothing, updated_at included. Call inside Db::write_tx.
void AdvisorUpsert(Db& db, const AdvisorUpsertParams& p);

/// Bulk import, in two steps so the ledger's write lock is held only for the second:
/// AdvisorStageReset empties (creating them the first time) two TEMP tables private to this
/// connection, AdvisorStage adds one validated advisor to them -- both touch only the temp
/// database, so they take no lock on the ledger; call AdvisorStage inside a plain BEGIN/COMMIT
/// of a few thousand rows at a time -- and AdvisorApplyStaged writes every staged advisor with one
/// statement per table, with exactly AdvisorUpsert's effect for each (unchanged rows not
/// rewritten, pauses kept, channel rows made to match). Call AdvisorApplyStaged inside
/// Db::write_tx; it returns how many advisors were staged.
void AdvisorStageReset(Db& db);
/// See AdvisorStageReset. The advisor must not be staged already (imports reject duplicate ids).
void AdvisorStage(Db& db, const Advisor& a);
/// See AdvisorStageReset. Drops from the staging every advisor already stored exactly as staged
/// (advisors row and channel rows), so that the write transaction has only real changes to make:
/// a daily re-import of a mostly unchanged file then holds the write lock for milliseconds. Call
/// outside any transaction (it reads the ledger in short autocommit statements). Returns how many
/// advisors were dropped. An advisor changed by someone else after this comparison keeps that
/// change, as if the import had run first.
std::int64_t AdvisorStagePruneUnchanged(Db& db);
/// See AdvisorStageReset. Returns how many advisors were staged (and not pruned).
std::int64_t AdvisorApplyStaged(Db& db, Millis updated_at);

/// The advisor with all its channel rows, or nullopt when there is none.
std::optional<AdvisorRow> AdvisorGet(Db& db, const std::string& advisor_id);

/// True when an advisor with this id is stored (cheaper than AdvisorGet).
bool AdvisorExists(Db& db, const std::string& advisor_id);

/// Advisors who should receive something on delivery day `date` ("YYYY-MM-DD"): opted in, not
/// paused on that date (paused_from ≤ date ≤ paused_until, either bound open when NULL), and with
/// at least one opted-in channel. Each row's `channels` holds only its opted-in channels, in
/// preference order. Ordered by advisor_id, so callers and re-plans see a stable order.
std::vector<AdvisorRow> AdvisorListEligible(Db& db, const std::string& date);

/// One eligible advisor as the planner needs it: plan-deliveries reads a million of these, so
/// only the columns it uses, with the day's assignment joined.
struct PlanCandidate {
  std::string advisor_id, tier, timezone, slot;
  std::string language;             ///< the advisor's language (daybreak send-now's language: segment)
  std::vector<Channel> preference;  ///< the stored preference list
  std::uint8_t opted = 0;           ///< bit (1 << Channel) per opted-in channel of that list
  std::optional<std::string> content_id;  ///< the assignment for the day, when there is one
  std::string source;                     ///< its source
  [[nodiscard]] bool opted_in(Channel c) const { return (opted >> static_cast<unsigned>(c)) & 1U; }
};
/// Advisors whose advisor_id is in [from, to) (BINARY order, as SQLite sorts TEXT); an absent
/// bound is open.
struct AdvisorIdRange {
  std::optional<std::string> from, to;
};
/// The advisors AdvisorListEligible returns for `date` (same rule), one at a time in advisor_id order,
/// those of `range` only. With `by_language`, also counts per language every advisor of the range
/// the SQL rule admits (opted in, an opted-in channel row, not paused), whether or not that channel
/// is in its own list: the advisors EmergencyCoverage counts, from the same pass.
void PlanCandidatesForDate(Db& db, const std::string& date, const std::function<void(PlanCandidate&&)>& fn,
                           std::map<std::string, std::int64_t>* by_language = nullptr, const AdvisorIdRange& range = {});

/// The advisor_id at `position` (0-based) among the stored advisors in advisor_id order (nullopt
/// past the last): at AdvisorCount / 2, where two readers of PlanCandidatesForDate split the table.
std::optional<std::string> AdvisorIdAt(Db& db, std::int64_t position);

/// The advisors AdvisorListEligible returns for `date` (same rule, same order), with only what
/// the fallback ranker reads: advisor_id, channels, language and topics (name, tier, time zone,
/// slot, pause, phone and e-mail are left empty). A million full rows cost assign-fallback
/// seconds of allocation and copying it never used.
std::vector<Advisor> AdvisorListEligibleForRanking(Db& db, const std::string& date);

/// AdvisorListEligibleForRanking one advisor at a time, without holding them all: each is passed
/// to `fn` as soon as its rows are read, in the same order. The Advisor passed is reused for the
/// next one (its strings keep their buffers), so `fn` copies what it keeps. Returns how many
/// were passed. assign-fallback ranks each as it is read: a million Advisor rows held at once
/// were about half a gigabyte of its peak memory at 1M.
std::size_t AdvisorEachEligibleForRanking(Db& db, const std::string& date, const std::function<void(const Advisor&)>& fn);

/// Number of stored advisors.
std::int64_t AdvisorCount(Db& db);

}  // namespace daybreak::store
