#include "store/alerts.hpp"

namespace daybreak::store {
namespace {

constexpr const char* kAlertColumns =
    "alert_id, rule, subject, state, level, message, fired_at, updated_at, resolved_at, acknowledged_by, acknowledged_at";

Alert read_alert(SQLite::Statement& q) {
  Alert a;
  a.alert_id = q.getColumn(0).getInt64();
  a.rule = q.getColumn(1).getString();
  a.subject = q.getColumn(2).getString();
  a.state = q.getColumn(3).getString();
  a.level = q.getColumn(4).getInt();
  a.message = q.getColumn(5).getString();
  a.fired_at = q.getColumn(6).getInt64();
  a.updated_at = q.getColumn(7).getInt64();
  a.resolved_at = column_opt<Millis>(q.getColumn(8));
  a.acknowledged_by = column_opt<std::string>(q.getColumn(9));
  a.acknowledged_at = column_opt<Millis>(q.getColumn(10));
  return a;
}

constexpr const char* kNotificationColumns =
    "notification_id, alert_id, event, level, sink, target, body, attempts, next_attempt_at, sent_at, failed_at, "
    "last_error, created_at";

AlertNotification read_notification(SQLite::Statement& q) {
  AlertNotification n;
  n.notification_id = q.getColumn(0).getInt64();
  n.alert_id = q.getColumn(1).getInt64();
  n.event = q.getColumn(2).getString();
  n.level = q.getColumn(3).getInt();
  n.sink = q.getColumn(4).getString();
  n.target = q.getColumn(5).getString();
  n.body = q.getColumn(6).getString();
  n.attempts = q.getColumn(7).getInt();
  n.next_attempt_at = q.getColumn(8).getInt64();
  n.sent_at = column_opt<Millis>(q.getColumn(9));
  n.failed_at = column_opt<Millis>(q.getColumn(10));
  n.last_error = column_opt<std::string>(q.getColumn(11));
  n.created_at = q.getColumn(12).getInt64();
  return n;
}

}  // namespace

std::vector<Alert> AlertListFiring(Db& db) {
  return guarded("AlertListFiring", [&] {
    auto& q = db.stmt(std::string("SELECT ") + kAlertColumns + " FROM alerts WHERE state = 'firing' ORDER BY alert_id");
    std::vector<Alert> out;
    while (q.executeStep()) out.push_back(read_alert(q));
    return out;
  });
}

std::vector<Alert> AlertListRecent(Db& db, int limit) {
  return guarded("AlertListRecent", [&] {
    auto& q = db.stmt(std::string("SELECT ") + kAlertColumns + " FROM alerts ORDER BY alert_id DESC LIMIT ?");
    q.bind(1, limit);
    std::vector<Alert> out;
    while (q.executeStep()) out.push_back(read_alert(q));
    return out;
  });
}

std::optional<Alert> AlertGet(Db& db, std::int64_t alert_id) {
  return guarded("AlertGet", [&]() -> std::optional<Alert> {
    auto& q = db.stmt(std::string("SELECT ") + kAlertColumns + " FROM alerts WHERE alert_id = ?");
    q.bind(1, alert_id);
    if (!q.executeStep()) return std::nullopt;
    Alert a = read_alert(q);
    q.reset();
    return a;
  });
}

std::int64_t AlertCountFiring(Db& db) {
  return guarded("AlertCountFiring", [&] {
    auto& q = db.stmt("SELECT COUNT(*) FROM alerts WHERE state = 'firing'");
    q.executeStep();
    std::int64_t n = q.getColumn(0).getInt64();
    q.reset();
    return n;
  });
}

std::int64_t AlertInsert(Db& db, const std::string& rule, const std::string& subject, const std::string& message, Millis now) {
  return guarded("AlertInsert", [&] {
    auto& q = db.stmt(
        "INSERT INTO alerts(rule, subject, state, level, message, fired_at, updated_at) "
        "VALUES (?, ?, 'firing', 0, ?, ?, ?)");
    q.bind(1, rule);
    q.bind(2, subject);
    q.bind(3, message);
    q.bind(4, now);
    q.bind(5, now);
    q.exec();
    return db.raw().getLastInsertRowid();
  });
}

void AlertUpdateMessage(Db& db, std::int64_t alert_id, const std::string& message, Millis now) {
  guarded("AlertUpdateMessage", [&] {
    auto& q = db.stmt("UPDATE alerts SET message = ?, updated_at = ? WHERE alert_id = ? AND state = 'firing'");
    q.bind(1, message);
    q.bind(2, now);
    q.bind(3, alert_id);
    q.exec();
  });
}

void AlertResolve(Db& db, std::int64_t alert_id, const std::string& message, Millis now) {
  guarded("AlertResolve", [&] {
    auto& q = db.stmt(
        "UPDATE alerts SET state = 'resolved', message = ?, updated_at = ?, resolved_at = ? "
        "WHERE alert_id = ? AND state = 'firing'");
    q.bind(1, message);
    q.bind(2, now);
    q.bind(3, now);
    q.bind(4, alert_id);
    q.exec();
  });
}

void AlertSetLevel(Db& db, std::int64_t alert_id, int level, Millis now) {
  guarded("AlertSetLevel", [&] {
    auto& q = db.stmt(
        "UPDATE alerts SET level = ?, updated_at = ? WHERE alert_id = ? AND state = 'firing' AND acknowledged_at IS NULL");
    q.bind(1, level);
    q.bind(2, now);
    q.bind(3, alert_id);
    q.exec();
  });
}

bool AlertAcknowledge(Db& db, std::int64_t alert_id, const std::string& who, Millis now) {
  return guarded("AlertAcknowledge", [&] {
    auto& q = db.stmt(
        "UPDATE alerts SET acknowledged_by = ?, acknowledged_at = ?, updated_at = ? "
        "WHERE alert_id = ? AND state = 'firing' AND acknowledged_at IS NULL");
    q.bind(1, who);
    q.bind(2, now);
    q.bind(3, now);
    q.bind(4, alert_id);
    return q.exec() == 1;
  });
}

std::int64_t NotificationEnqueue(Db& db, const AlertNotification& n) {
  return guarded("NotificationEnqueue", [&] {
    auto& q = db.stmt(
        "INSERT INTO alert_notifications(alert_id, event, level, sink, target, body, attempts, next_attempt_at, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)");
    q.bind(1, n.alert_id);
    q.bind(2, n.event);
    q.bind(3, n.level);
    q.bind(4, n.sink);
    q.bind(5, n.target);
    q.bind(6, n.body);
    q.bind(7, n.next_attempt_at);
    q.bind(8, n.created_at);
    q.exec();
    return db.raw().getLastInsertRowid();
  });
}

std::vector<AlertNotification> NotificationListDue(Db& db, Millis now, int limit) {
  return guarded("NotificationListDue", [&] {
    auto& q = db.stmt(std::string("SELECT ") + kNotificationColumns +
                      " FROM alert_notifications WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= ? "
                      "ORDER BY notification_id LIMIT ?");
    q.bind(1, now);
    q.bind(2, limit);
    std::vector<AlertNotification> out;
    while (q.executeStep()) out.push_back(read_notification(q));
    return out;
  });
}

std::vector<AlertNotification> NotificationListForAlert(Db& db, std::int64_t alert_id) {
  return guarded("NotificationListForAlert", [&] {
    auto& q = db.stmt(std::string("SELECT ") + kNotificationColumns +
                      " FROM alert_notifications WHERE alert_id = ? ORDER BY notification_id");
    q.bind(1, alert_id);
    std::vector<AlertNotification> out;
    while (q.executeStep()) out.push_back(read_notification(q));
    return out;
  });
}

std::int64_t NotificationCountPending(Db& db) {
  return guarded("NotificationCountPending", [&] {
    auto& q = db.stmt("SELECT COUNT(*) FROM alert_notifications WHERE sent_at IS NULL AND failed_at IS NULL");
    q.executeStep();
    std::int64_t n = q.getColumn(0).getInt64();
    q.reset();
    return n;
  });
}

void NotificationMarkSent(Db& db, std::int64_t id, int attempts, Millis now) {
  guarded("NotificationMarkSent", [&] {
    auto& q = db.stmt("UPDATE alert_notifications SET sent_at = ?, attempts = ?, last_error = NULL WHERE notification_id = ?");
    q.bind(1, now);
    q.bind(2, attempts);
    q.bind(3, id);
    q.exec();
  });
}

void NotificationMarkFailed(Db& db, std::int64_t id, int attempts, const std::string& error, Millis next_attempt_at,
                            bool give_up, Millis now) {
  guarded("NotificationMarkFailed", [&] {
    auto& q = db.stmt(
        "UPDATE alert_notifications SET attempts = ?, last_error = ?, next_attempt_at = ?, failed_at = ? "
        "WHERE notification_id = ?");
    q.bind(1, attempts);
    q.bind(2, error);
    q.bind(3, next_attempt_at);
    if (give_up) q.bind(4, now); else q.bind(4);
    q.bind(5, id);
    q.exec();
  });
}

}  // namespace daybreak::store
