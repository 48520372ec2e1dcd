#pragma once
// Operator listings of advisors and content (`daybreak advisors list`, `daybreak content list`):
// filtered, streamed row by row so a list of 1,000,000 advisors needs no more memory than one.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "domain/types.hpp"
#include "store/db.hpp"

namespace daybreak::store {

/// Which advisors AdvisorListIds returns; empty fields do not filter.
struct AdvisorFilter {
  std::string tier;
  std::string channel;   ///< has this channel in its preference list
  bool paused = false;   ///< only advisors with an absence set
  std::string search;    ///< advisor_id or name contains this text (case-insensitive for ASCII)
  std::int64_t limit = 0;  ///< <= 0: all
};
/// Calls `fn` with each matching advisor id, in id order.
void AdvisorListIds(Db& db, const AdvisorFilter& f, const std::function<void(const std::string&)>& fn);

/// Which content ContentListFiltered returns.
struct ContentFilter {
  std::string language;
  std::string search;       ///< content_id or title contains this text
  bool withdrawn = false;   ///< only withdrawn items
  std::int64_t limit = 0;   ///< <= 0: all
};
/// A content row with its withdrawal record.
struct ContentInfo {
  Content content;
  std::optional<Millis> withdrawn_at;
  std::optional<std::string> withdrawn_by;
  Millis updated_at = 0;
};
/// Calls `fn` for each matching item, in id order.
void ContentListFiltered(Db& db, const ContentFilter& f, const std::function<void(const ContentInfo&)>& fn);
/// One item with its withdrawal record, or nullopt.
std::optional<ContentInfo> ContentInfoGet(Db& db, const std::string& content_id);
/// "SELECT content_id, …, withdrawn_at, withdrawn_by, updated_at FROM content ": what
/// ContentInfoGet selects (portable SQL: the PostgreSQL ledger's content table has the same
/// columns), in ContentInfo order; a WHERE clause follows.
const std::string& ContentInfoColumnsSql();

}  // namespace daybreak::store
