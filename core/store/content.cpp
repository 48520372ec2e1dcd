#include "store/content.hpp"

namespace daybreak::store {
namespace {

constexpr const char* kUpsertContent = R"sql(
INSERT INTO content (content_id, title, body, language, topics, media_url, valid_from, valid_until,
                     fallback_eligible, emergency, updated_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
ON CONFLICT (content_id) DO UPDATE SET
  title = excluded.title, body = excluded.body, language = excluded.language, topics = excluded.topics,
  media_url = excluded.media_url, valid_from = excluded.valid_from, valid_until = excluded.valid_until,
  fallback_eligible = excluded.fallback_eligible, emergency = excluded.emergency, updated_at = excluded.updated_at
WHERE title IS NOT excluded.title OR body IS NOT excluded.body OR language IS NOT excluded.language
   OR topics IS NOT excluded.topics OR media_url IS NOT excluded.media_url
   OR valid_from IS NOT excluded.valid_from OR valid_until IS NOT excluded.valid_until
   OR fallback_eligible IS NOT excluded.fallback_eligible OR emergency IS NOT excluded.emergency
)sql";

constexpr const char* kColumns =
    "SELECT content_id, title, body, language, topics, media_url, valid_from, valid_until, fallback_eligible, "
    "emergency, withdrawn_at FROM content ";

// Valid on ?1: empty bounds are open; 'YYYY-MM-DD' text compares in date order.
constexpr const char* kValidOn =
    "withdrawn_at IS NULL AND (valid_from = '' OR valid_from <= ?1) AND (valid_until = '' OR ?1 <= valid_until) ";

}  // namespace

Content ContentFromRow(SQLite::Statement& q) {
  Content c;
  c.content_id = q.getColumn(0).getString();
  c.title = q.getColumn(1).getString();
  c.body = q.getColumn(2).getString();
  c.language = q.getColumn(3).getString();
  c.topics = split_list(q.getColumn(4).getString(), ';');
  c.media_url = q.getColumn(5).getString();
  c.valid_from = q.getColumn(6).getString();
  c.valid_until = q.getColumn(7).getString();
  c.fallback_eligible = q.getColumn(8).getInt() != 0;
  c.emergency = q.getColumn(9).getInt() != 0;
  c.withdrawn = !q.getColumn(10).isNull();
  return c;
}

const char* ContentColumnsSql() { return kColumns; }

namespace {

Content read_content(SQLite::Statement& q) { return ContentFromRow(q); }

std::vector<Content> list(Db& db, const std::string& sql, const std::string& date) {
  std::vector<Content> out;
  auto& q = db.stmt(sql);
  q.bind(1, date);
  while (q.executeStep()) out.push_back(read_content(q));
  return out;
}

}  // namespace

void ContentUpsert(Db& db, const ContentUpsertParams& p) {
  guarded("storing content", [&] {
    const Content& c = p.content;
    const std::string topics = join_list(c.topics, ';');
    auto& q = db.stmt(kUpsertContent);
    q.bindNoCopy(1, c.content_id);
    q.bindNoCopy(2, c.title);
    q.bindNoCopy(3, c.body);
    q.bindNoCopy(4, c.language);
    q.bindNoCopy(5, topics);
    q.bindNoCopy(6, c.media_url);
    q.bindNoCopy(7, c.valid_from);
    q.bindNoCopy(8, c.valid_until);
    q.bind(9, c.fallback_eligible ? 1 : 0);
    q.bind(10, c.emergency ? 1 : 0);
    q.bind(11, static_cast<std::int64_t>(p.updated_at));
    q.exec();
  });
}

std::optional<Content> ContentGet(Db& db, const std::string& content_id) {
  return guarded("reading content", [&]() -> std::optional<Content> {
    auto& q = db.stmt(std::string(kColumns) + "WHERE content_id = ?1");
    q.bind(1, content_id);
    if (!q.executeStep()) return std::nullopt;
    Content c = read_content(q);
    q.reset();  // end the statement's read so it does not pin a WAL snapshot
    return c;
  });
}

std::vector<Content> ContentListFallbackPool(Db& db, const std::string& date) {
  return guarded("listing the fallback pool", [&] {
    return list(db, std::string(kColumns) + "WHERE fallback_eligible = 1 AND " + kValidOn + "ORDER BY content_id", date);
  });
}

std::vector<Content> ContentListEmergencyPool(Db& db, const std::string& date) {
  return guarded("listing the emergency pool", [&] {
    return list(db, std::string(kColumns) + "WHERE emergency = 1 AND " + kValidOn + "ORDER BY content_id", date);
  });
}

std::vector<Content> ContentListEmergency(Db& db) {
  return guarded("listing emergency content", [&] {
    std::vector<Content> out;
    auto& q = db.stmt(std::string(kColumns) + "WHERE emergency = 1 AND withdrawn_at IS NULL ORDER BY content_id");
    while (q.executeStep()) out.push_back(read_content(q));
    return out;
  });
}

std::vector<Content> ContentListForRun(Db& db, std::int64_t run_id) {
  return guarded("listing a run's content", [&] {
    std::vector<Content> out;
    auto& q = db.stmt(std::string(kColumns) +
                      "WHERE content_id IN (SELECT DISTINCT content_id FROM deliveries WHERE run_id = ?1) ORDER BY content_id");
    q.bind(1, run_id);
    while (q.executeStep()) out.push_back(read_content(q));
    return out;
  });
}

std::vector<std::string> ContentListWithdrawnIds(Db& db) {
  return guarded("listing withdrawn content", [&] {
    std::vector<std::string> out;
    auto& q = db.stmt("SELECT content_id FROM content WHERE withdrawn_at IS NOT NULL ORDER BY content_id");
    while (q.executeStep()) out.push_back(q.getColumn(0).getString());
    return out;
  });
}

std::int64_t ContentCount(Db& db) {
  return guarded("counting content", [&] {
    auto& q = db.stmt("SELECT COUNT(*) FROM content");
    q.executeStep();
    std::int64_t n = q.getColumn(0).getInt64();
    q.reset();
    return n;
  });
}

}  // namespace daybreak::store
