#pragma once
// Vocabulary types shared by every layer. Pure data: no I/O, no clock.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace daybreak {

/// Milliseconds since the Unix epoch, UTC. Every instant in the store and the engine is one.
using Millis = std::int64_t;
/// Microseconds: a duration, or an instant since the epoch (Clock::now_us). Used where a
/// millisecond is too coarse to measure (dispatch's lag_us).
using Micros = std::int64_t;

/// A delivery channel. The order of an advisor's preference list is the fallback order.
enum class Channel { whatsapp, email, webhook };

std::string_view to_string(Channel c);
std::optional<Channel> channel_from_string(std::string_view s);

/// Where an advisor's content for a day came from.
enum class Source { editorial, advisor, fallback, emergency, override_ };

std::string_view to_string(Source s);
std::optional<Source> source_from_string(std::string_view s);

/// The delivery state machine; docs/state_machine.md says who moves rows in and out of each.
enum class DeliveryState {
  planned,     ///< in: plan-deliveries. out: dispatch claims it (sending), operator cancels.
  sending,     ///< in: dispatch claim, committed before the request. out: outcome recorded.
  uncertain,   ///< in: restart finds `sending` under a dead owner. out: status event or grace expiry.
  retry_wait,  ///< in: transient failure. out: dispatch claims it again when next_attempt_at passes.
  accepted,    ///< in: the provider accepted the request (final for the SLA). out: status events.
  delivered,   ///< in: status event `delivered`. out: status event `read`.
  read,        ///< in: status event `read`. Final.
  dead,        ///< in: permanent failure on the last channel or retries exhausted. out: operator replay.
  cancelled,   ///< in: operator cancel of a non-final delivery. Final.
};

std::string_view to_string(DeliveryState s);
std::optional<DeliveryState> delivery_state_from_string(std::string_view s);

/// True for states a provider accepted (accepted, delivered, read).
constexpr bool is_accepted_state(DeliveryState s) {
  return s == DeliveryState::accepted || s == DeliveryState::delivered || s == DeliveryState::read;
}
/// True for states dispatch will not move any more on its own.
constexpr bool is_final_state(DeliveryState s) {
  return is_accepted_state(s) || s == DeliveryState::dead || s == DeliveryState::cancelled;
}

/// The states dispatch still has to move (the complement of is_final_state), as an SQL list
/// "'planned', 'sending', 'uncertain', 'retry_wait'" for the store's guards: one spelling.
const std::string& non_final_states_sql();
/// The states a provider accepted (is_accepted_state) as an SQL list, for the reports' counts.
const std::string& accepted_states_sql();

/// Splits "a|b|c" (or any separator) into parts, dropping empty ones and trimming blanks.
std::vector<std::string> split_list(std::string_view s, char sep);
/// Joins parts with a separator.
std::string join_list(const std::vector<std::string>& parts, char sep);

/// A recipient, as imported from advisors.csv.
struct Advisor {
  std::string advisor_id;
  std::string name;
  std::string tier;
  std::string phone;     ///< E.164, empty when none
  std::string email;     ///< empty when none
  std::string timezone;  ///< IANA name
  std::string slot;      ///< local "HH:MM"
  std::vector<Channel> channels;  ///< preference order
  bool opted_in = true;
  std::string language;
  std::vector<std::string> topics;
  std::optional<std::string> paused_from;   ///< "YYYY-MM-DD", inclusive
  std::optional<std::string> paused_until;  ///< "YYYY-MM-DD", inclusive
};

/// A piece of content, as imported from content.csv.
struct Content {
  std::string content_id;
  std::string title;
  std::string body;
  std::string language;
  std::vector<std::string> topics;
  std::string media_url;
  std::string valid_from;   ///< "YYYY-MM-DD", inclusive; empty = always
  std::string valid_until;  ///< "YYYY-MM-DD", inclusive; empty = forever
  bool fallback_eligible = false;
  bool emergency = false;
  bool withdrawn = false;
};

/// (advisor, D) → content.
struct Assignment {
  std::string advisor_id;
  std::string date;  ///< delivery day D, "YYYY-MM-DD"
  std::string content_id;
  Source source = Source::editorial;
  double score = 0;
  std::string score_parts;  ///< JSON object text, the parts of the score
  std::string reason;
};

}  // namespace daybreak
