#include "store/content_usage.hpp"

namespace daybreak::store {

std::vector<ContentUse> ContentAssignedOnChannel(Db& db, const std::string& date, const std::string& channel) {
  return guarded("ContentAssignedOnChannel", [&] {
    auto& q = db.stmt(
        "SELECT c.content_id, c.language, c.media_url, COUNT(*) FROM assignments a "
        "JOIN advisors v ON v.advisor_id = a.advisor_id JOIN content c ON c.content_id = a.content_id "
        "WHERE a.date = ?1 AND v.opted_in = 1 AND instr('|' || v.channels || '|', '|' || ?2 || '|') > 0 "
        "GROUP BY c.content_id ORDER BY c.content_id");
    q.bind(1, date);
    q.bind(2, channel);
    std::vector<ContentUse> out;
    while (q.executeStep()) {
      out.push_back({q.getColumn(0).getString(), q.getColumn(1).getString(), q.getColumn(2).getString(),
                     q.getColumn(3).getInt64()});
    }
    return out;
  });
}

}  // namespace daybreak::store
