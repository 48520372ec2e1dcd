#include "store/catalog.hpp"

#include "store/content.hpp"

namespace daybreak::store {
namespace {

// content.hpp's columns, then the operator's: the row reader is ContentFromRow's.
const std::string kContentColumns = [] {
  std::string cols = ContentColumnsSql();
  return cols.replace(cols.find(" FROM content"), 13, ", withdrawn_by, updated_at FROM content");
}();

ContentInfo read_info(SQLite::Statement& q) {
  ContentInfo i;
  i.content = ContentFromRow(q);
  i.withdrawn_at = column_opt<Millis>(q.getColumn(10));
  i.withdrawn_by = column_opt<std::string>(q.getColumn(11));
  i.updated_at = q.getColumn(12).getInt64();
  return i;
}

}  // namespace

void AdvisorListIds(Db& db, const AdvisorFilter& f, const std::function<void(const std::string&)>& fn) {
  guarded("AdvisorListIds", [&] {
    // NULL parameters switch their filter off; channels is 'whatsapp|email', so '|' || channels || '|'
    // contains '|email|' exactly when email is one of them.
    auto& q = db.stmt(
        "SELECT advisor_id FROM advisors WHERE (?1 IS NULL OR tier = ?1) "
        "AND (?2 IS NULL OR instr('|' || channels || '|', '|' || ?2 || '|') > 0) "
        "AND (?3 = 0 OR paused_from IS NOT NULL OR paused_until IS NOT NULL) "
        "AND (?4 IS NULL OR instr(lower(advisor_id), lower(?4)) > 0 OR instr(lower(name), lower(?4)) > 0) "
        "ORDER BY advisor_id LIMIT ?5");
    if (f.tier.empty()) q.bind(1); else q.bind(1, f.tier);
    if (f.channel.empty()) q.bind(2); else q.bind(2, f.channel);
    q.bind(3, f.paused ? 1 : 0);
    if (f.search.empty()) q.bind(4); else q.bind(4, f.search);
    q.bind(5, f.limit > 0 ? f.limit : std::int64_t{-1});
    while (q.executeStep()) fn(q.getColumn(0).getString());
    q.reset();
    return 0;
  });
}

void ContentListFiltered(Db& db, const ContentFilter& f, const std::function<void(const ContentInfo&)>& fn) {
  guarded("ContentListFiltered", [&] {
    auto& q = db.stmt(kContentColumns +
                      "WHERE (?1 IS NULL OR language = ?1) "
                      "AND (?2 IS NULL OR instr(lower(content_id), lower(?2)) > 0 OR instr(lower(title), lower(?2)) > 0) "
                      "AND (?3 = 0 OR withdrawn_at IS NOT NULL) ORDER BY content_id LIMIT ?4");
    if (f.language.empty()) q.bind(1); else q.bind(1, f.language);
    if (f.search.empty()) q.bind(2); else q.bind(2, f.search);
    q.bind(3, f.withdrawn ? 1 : 0);
    q.bind(4, f.limit > 0 ? f.limit : std::int64_t{-1});
    while (q.executeStep()) fn(read_info(q));
    q.reset();
    return 0;
  });
}

const std::string& ContentInfoColumnsSql() { return kContentColumns; }

std::optional<ContentInfo> ContentInfoGet(Db& db, const std::string& content_id) {
  return guarded("ContentInfoGet", [&]() -> std::optional<ContentInfo> {
    auto& q = db.stmt(kContentColumns + "WHERE content_id = ?1");
    q.bind(1, content_id);
    if (!q.executeStep()) return std::nullopt;
    auto i = read_info(q);
    q.reset();
    return i;
  });
}

}  // namespace daybreak::store
