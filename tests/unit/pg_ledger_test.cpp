// PgDispatchLedger against a real PostgreSQL started for the test (pg_server.hpp): the schema is
// applied at connect (and only once), migrate-ledger copies a SQLite day with its ids, the run's
// lease keeps a second owner out while live and passes to it once expired, a claim commits only
// under a lease its owner holds, a run never closes with a row not final, and a lost
// connection is a transient failure the next transaction recovers from.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <cstddef>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>

#include "app/schedule.hpp"
#include "config/config.hpp"
#include "db_fixture.hpp"
#include "engine/writer.hpp"
#include "pg_fixture.hpp"
#include "store/db.hpp"
#include "store/migrations.hpp"
#include "store/pg_ledger.hpp"
#include "store/reports.hpp"

namespace daybreak {
namespace {

constexpr Millis kPgT0 = 1'795'825'800'000;  // 2026-11-28 06:00 IST

class PgLedgerTest : public test_support::PgDbTest {
 protected:
  PgLedgerTest() : test_support::PgDbTest("pgledger") {}
  /// `rows` planned WhatsApp deliveries in run 1 of the SQLite ledger, copied into PostgreSQL.
  void seed(int rows) {
    ASSERT_EQ(test_support::add_content_and_run((*db_), kPgT0 - 3'600'000), 1);
    (*db_).write_tx([&] {
      for (int i = 0; i < rows; ++i) {
        std::string id = "adv-" + std::to_string(i);
        test_support::add_whatsapp_advisor((*db_), id, kPgT0 - 3'600'000);
        ASSERT_TRUE(store::DeliveryInsert((*db_), test_support::planned_delivery(1, id, "2026-11-28", kPgT0, kPgT0, kPgT0 - 3'600'000)));
      }
    });
    test_support::set_run_window((*db_), 1, kPgT0);
    store::migrate_ledger_to_pg(db_path(), url_, "2026-11-28");
  }
  std::int64_t count(const std::string& sql) { return store::PgConn(url_).query(sql).i64(0, 0); }
  std::vector<std::int64_t> ids() {
    std::vector<std::int64_t> out;
    auto r = store::PgConn(url_).query("SELECT delivery_id FROM deliveries ORDER BY delivery_id");
    for (int i = 0; i < r.rows(); ++i) out.push_back(r.i64(i, 0));
    return out;
  }
};

TEST_F(PgLedgerTest, SchemaIsAppliedAtConnectOnce) {
  store::PgDispatchLedger a(url_, "a", true);
  store::PgDispatchLedger b(url_, "b", true);  // a second host connecting: nothing applied twice
  EXPECT_EQ(count("SELECT COUNT(*) FROM schema_migrations"), static_cast<std::int64_t>(store::embedded_pg_migrations().size()));
  EXPECT_EQ(store::pg_migrate(a.conn()), store::embedded_pg_migrations().back().version);
  EXPECT_EQ(count("SELECT COUNT(*) FROM runs"), 0);
}

TEST_F(PgLedgerTest, MigrateLedgerCopiesTheDayWithItsIdsAndIsIdempotent) {
  seed(5);
  EXPECT_EQ(count("SELECT COUNT(*) FROM deliveries WHERE run_id = 1 AND state = 'planned'"), 5);
  EXPECT_EQ(count("SELECT COUNT(*) FROM advisors"), 5);
  EXPECT_EQ(count("SELECT COUNT(*) FROM advisor_channels WHERE address = '+919810012345'"), 5);
  EXPECT_EQ(count("SELECT COUNT(*) FROM content WHERE content_id = 'C1'"), 1);
  // Copied again: nothing doubles.
  auto again = store::migrate_ledger_to_pg(db_path(), url_, "2026-11-28");
  for (const auto& [t, n] : again.tables) EXPECT_EQ(n, 0) << t;
  // The sequences moved past the copied ids: a new run gets the next id.
  EXPECT_EQ(count("INSERT INTO runs(date, slot_at, window_start, window_end, deadline_at) VALUES ('2026-11-29', 1, 1, 1, 1) RETURNING run_id"), 2);
  store::PgDispatchLedger l(url_, "reader");
  std::vector<store::DeliveryRow> rows;
  l.for_each_delivery(1, [&](store::DeliveryRow&& r) { rows.push_back(std::move(r)); });
  ASSERT_EQ(rows.size(), 5u);
  EXPECT_EQ(rows[0].phone, "+919810012345");
  EXPECT_EQ(rows[0].planned_at, kPgT0);
  EXPECT_EQ(l.load_run_content(1).size(), 1u);
}

TEST_F(PgLedgerTest, LeaseKeepsASecondOwnerOutUntilItExpiresAndClaimsNeedTheLease) {
  seed(4);
  const Millis lease = 10'000;
  store::PgDispatchLedger a(url_, "host-a:1:x");
  store::PgDispatchLedger b(url_, "host-b:2:y");
  auto la = a.acquire_lease(1, kPgT0, lease);
  EXPECT_TRUE(la.acquired);
  EXPECT_FALSE(la.took_over);
  auto lb = b.acquire_lease(1, kPgT0 + 1000, lease);
  EXPECT_FALSE(lb.acquired);
  EXPECT_EQ(lb.previous_owner.value_or(""), "host-a:1:x");

  const auto all = ids();
  // A claims two rows under its lease.
  a.begin();
  auto claims = std::get<std::vector<store::ClaimResult>>(a.apply(store::ledger_op::Claim{{all[0], all[1]}, kPgT0, kPgT0 + 60'000}));
  a.commit();
  ASSERT_EQ(claims.size(), 2u);
  EXPECT_TRUE(claims[0].ok && claims[1].ok);
  // B holds no lease: its claim takes nothing and reports the row as it is.
  b.begin();
  auto bc = std::get<std::vector<store::ClaimResult>>(b.apply(store::ledger_op::Claim{{all[0], all[2]}, kPgT0, kPgT0 + 60'000}));
  b.commit();
  ASSERT_EQ(bc.size(), 2u);
  EXPECT_FALSE(bc[0].ok);
  ASSERT_TRUE(bc[0].now_row);
  EXPECT_EQ(bc[0].now_row->state, DeliveryState::sending);
  EXPECT_EQ(bc[0].now_row->claim_owner.value_or(""), "host-a:1:x");
  EXPECT_FALSE(bc[1].ok);
  EXPECT_EQ(count("SELECT COUNT(*) FROM deliveries WHERE state = 'sending'"), 2);

  // A dies (no heartbeat); once its lease has expired B takes the run over.
  auto lt = b.acquire_lease(1, kPgT0 + lease + 1, lease);
  EXPECT_TRUE(lt.acquired);
  EXPECT_TRUE(lt.took_over);
  EXPECT_EQ(lt.previous_owner.value_or(""), "host-a:1:x");
  // A's rows left `sending` become uncertain for B (never sent blindly again).
  auto rec = b.reconcile_crashed(1, kPgT0 + lease + 2);
  EXPECT_EQ(rec.uncertain, 2);
  // A, back from a stall, has lost the lease: no claim, and its heartbeat says so.
  a.begin();
  auto late = std::get<std::vector<store::ClaimResult>>(a.apply(store::ledger_op::Claim{{all[2]}, kPgT0 + lease + 3, kPgT0 + 90'000}));
  auto hb = std::get<store::HeartbeatResult>(a.apply(store::ledger_op::Heartbeat{{{1, "{}"}}, kPgT0 + lease + 3, lease}));
  a.commit();
  EXPECT_FALSE(late[0].ok);
  EXPECT_FALSE(hb.lease_ok);
  // B's heartbeat renews its lease.
  b.begin();
  EXPECT_TRUE(std::get<store::HeartbeatResult>(b.apply(store::ledger_op::Heartbeat{{{1, "{}"}}, kPgT0 + lease + 4, lease})).lease_ok);
  b.commit();
}

TEST_F(PgLedgerTest, RunClosesOnlyWhenEveryRowIsFinal) {
  seed(2);
  store::PgDispatchLedger a(url_, "a");
  ASSERT_TRUE(a.acquire_lease(1, kPgT0, 10'000).acquired);
  const auto all = ids();
  a.begin();
  a.apply(store::ledger_op::Claim{{all[0]}, kPgT0, kPgT0 + 60'000});
  store::DeliveryUpdateParams u;
  u.delivery_id = all[0];
  u.state = DeliveryState::accepted;
  u.channel = "whatsapp";
  u.sender = "wa-1";
  u.attempts = 1;
  u.sent_at = kPgT0;
  u.provider_message_id = "wamid.1";
  u.accepted_at = kPgT0 + 100;
  u.now = kPgT0 + 100;
  a.apply(store::ledger_op::Outcome{u});
  a.savepoint();
  a.apply(store::ledger_op::Attempt{{all[0], 1, "whatsapp", "wa-1", kPgT0, kPgT0 + 100, "accepted", "", "", "wamid.1", 100, "", false, ""}});
  a.rollback_to_savepoint();  // undone: no attempt row
  auto c = std::get<store::CloseResult>(a.apply(store::ledger_op::CloseRun{1, kPgT0 + 200, "{}"}));
  a.commit();
  EXPECT_FALSE(c.closed);
  EXPECT_EQ(c.open_rows, 1);
  EXPECT_EQ(count("SELECT COUNT(*) FROM delivery_attempts"), 0);
  EXPECT_EQ(count("SELECT COUNT(*) FROM runs WHERE state = 'running' AND owner IS NULL"), 1);  // released
  // The other row made final (given up without a send): now it closes.
  ASSERT_TRUE(a.acquire_lease(1, kPgT0 + 300, 10'000).acquired);
  a.begin();
  store::DeliveryUpdateParams d;
  d.delivery_id = all[1];
  d.state = DeliveryState::dead;
  d.channel = "whatsapp";
  d.sender = "wa-1";
  d.last_error = "deadline passed";
  d.now = kPgT0 + 300;
  a.apply(store::ledger_op::Outcome{d, true, kPgT0 + 60'000});
  c = std::get<store::CloseResult>(a.apply(store::ledger_op::CloseRun{1, kPgT0 + 400, "{}"}));
  a.commit();
  EXPECT_TRUE(c.closed);
  EXPECT_EQ(count("SELECT COUNT(*) FROM runs WHERE state = 'closed' AND owner IS NULL"), 1);
  EXPECT_EQ(count("SELECT COUNT(*) FROM deliveries WHERE state = 'dead' AND last_error = 'deadline passed'"), 1);
}

// A server that takes the TCP connection and never answers (a hung host, a full backlog): the
// connect gives up after daybreak's default connect_timeout (5 s) with a transient error, so
// the writer retries and store_unwritable can fire; a connect_timeout in the URL wins. libpq's
// own default is to wait for ever.
/// A TCP socket bound to a free port of 127.0.0.1 (in `a`), not listening yet.
int bound_loopback_socket(sockaddr_in& a) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_GE(fd, 0);
  a = sockaddr_in{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
  return fd;
}

TEST(PgConnTimeouts, AServerThatNeverAnswersFailsTheConnectWithinTheTimeout) {
  sockaddr_in a{};
  int fd = bound_loopback_socket(a);
  ASSERT_EQ(::listen(fd, 8), 0);  // connections complete in the kernel; nothing ever reads them
  const std::string base = "postgresql://daybreak@127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/daybreak";
  auto seconds_to_fail = [](const std::string& url) {
    const auto t0 = std::chrono::steady_clock::now();
    try {
      store::PgConn c(url);
      ADD_FAILURE() << "connected to a server that never answers";
    } catch (const store::StoreError& e) {
      EXPECT_TRUE(store::is_transient_error(e)) << e.what();
    }
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  const double by_default = seconds_to_fail(base);
  EXPECT_GE(by_default, 4.0);
  EXPECT_LE(by_default, 8.0);
  const double from_url = seconds_to_fail(base + "?connect_timeout=2");
  EXPECT_GE(from_url, 1.5);
  EXPECT_LE(from_url, 4.0);
  ::close(fd);
}

// A connect refused on this host itself (connect(2) failing with EPERM, as systemd's
// IPAddressDeny=any in daybreak-callbacks.service makes it for a PostgreSQL on another machine):
// the error says where to allow the address. A child process makes connect(2) fail so with a
// seccomp filter, so the message is libpq's own; a server that refuses (ECONNREFUSED) gets no hint.
TEST(PgConnTimeouts, AConnectRefusedOnThisHostSaysWhereToAllowTheAddress) {
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(pipefd[0]);
    sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_connect, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    sock_fprog prog{static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
    std::string out;
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
      out = "no seccomp";
    } else {
      try {
        store::PgConn c("postgresql://daybreak@192.0.2.10:5432/daybreak");
        out = "connected";
      } catch (const std::exception& e) {
        out = e.what();
      }
    }
    (void)!::write(pipefd[1], out.data(), out.size());
    ::_exit(0);
  }
  ::close(pipefd[1]);
  std::string got;
  char buf[4096];
  for (ssize_t n; (n = ::read(pipefd[0], buf, sizeof buf)) > 0;) got.append(buf, static_cast<std::size_t>(n));
  ::close(pipefd[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  if (got == "no seccomp") GTEST_SKIP() << "seccomp filters are not available here";
  EXPECT_NE(got.find("Operation not permitted"), std::string::npos) << got;
  EXPECT_NE(got.find("IPAddressAllow=ADDRESS"), std::string::npos) << got;
  EXPECT_NE(got.find("systemctl edit"), std::string::npos) << got;

  // A port nobody listens on: refused by the peer, no hint.
  sockaddr_in a{};
  ::close(bound_loopback_socket(a));  // the port is free again: a connect to it is refused
  try {
    store::PgConn c("postgresql://daybreak@127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/daybreak");
    ADD_FAILURE() << "connected to a closed port";
  } catch (const store::StoreError& e) {
    EXPECT_EQ(std::string(e.what()).find("IPAddressAllow"), std::string::npos) << e.what();
  }
  EXPECT_EQ(store::pg_connect_hint("connection to server at \"10.0.0.5\", port 5432 failed: Connection refused"), "");
}

TEST_F(PgLedgerTest, ALostConnectionIsTransientAndTheNextTransactionReconnects) {
  seed(1);
  store::PgDispatchLedger a(url_, "a");
  ASSERT_TRUE(a.acquire_lease(1, kPgT0, 10'000).acquired);
  a.begin();
  auto pid = a.conn().query("SELECT pg_backend_pid()").i64(0, 0);
  store::PgConn(url_).query("SELECT pg_terminate_backend($1)", {std::to_string(pid)});
  try {
    a.apply(store::ledger_op::Heartbeat{{{1, "{}"}}, kPgT0 + 1, 10'000});
    ADD_FAILURE() << "a heartbeat on a terminated connection succeeded";
  } catch (const store::StoreError& e) {
    EXPECT_TRUE(store::is_transient_error(e)) << e.what();
  }
  a.rollback();
  a.begin();  // reconnects
  EXPECT_TRUE(std::get<store::HeartbeatResult>(a.apply(store::ledger_op::Heartbeat{{{1, "{}"}}, kPgT0 + 2, 10'000})).lease_ok);
  a.commit();
  // A constraint failure is permanent.
  a.begin();
  try {
    a.apply(store::ledger_op::Attempt{{999999, 1, "whatsapp", "wa-1", kPgT0, kPgT0, "accepted", "", "", "", 0, "", false, ""}});
    ADD_FAILURE() << "an attempt for a missing delivery was stored";
  } catch (const store::StoreError& e) {
    EXPECT_FALSE(store::is_transient_error(e)) << e.what();
  }
  a.rollback();
}

/// The batch writer on PostgreSQL, as dispatch drives it: claims of 100 rows, then per row an
/// outcome (accepted) and an attempt. Every write lands; the writer's operations per second are
/// printed (DAYBREAK_PG_WRITER_ROWS sets the rows, 2,000 by default; docs/architecture.md quotes
/// a measurement).
TEST_F(PgLedgerTest, BatchWriterCommitsEveryOperationAndReportsItsRate) {
  int n = 2000;
  if (const char* e = std::getenv("DAYBREAK_PG_WRITER_ROWS")) n = std::max(1, std::atoi(e));
  seed(n);
  {
    store::PgDispatchLedger a(url_, "w");
    ASSERT_TRUE(a.acquire_lease(1, kPgT0, 600'000).acquired);
  }
  const auto all = ids();
  ASSERT_EQ(all.size(), static_cast<std::size_t>(n));
  std::ostringstream log_text;
  auto log = std::make_shared<spdlog::logger>("pg-writer", std::make_shared<spdlog::sinks::ostream_sink_mt>(log_text));
  engine::BatchWriter w(store::pg_ledger_factory(url_, "w"), 20, log);
  std::atomic<long> claimed{0};
  const auto t0 = std::chrono::steady_clock::now();
  long ops = 0;
  for (std::size_t i = 0; i < all.size(); i += 100) {
    store::ledger_op::Claim c;
    c.ids.assign(all.begin() + static_cast<long>(i), all.begin() + static_cast<long>(std::min(all.size(), i + 100)));
    c.now = kPgT0;
    c.claim_until = kPgT0 + 600'000;
    w.enqueue(std::move(c), engine::OnDone([&](bool ok, store::LedgerResult&& r) {
      if (!ok) return;
      for (const auto& x : std::get<std::vector<store::ClaimResult>>(r)) claimed += x.ok ? 1 : 0;
    }));
    ++ops;
  }
  ASSERT_TRUE(w.flush(120'000));
  EXPECT_EQ(claimed.load(), n);
  for (std::size_t i = 0; i < all.size(); ++i) {
    store::DeliveryUpdateParams u;
    u.delivery_id = all[i];
    u.state = DeliveryState::accepted;
    u.channel = "whatsapp";
    u.sender = "wa-1";
    u.attempts = 1;
    u.sent_at = kPgT0 + 10;
    u.provider_message_id = "wamid." + std::to_string(i);
    u.accepted_at = kPgT0 + 20;
    u.now = kPgT0 + 20;
    w.enqueue(store::ledger_op::Outcome{u});
    w.enqueue(store::ledger_op::Attempt{{all[i], 1, "whatsapp", "wa-1", kPgT0 + 10, kPgT0 + 20, "accepted", "", "",
                                         "wamid." + std::to_string(i), 10, "", false, ""}});
    ops += 2;
  }
  ASSERT_TRUE(w.flush(300'000));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  w.stop(10'000);
  EXPECT_EQ(w.dropped(), 0u) << log_text.str();
  EXPECT_EQ(count("SELECT COUNT(*) FROM deliveries WHERE state = 'accepted' AND claim_owner IS NULL"), n);
  EXPECT_EQ(count("SELECT COUNT(*) FROM delivery_attempts"), n);
  std::cout << "[ measure  ] PostgreSQL batch writer: " << ops << " operations (" << n << " rows) in " << secs << " s = "
            << static_cast<long>(static_cast<double>(ops) / secs) << " operations/s\n";
}

/// One pipeline for a whole batch: a permanent failure in the middle (an attempt for a delivery
/// that does not exist) is dropped alone and every other operation of the batch commits, with
/// its result (the claim's) as one at a time would give it.
TEST_F(PgLedgerTest, ABatchIsOnePipelineAndAFailingOperationIsDroppedAlone) {
  seed(3);
  store::PgDispatchLedger a(url_, "w");
  ASSERT_TRUE(a.acquire_lease(1, kPgT0, 600'000).acquired);
  const auto all = ids();
  std::ostringstream log_text;
  auto log = std::make_shared<spdlog::logger>("pg-writer", std::make_shared<spdlog::sinks::ostream_sink_mt>(log_text));
  // A commit interval far longer than the enqueues below take: they land in one batch.
  engine::BatchWriter w(store::pg_ledger_factory(url_, "w"), 500, log);
  std::vector<store::ClaimResult> claims;
  bool claim_committed = false, bad_committed = true, close_committed = false;
  store::CloseResult close;
  w.enqueue(store::ledger_op::Claim{{all[0], all[1], 999999}, kPgT0, kPgT0 + 600'000},
            engine::OnDone([&](bool ok, store::LedgerResult&& r) {
              claim_committed = ok;
              if (ok) claims = std::get<std::vector<store::ClaimResult>>(r);
            }));
  w.enqueue(store::ledger_op::Attempt{{999999, 1, "whatsapp", "wa-1", kPgT0, kPgT0, "accepted", "", "", "", 0, "", false, ""}},
            engine::OnDone([&](bool ok, store::LedgerResult&&) { bad_committed = ok; }));
  store::DeliveryUpdateParams d;
  d.delivery_id = all[2];
  d.state = DeliveryState::dead;
  d.channel = "whatsapp";
  d.sender = "wa-1";
  d.last_error = "deadline passed";
  d.now = kPgT0 + 10;
  w.enqueue(store::ledger_op::Outcome{d, true, kPgT0 + 600'000});  // claimed and made final in one statement
  w.enqueue(store::ledger_op::Heartbeat{{{1, "{\"sent\":0}"}}, kPgT0 + 20, 600'000});
  w.enqueue(store::ledger_op::CloseRun{1, kPgT0 + 30, "{}"}, engine::OnDone([&](bool ok, store::LedgerResult&& r) {
              close_committed = ok;
              if (ok) close = std::get<store::CloseResult>(r);
            }));
  ASSERT_TRUE(w.flush(30'000));
  w.stop(10'000);
  EXPECT_EQ(w.dropped(), 1u);
  EXPECT_NE(log_text.str().find("recording an attempt"), std::string::npos) << log_text.str();
  EXPECT_FALSE(bad_committed);
  ASSERT_TRUE(claim_committed);
  ASSERT_EQ(claims.size(), 3u);
  EXPECT_TRUE(claims[0].ok && claims[1].ok);
  EXPECT_FALSE(claims[2].ok);
  EXPECT_FALSE(claims[2].now_row);  // no such row
  EXPECT_EQ(count("SELECT COUNT(*) FROM deliveries WHERE state = 'sending' AND claim_owner = 'w'"), 2);
  EXPECT_EQ(count("SELECT COUNT(*) FROM deliveries WHERE state = 'dead' AND claim_owner IS NULL AND claim_until = " +
                  std::to_string(kPgT0 + 600'000)),
            1);
  EXPECT_EQ(count("SELECT COUNT(*) FROM delivery_attempts"), 0);
  EXPECT_EQ(count("SELECT COUNT(*) FROM runs WHERE progress = '{\"sent\":0}'"), 1);  // the heartbeat's (no close)
  ASSERT_TRUE(close_committed);
  EXPECT_FALSE(close.closed);  // two rows are still sending
  EXPECT_EQ(close.open_rows, 2);
  EXPECT_EQ(count("SELECT COUNT(*) FROM runs WHERE state = 'running' AND owner IS NULL"), 1);
}

/// A claim in a pipeline of a host that lost its run takes nothing and reports the rows as
/// they are; a claim of a row already final reports it final (not a failure to send).
TEST_F(PgLedgerTest, PipelinedClaimsKeepTheLeaseRule) {
  seed(2);
  store::PgDispatchLedger a(url_, "host-a");
  store::PgDispatchLedger b(url_, "host-b");
  ASSERT_TRUE(a.acquire_lease(1, kPgT0, 10'000).acquired);
  const auto all = ids();
  store::PgConn(url_).exec("UPDATE deliveries SET state = 'cancelled' WHERE delivery_id = " + std::to_string(all[1]));
  const store::LedgerOp ca = store::ledger_op::Claim{{all[0], all[1]}, kPgT0, kPgT0 + 60'000};
  const store::LedgerOp cb = store::ledger_op::Claim{{all[0]}, kPgT0, kPgT0 + 60'000};
  std::vector<store::LedgerResult> ra, rb;
  a.begin();
  ASSERT_FALSE(a.apply_batch({&ca}, ra));
  a.commit();
  b.begin();
  ASSERT_FALSE(b.apply_batch({&cb}, rb));
  b.commit();
  const auto& x = std::get<std::vector<store::ClaimResult>>(ra[0]);
  EXPECT_TRUE(x[0].ok);
  EXPECT_FALSE(x[1].ok);
  ASSERT_TRUE(x[1].now_row);
  EXPECT_EQ(x[1].now_row->state, DeliveryState::cancelled);
  const auto& y = std::get<std::vector<store::ClaimResult>>(rb[0]);
  EXPECT_FALSE(y[0].ok);
  ASSERT_TRUE(y[0].now_row);
  EXPECT_EQ(y[0].now_row->claim_owner.value_or(""), "host-a");
}

TEST_F(PgLedgerTest, DoctorReportsTheServerTheSchemaLevelAndTheTables) {
  auto row = [](const std::vector<store::PgLedgerCheck>& rows, const std::string& name) {
    for (const auto& r : rows) {
      if (r.name == name) return r;
    }
    ADD_FAILURE() << "no row " << name;
    return store::PgLedgerCheck{};
  };
  // An empty database: connected, but no schema and no tables (doctor migrates nothing).
  auto empty = store::check_pg_ledger(url_);
  EXPECT_TRUE(row(empty, "ledger_postgres").ok);
  EXPECT_NE(row(empty, "ledger_postgres").message.find("PostgreSQL 15"), std::string::npos) << row(empty, "ledger_postgres").message;
  EXPECT_FALSE(row(empty, "ledger_schema").ok);
  EXPECT_NE(row(empty, "ledger_schema").message.find("no daybreak schema"), std::string::npos);
  EXPECT_FALSE(row(empty, "ledger_tables").ok);
  EXPECT_NE(row(empty, "ledger_tables").message.find("deliveries: missing"), std::string::npos);
  EXPECT_EQ(count("SELECT COUNT(*) FROM pg_tables WHERE schemaname = 'public'"), 0);
  // Migrated: every row passes, the level is this build's.
  { store::PgDispatchLedger l(url_, "m", true); }
  auto good = store::check_pg_ledger(url_);
  for (const auto& r : good) EXPECT_TRUE(r.ok) << r.name << ": " << r.message;
  EXPECT_NE(row(good, "ledger_schema").message.find(
                "version " + std::to_string(store::embedded_pg_migrations().back().version) + " (latest)"),
            std::string::npos);
  EXPECT_EQ(row(good, "ledger_tables").message, "15 ledger tables readable and writable as their writers need");
  // One migration behind, and tables this user may not write as their writers do: runs
  // (dispatch), audit_log (003: appended by the operator's changes), status_events and
  // whatsapp_holds (004: the status callbacks insert and update them), run_reports (005: dispatch
  // replaces a re-closed run's report). Only appended to,
  // audit_log, status_rejects, delivery_attempts and delivery_changes need no UPDATE.
  store::PgConn admin(url_);
  admin.exec("DELETE FROM schema_migrations WHERE version = (SELECT MAX(version) FROM schema_migrations)");
  admin.exec("CREATE ROLE doctor_reader LOGIN; GRANT SELECT ON ALL TABLES IN SCHEMA public TO doctor_reader; "
             "GRANT INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO doctor_reader; REVOKE UPDATE ON runs FROM doctor_reader; "
             "REVOKE INSERT, UPDATE ON audit_log FROM doctor_reader; REVOKE INSERT ON status_events FROM doctor_reader; "
             "REVOKE UPDATE ON whatsapp_holds FROM doctor_reader; REVOKE UPDATE ON status_rejects FROM doctor_reader; "
             "REVOKE UPDATE ON delivery_attempts FROM doctor_reader; REVOKE UPDATE ON delivery_changes FROM doctor_reader; "
             "REVOKE UPDATE ON run_reports FROM doctor_reader");
  auto reader_url = url_;
  reader_url.replace(reader_url.find("daybreak@"), 9, "doctor_reader@");
  // Attempts and changes are only appended to: INSERT alone writes them (their identity keys
  // need no grant of their own), so doctor asks no UPDATE there.
  {
    store::PgConn reader(reader_url);
    reader.exec("INSERT INTO delivery_changes (delivery_id, run_id, kind, at) VALUES (1, 1, 'probe', 0)");
  }
  auto old = store::check_pg_ledger(reader_url);
  EXPECT_FALSE(row(old, "ledger_schema").ok);
  EXPECT_NE(row(old, "ledger_schema").message.find("1 migration(s) pending"), std::string::npos) << row(old, "ledger_schema").message;
  EXPECT_FALSE(row(old, "ledger_tables").ok);
  // No DELETE granted anywhere: only advisor_channels needs it (a publish replaces an advisor's rows).
  EXPECT_EQ(row(old, "ledger_tables").message,
            "advisor_channels: no DELETE privilege (migrate-ledger, the publish of a planned day, advisors); "
            "runs: no UPDATE privilege (dispatch); audit_log: no INSERT privilege (the operator's changes); "
            "status_events: no INSERT privilege (daybreak-callbacks, ingest); "
            "whatsapp_holds: no UPDATE privilege (daybreak-callbacks, ingest); "
            "run_reports: no UPDATE privilege (dispatch)");
  // A table this user may not read, and one a migration has not created.
  admin.exec("REVOKE SELECT ON status_rejects FROM doctor_reader");
  admin.exec("DROP TABLE whatsapp_holds");
  auto unread = store::check_pg_ledger(reader_url);
  EXPECT_NE(row(unread, "ledger_tables").message.find("status_rejects: "), std::string::npos) << row(unread, "ledger_tables").message;
  EXPECT_NE(row(unread, "ledger_tables").message.find("permission denied"), std::string::npos) << row(unread, "ledger_tables").message;
  EXPECT_NE(row(unread, "ledger_tables").message.find("whatsapp_holds: missing"), std::string::npos)
      << row(unread, "ledger_tables").message;
  admin.exec("DROP OWNED BY doctor_reader; DROP ROLE doctor_reader");
  // Nobody listening: a clear failure, and the other rows say why they were not checked.
  auto down = store::check_pg_ledger("postgresql://daybreak:secret@/nowhere?host=/nonexistent-dir&port=1");
  EXPECT_FALSE(row(down, "ledger_postgres").ok);
  EXPECT_NE(row(down, "ledger_postgres").message.find("cannot connect to PostgreSQL"), std::string::npos)
      << row(down, "ledger_postgres").message;
  EXPECT_EQ(row(down, "ledger_postgres").message.find("secret"), std::string::npos);
  EXPECT_NE(row(down, "ledger_schema").message.find("not checked"), std::string::npos);
}

TEST_F(PgLedgerTest, StatusViewReadsRunsLeasesSwitchesAndDeadLetters) {
  seed(3);
  store::PgDispatchLedger a(url_, "host-a");
  ASSERT_TRUE(a.acquire_lease(1, kPgT0, 10'000).acquired);
  const auto all = ids();
  store::PgConn admin(url_);
  admin.exec("UPDATE deliveries SET state = 'dead', last_error = 'x' WHERE delivery_id IN (" + std::to_string(all[0]) + ", " +
             std::to_string(all[1]) + ")");
  admin.exec("UPDATE deliveries SET dismissed_at = 1 WHERE delivery_id = " + std::to_string(all[1]));
  admin.exec("INSERT INTO controls (key, value, updated_at, updated_by) VALUES ('pause.email', '1', 5, 'ops')");
  auto v = store::pg_status_view(url_, kPgT0 - 600'000, kPgT0 + 1000, "2026-11-28");
  ASSERT_EQ(v.active.size(), 1u);
  EXPECT_EQ(v.active[0].state, "running");
  EXPECT_EQ(v.active[0].owner.value_or(""), "host-a");
  EXPECT_EQ(v.active[0].lease_until.value_or(0), kPgT0 + 10'000);
  ASSERT_EQ(v.controls.size(), 1u);
  EXPECT_EQ(v.controls[0].key, "pause.email");
  EXPECT_EQ(v.controls[0].updated_by, "ops");
  EXPECT_EQ(v.dead, 1);  // the dismissed one is not counted
  ASSERT_EQ(v.next_day_runs.size(), 1u);
  EXPECT_TRUE(store::pg_status_view(url_, kPgT0 - 600'000, kPgT0 + 1000, "2026-11-29").next_day_runs.empty());
}

TEST(PgConfig, DatabaseUrlWithThisHostsPath) {
  auto url = parse_config("[database]\nurl = \"postgresql://daybreak@db1/daybreak\"\n", "t.toml");
  EXPECT_EQ(url.database_url, "postgresql://daybreak@db1/daybreak");
  EXPECT_EQ(url.database_path, Config{}.database_path);  // this host's file: the default
  EXPECT_TRUE(parse_config("[database]\npath = \"/tmp/x.db\"\n", "t.toml").database_url.empty());
  // Both: the ledger on PostgreSQL, this host's own SQLite file at path.
  auto both = parse_config("[database]\npath = \"/tmp/x.db\"\nurl = \"postgresql://h/d\"\n", "t.toml");
  EXPECT_EQ(both.database_url, "postgresql://h/d");
  EXPECT_EQ(both.database_path, "/tmp/x.db");
  EXPECT_THROW((void)parse_config("[database]\nurl = \"mysql://h/d\"\n", "t.toml"), ConfigError);
}


// Moving an install to PostgreSQL keeps its history: the stored report of each closed run the
// copy inserts goes into run_reports (closed_at its finished_at, written_by "migrate-ledger"),
// under the PostgreSQL run id (the report's run_id too) when the run was renumbered; a run
// PostgreSQL already had keeps its own report, or none; a run not closed brings none.
TEST_F(PgLedgerTest, MigrateLedgerCopiesTheStoredReportsOfTheClosedRunsItInserts) {
  seed(3);  // PostgreSQL: run 1 of 2026-11-28 (open), copied from this file
  // In the file: run 1 closes with its report; the day before, run 2 closed with one too.
  const std::string report1 = R"({"run_id":1,"date":"2026-11-28","sla_pct":97.5})";
  (*db_).write_tx([&] {
    (*db_).exec("UPDATE runs SET state = 'closed', finished_at = " + std::to_string(kPgT0 + 600'000) + " WHERE run_id = 1");
    store::SlaReportUpsert(*db_, 1, "2026-11-28", kPgT0 + 600'001, 97.5, report1);
  });
  store::RunUpsertParams day;
  day.date = "2026-11-27";
  day.window = window_for(kPgT0 - 86'400'000, WindowPolicy{});
  ASSERT_EQ(store::RunUpsert(*db_, day), 2);
  const std::string report2 = R"({"run_id":2,"date":"2026-11-27","sla_pct":99.9,"runs":[{"run_id":2}]})";
  (*db_).write_tx([&] {
    (*db_).exec("UPDATE runs SET state = 'closed', finished_at = " + std::to_string(kPgT0 - 80'000'000) + " WHERE run_id = 2");
    store::SlaReportUpsert(*db_, 2, "2026-11-27", kPgT0 - 79'999'999, 99.9, report2);
  });
  // PostgreSQL already has run 2's id: a run of another day, open, with no report.
  store::PgConn(url_).exec("INSERT INTO runs (run_id, date, slot_at, window_start, window_end, deadline_at) "
                           "OVERRIDING SYSTEM VALUE VALUES (2, '2026-11-30', 5, 5, 5, 5)");

  auto counts = store::migrate_ledger_to_pg(db_path(), url_, "");
  std::map<std::string, std::int64_t> inserted(counts.tables.begin(), counts.tables.end());
  // Run 1 was already in PostgreSQL (open there): its report is not the file's to give.
  // Run 2 is new there, renumbered past PostgreSQL's run 2.
  EXPECT_EQ(inserted["run_reports"], 1);
  EXPECT_EQ(count("SELECT COUNT(*) FROM run_reports WHERE run_id = 1"), 0);
  const std::int64_t pg_run2 = count("SELECT run_id FROM runs WHERE date = '2026-11-27'");
  EXPECT_GT(pg_run2, 2);
  store::PgConn c(url_);
  auto r = c.query("SELECT date, closed_at, generated_at, sla_pct, report, written_by FROM run_reports WHERE run_id = " +
                   std::to_string(pg_run2));
  ASSERT_EQ(r.rows(), 1);
  EXPECT_EQ(r.str(0, 0), "2026-11-27");
  EXPECT_EQ(r.i64(0, 1), kPgT0 - 80'000'000);
  EXPECT_EQ(r.i64(0, 2), kPgT0 - 79'999'999);
  EXPECT_DOUBLE_EQ(std::stod(r.str(0, 3)), 99.9);
  auto j = nlohmann::json::parse(r.str(0, 4));
  EXPECT_EQ(j["run_id"], pg_run2);                         // the run as PostgreSQL numbers it
  EXPECT_EQ(j["runs"][0]["run_id"], 2);                    // nothing else rewritten
  EXPECT_EQ(r.str(0, 5), "migrate-ledger");

  // A fresh PostgreSQL database: run 1 is inserted there closed, its report byte for byte.
  store::PgConn(server_->url()).exec("CREATE DATABASE fresh_reports");
  const std::string fresh = server_->url("fresh_reports");
  auto all = store::migrate_ledger_to_pg(db_path(), fresh, "");
  std::map<std::string, std::int64_t> ins2(all.tables.begin(), all.tables.end());
  EXPECT_EQ(ins2["run_reports"], 2);
  EXPECT_EQ(store::PgConn(fresh).query("SELECT report FROM run_reports WHERE run_id = 1").str(0, 0), report1);
  EXPECT_EQ(store::PgConn(fresh).query("SELECT report FROM run_reports WHERE run_id = 2").str(0, 0), report2);
  // Again: nothing copied twice.
  auto again = store::migrate_ledger_to_pg(db_path(), fresh, "");
  for (const auto& [tb, n] : again.tables) EXPECT_EQ(n, 0) << tb;
}

// A second host's planning file counts its ids from its own history: its plan of the same day
// meets the rows already published by their natural keys (no second run of the slot, no second
// delivery of an advisor), a row it adds keeps its id when free and gets a new one when that id
// is another row's, and its children follow the ids PostgreSQL has.
TEST_F(PgLedgerTest, CopyFromASecondPlanningFileKeepsRowsAlreadyThereAndRenumbersTakenIds) {
  seed(3);  // PostgreSQL: run 1 of 2026-11-28, deliveries 1..3 (adv-0..adv-2)
  const std::string other = db_path() + ".host-b";
  {
    store::Db b(other);
    store::ContentUpsert(b, {[] {
                               Content c;
                               c.content_id = "C1";
                               c.title = "T";
                               c.body = "B";
                               c.language = "en";
                               return c;
                             }(),
                             kPgT0 - 3'600'000});
    store::RunUpsertParams before;
    before.date = "2026-11-27";
    before.window = window_for(kPgT0 - 86'400'000, WindowPolicy{});
    ASSERT_EQ(store::RunUpsert(b, before), 1);  // a day only host B planned: its run 1
    store::RunUpsertParams day;
    day.date = "2026-11-28";
    day.window = window_for(kPgT0 - 3'600'000, WindowPolicy{});
    ASSERT_EQ(store::RunUpsert(b, day), 2);
    test_support::set_run_window(b, 2, kPgT0);
    b.write_tx([&] {
      // adv-3 first: its delivery id 1 is adv-0's in PostgreSQL.
      for (const char* id : {"adv-3", "adv-0", "adv-1", "adv-2"}) {
        test_support::add_whatsapp_advisor(b, id, kPgT0 - 3'600'000);
        ASSERT_TRUE(store::DeliveryInsert(b, test_support::planned_delivery(2, id, "2026-11-28", kPgT0, kPgT0, kPgT0 - 3'600'000)));
      }
    });
  }
  store::PgConn c(url_);
  auto counts = store::copy_ledger_to_pg(c, other, {"2026-11-28", std::nullopt, false});
  auto inserted = [&](const std::string& t) {
    for (const auto& [name, n] : counts.tables) {
      if (name == t) return n;
    }
    return std::int64_t{-1};
  };
  EXPECT_EQ(inserted("runs"), 0);
  EXPECT_EQ(inserted("deliveries"), 1);
  EXPECT_EQ(inserted("controls"), -1);  // not copied
  EXPECT_EQ(counts.renumbered, 1);
  ASSERT_EQ(counts.runs.size(), 1u);
  EXPECT_EQ(counts.runs[0], std::make_pair(std::int64_t{2}, std::int64_t{1}));
  EXPECT_EQ(count("SELECT COUNT(*) FROM runs"), 1);
  EXPECT_EQ(count("SELECT COUNT(*) FROM deliveries"), 4);
  EXPECT_EQ(count("SELECT COUNT(DISTINCT advisor_id) FROM deliveries"), 4);
  EXPECT_EQ(count("SELECT run_id FROM deliveries WHERE advisor_id = 'adv-3'"), 1);
  EXPECT_EQ(count("SELECT delivery_id FROM deliveries WHERE advisor_id = 'adv-0'"), 1);  // kept
  EXPECT_GT(count("SELECT delivery_id FROM deliveries WHERE advisor_id = 'adv-3'"), 3);
  // Again: nothing new, nothing renumbered twice.
  auto again = store::copy_ledger_to_pg(c, other, {"2026-11-28", std::nullopt, false});
  for (const auto& [t, n] : again.tables) EXPECT_EQ(n, 0) << t;
  EXPECT_EQ(again.renumbered, 0);
  EXPECT_EQ(count("SELECT COUNT(*) FROM deliveries"), 4);
  // One run only: the scope's run id picks it (send-now's urgent run).
  auto one = store::copy_ledger_to_pg(c, other, {"2026-11-28", std::int64_t{2}, false});
  ASSERT_EQ(one.runs.size(), 1u);
  EXPECT_EQ(one.runs[0].second, 1);
  // A new run after the copies gets an id past every copied one.
  EXPECT_EQ(count("INSERT INTO runs(date, slot_at, window_start, window_end, deadline_at) VALUES ('2026-11-30', 1, 1, 1, 1) RETURNING run_id"), 3);
}

TEST_F(PgLedgerTest, TheDayLockKeepsASecondSessionOutUntilReleased) {
  store::PgConn a(url_);
  store::PgConn b(url_);
  ASSERT_TRUE(store::pg_lock_day(a, "2026-11-28", 0));
  EXPECT_FALSE(store::pg_lock_day(b, "2026-11-28", 200));  // waited 200 ms, still held
  EXPECT_TRUE(store::pg_lock_day(b, "2026-11-29", 0));     // another day is another lock
  store::pg_unlock_day(a, "2026-11-28");
  EXPECT_TRUE(store::pg_lock_day(b, "2026-11-28", 0));
  // A session that ends (a host gone) releases it.
  store::pg_unlock_day(b, "2026-11-28");
  {
    store::PgConn gone(url_);
    ASSERT_TRUE(store::pg_lock_day(gone, "2026-12-01", 0));
  }
  EXPECT_TRUE(store::pg_lock_day(a, "2026-12-01", 2000));
}


// The dead-man's switch of a dispatch on PostgreSQL (app/schedule.hpp, morning_deadman_pg):
// nothing outside its time; a day with no run in PostgreSQL and no planning data in this host's
// file is left alone (logged); a day with a run there (another host or the night published it)
// is left alone too, and this host's file is not planned.
TEST_F(PgLedgerTest, TheDeadmansSwitchOnPostgresqlPlansNothingWhenTheDayHasRunsOrTheFileNoData) {
  Config cfg;  // 06:00 IST slot, lead 15 min
  cfg.database_url = url_;
  cfg.database_path = db_path();
  spdlog::logger quiet("deadman-pg-test");
  { store::PgDispatchLedger migrate(url_, "m", true); }
  EXPECT_FALSE(morning_deadman_pg(*db_, cfg, kPgT0 - 5 * 3'600'000, 120'000, quiet).at("checked").get<bool>());
  // An urgent run of the day (send-now's, published at 02:00) is not the day's plan.
  store::PgConn(url_).exec(
      "INSERT INTO runs(date, slot_at, window_start, window_end, deadline_at, plan_report, kind) VALUES ('2026-11-28', 1, 1, 1, "
      "1, '{\"content_id\":\"C1\",\"kind\":\"urgent\"}', 'urgent')");
  auto empty = morning_deadman_pg(*db_, cfg, kPgT0 - 60'000, 120'000, quiet);
  EXPECT_EQ(empty.at("date"), "2026-11-28");
  EXPECT_EQ(empty.at("action"), "no_planning_data");
  EXPECT_EQ(empty.at("runs_in_ledger"), 0);
  seed(3);  // run 1 of 2026-11-28 in both; its advisors are the file's
  store::PgConn(url_).exec("DELETE FROM deliveries WHERE advisor_id = 'adv-2'");  // whatever the counts, a run is there
  auto none = morning_deadman_pg(*db_, cfg, kPgT0 - 60'000, 120'000, quiet);
  EXPECT_EQ(none.at("action"), "none");
  EXPECT_EQ(none.at("runs_in_ledger"), 1);
  EXPECT_EQ(count("SELECT COUNT(*) FROM deliveries"), 2);
  EXPECT_EQ(count("SELECT COUNT(*) FROM runs"), 2);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM alerts"), 0);
  // The lock was released: another session takes it at once.
  store::PgConn other(url_);
  EXPECT_TRUE(store::pg_lock_day(other, "2026-11-28", 0));
}

}  // namespace
}  // namespace daybreak
