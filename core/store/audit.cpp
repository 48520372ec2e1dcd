#include "store/audit.hpp"

namespace daybreak::store {

void AuditAppend(Db& db, const AuditEntry& e) {
  guarded("writing the audit log", [&] {
    auto& q = db.stmt(
        "INSERT INTO audit_log (at, actor, sudo_user, command, reason, target, before, after) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
    q.bind(1, static_cast<std::int64_t>(e.at));
    q.bind(2, e.actor);
    if (e.sudo_user.empty()) q.bind(3); else q.bind(3, e.sudo_user);
    q.bind(4, e.command);
    q.bind(5, e.reason);
    q.bind(6, e.target);
    if (e.before.empty()) q.bind(7); else q.bind(7, e.before);
    if (e.after.empty()) q.bind(8); else q.bind(8, e.after);
    q.exec();
  });
}

void AuditList(Db& db, const AuditListParams& p, const std::function<void(const AuditRow&)>& fn) {
  guarded("reading the audit log", [&] {
    // One statement for every filter combination: a NULL parameter switches its filter off.
    auto& q = db.stmt(
        "SELECT audit_id, at, actor, sudo_user, command, reason, target, before, after FROM audit_log "
        "WHERE (?1 IS NULL OR at >= ?1) AND (?2 IS NULL OR at < ?2) "
        "AND (?3 IS NULL OR actor = ?3 OR sudo_user = ?3) AND (?4 IS NULL OR instr(command, ?4) > 0) "
        "AND (?5 IS NULL OR target = ?5) ORDER BY at DESC, audit_id DESC LIMIT ?6");
    bind_opt(q, 1, p.since);
    bind_opt(q, 2, p.until);
    if (p.actor.empty()) q.bind(3); else q.bind(3, p.actor);
    if (p.command.empty()) q.bind(4); else q.bind(4, p.command);
    if (p.target.empty()) q.bind(5); else q.bind(5, p.target);
    q.bind(6, p.limit > 0 ? p.limit : std::int64_t{-1});
    while (q.executeStep()) {
      AuditRow r;
      r.audit_id = q.getColumn(0).getInt64();
      r.entry.at = q.getColumn(1).getInt64();
      r.entry.actor = q.getColumn(2).getString();
      r.entry.sudo_user = column_opt<std::string>(q.getColumn(3)).value_or("");
      r.entry.command = q.getColumn(4).getString();
      r.entry.reason = q.getColumn(5).getString();
      r.entry.target = q.getColumn(6).getString();
      r.entry.before = column_opt<std::string>(q.getColumn(7)).value_or("");
      r.entry.after = column_opt<std::string>(q.getColumn(8)).value_or("");
      fn(r);
    }
    q.reset();
    return 0;
  });
}

}  // namespace daybreak::store
