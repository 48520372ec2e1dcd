// Tests for core/app/import.cpp and the store modules it writes through (store/advisors,
// store/content, store/assignments): all-or-nothing imports on a real SQLite file in a per-test
// temporary directory (kept when a test fails, for a look with sqlite3).
#include "app/import.hpp"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include <filesystem>
#include <functional>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>

#include "db_fixture.hpp"
#include "cli/common.hpp"
#include "store/advisors.hpp"
#include "store/assignments.hpp"
#include "store/content.hpp"
#include "store/db.hpp"

namespace daybreak {
namespace {

namespace fs = std::filesystem;

const std::string kAdvisorHeader = "advisor_id,name,tier,phone,email,timezone,slot,channels,opted_in,language,topics\n";
const std::string kContentHeader =
    "content_id,title,body,language,topics,media_url,valid_from,valid_until,fallback_eligible,emergency\n";
const std::string kAssignmentHeader = "advisor_id,date,content_id\n";

constexpr Millis kT0Import = 1'764'300'000'000;  // 2025-11-28T03:20:00Z: any fixed instant will do

std::string advisor_row(int i, const std::string& channels = "whatsapp|email", const std::string& opted_in = "yes") {
  std::string id = "A" + std::to_string(1000 + i);
  return id + ",Advisor " + std::to_string(i) + ",gold,+9198100" + std::to_string(10000 + i) + "," + id +
         "@example.com,,," + channels + "," + opted_in + ",en,tax\n";
}

class ImportTest : public test_support::DbTest {
 protected:
  ImportTest() : DbTest("import") {}
  std::string write(const std::string& name, const std::string& text) {
    auto path = dir_ / name;
    std::ofstream(path, std::ios::binary) << text;
    return path.string();
  }

  ImportReport import(ImportKind kind, const std::string& path, Millis now = kT0Import, bool dry_run = false) {
    ImportOptions o;
    o.kind = kind;
    o.path = path;
    o.dry_run = dry_run;
    o.actor = "tester";
    return run_import(db_.get(), ImportRules{}, o, now);
  }

  std::int64_t count(const std::string& table) { return scalar("SELECT COUNT(*) FROM " + table); }

};

std::set<std::size_t> lines_of(const ImportReport& r) {
  std::set<std::size_t> out;
  for (const auto& p : r.problems) out.insert(p.line);
  return out;
}

TEST_F(ImportTest, GoodAdvisorsFileIsImportedWhole) {
  std::string text = kAdvisorHeader;
  for (int i = 0; i < 5; ++i) text += advisor_row(i);
  auto r = import(ImportKind::advisors, write("advisors.csv", text));
  ASSERT_TRUE(r.ok()) << format_import_report(r);
  EXPECT_EQ(r.rows, 5U);
  EXPECT_EQ(r.imported, 5U);
  EXPECT_EQ(store::AdvisorCount(*db_), 5);
  EXPECT_EQ(count("advisor_channels"), 10);

  auto a = store::AdvisorGet(*db_, "A1002");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->advisor.timezone, "Asia/Kolkata");  // empty → the default
  EXPECT_EQ(a->advisor.slot, "06:00");
  EXPECT_EQ(a->advisor.phone, "+919810010002");
  EXPECT_EQ(a->advisor.email, "A1002@example.com");
  ASSERT_EQ(a->channels.size(), 2U);
  EXPECT_EQ(a->channels[0].channel, Channel::whatsapp);
  EXPECT_EQ(a->channels[0].address, "+919810010002");
  EXPECT_EQ(a->channels[1].channel, Channel::email);
  EXPECT_EQ(a->updated_at, kT0Import);

  // One audit row says who imported what.
  SQLite::Statement q(db_->raw(), "SELECT actor, command, target, after, at FROM audit_log");
  ASSERT_TRUE(q.executeStep());
  EXPECT_EQ(q.getColumn(0).getString(), "tester");
  EXPECT_EQ(q.getColumn(1).getString(), "import advisors");
  EXPECT_EQ(fs::path(q.getColumn(2).getString()).filename(), "advisors.csv");
  auto after = nlohmann::json::parse(q.getColumn(3).getString());
  EXPECT_EQ(after.at("rows"), 5);
  EXPECT_EQ(after.at("sha256").get<std::string>().size(), 64U);
  EXPECT_EQ(q.getColumn(4).getInt64(), kT0Import);
  EXPECT_FALSE(q.executeStep());
}

TEST_F(ImportTest, ThreeBadRowsRejectTheWholeFileAndAreAllNamed) {
  std::string text = kAdvisorHeader;
  for (int i = 0; i < 10; ++i) {
    if (i == 1) {
      text += "A2001,Bad Phone,gold,+9198,,,,whatsapp,yes,en,\n";  // line 3
    } else if (i == 4) {
      text += "A2004,Bad Zone,gold,,x@example.com,Mars/Base,,email,yes,en,\n";  // line 6
    } else if (i == 7) {
      text += "A2007,Bad Slot,gold,,x@example.com,,6am,email,yes,en,\n";  // line 9
    } else {
      text += advisor_row(i);
    }
  }
  auto r = import(ImportKind::advisors, write("advisors.csv", text));
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.rows, 10U);
  EXPECT_EQ(r.imported, 0U);
  EXPECT_EQ(r.problem_count, 3U);
  EXPECT_EQ(lines_of(r), (std::set<std::size_t>{3, 6, 9}));
  EXPECT_EQ(r.problems[0].field, "phone");
  EXPECT_EQ(r.problems[1].field, "timezone");
  EXPECT_EQ(r.problems[2].field, "slot");
  EXPECT_EQ(store::AdvisorCount(*db_), 0);
  EXPECT_EQ(count("advisor_channels"), 0);
  EXPECT_EQ(count("audit_log"), 0);

  std::string msg = format_import_report(r);
  EXPECT_NE(msg.find("3 problems in 10 rows; nothing imported"), std::string::npos) << msg;
  EXPECT_NE(msg.find("advisors.csv:3: field \"phone\": \"+9198\" is not a valid phone number"), std::string::npos) << msg;
}

TEST_F(ImportTest, RejectedFileLeavesEarlierDataUntouched) {
  std::string good = kAdvisorHeader + advisor_row(0) + advisor_row(1);
  ASSERT_TRUE(import(ImportKind::advisors, write("a.csv", good)).ok());
  // Renames A1000 (would be an update) but carries a bad row: nothing may change.
  std::string bad = kAdvisorHeader + "A1000,Renamed,gold,,r@example.com,,,email,yes,en,\n" + "A9,Bad,nobody,,,,,webhook,yes,en,\n";
  auto r = import(ImportKind::advisors, write("b.csv", bad), kT0Import + 1000);
  EXPECT_FALSE(r.ok());
  auto a = store::AdvisorGet(*db_, "A1000");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->advisor.name, "Advisor 0");
  EXPECT_EQ(a->channels.size(), 2U);
  EXPECT_EQ(store::AdvisorCount(*db_), 2);
  EXPECT_EQ(count("audit_log"), 1);
}

TEST_F(ImportTest, ReimportIsIdempotentAndUpdatesOnlyWhatChanged) {
  std::string text = kAdvisorHeader + advisor_row(0) + advisor_row(1);
  auto path = write("advisors.csv", text);
  ASSERT_TRUE(import(ImportKind::advisors, path, kT0Import).ok());
  auto r = import(ImportKind::advisors, path, kT0Import + 60'000);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(store::AdvisorCount(*db_), 2);
  EXPECT_EQ(count("advisor_channels"), 4);
  EXPECT_EQ(store::AdvisorGet(*db_, "A1000")->updated_at, kT0Import);  // nothing changed, nothing rewritten

  // A1001 drops email and changes name: its row is updated and its email channel row removed.
  std::string changed = kAdvisorHeader + advisor_row(0) + "A1001,New Name,platinum,+919810010001,,,07:00,whatsapp,yes,hi,\n";
  ASSERT_TRUE(import(ImportKind::advisors, write("b.csv", changed), kT0Import + 120'000).ok());
  auto a = store::AdvisorGet(*db_, "A1001");
  EXPECT_EQ(a->advisor.name, "New Name");
  EXPECT_EQ(a->advisor.tier, "platinum");
  EXPECT_EQ(a->advisor.slot, "07:00");
  EXPECT_EQ(a->updated_at, kT0Import + 120'000);
  ASSERT_EQ(a->channels.size(), 1U);
  EXPECT_EQ(a->channels[0].channel, Channel::whatsapp);
  EXPECT_EQ(count("advisor_channels"), 3);
  EXPECT_EQ(count("audit_log"), 3);
}

// A re-import skips advisors stored exactly as in the file, judging the channel rows too: one whose
// advisors row is unchanged but whose channel rows differ (a channel opted out, an extra channel
// row) is still written, as it always was.
TEST_F(ImportTest, ReimportComparesChannelRowsToo) {
  auto path = write("advisors.csv", kAdvisorHeader + advisor_row(0) + advisor_row(1) + advisor_row(2, "whatsapp"));
  ASSERT_TRUE(import(ImportKind::advisors, path).ok());
  db_->exec("UPDATE advisor_channels SET opted_in = 0 WHERE advisor_id = 'A1000' AND channel = 'email'");
  db_->exec("INSERT INTO advisor_channels (advisor_id, channel, address, opted_in) VALUES ('A1002', 'webhook', 'A1002', 1)");
  auto r = import(ImportKind::advisors, path, kT0Import + 60'000);
  ASSERT_TRUE(r.ok()) << format_import_report(r);
  EXPECT_EQ(r.imported, 3U);
  EXPECT_EQ(scalar("SELECT opted_in FROM advisor_channels WHERE advisor_id = 'A1000' AND channel = 'email'"), 1);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM advisor_channels WHERE advisor_id = 'A1002'"), 1);
  EXPECT_EQ(count("advisor_channels"), 5);
  EXPECT_EQ(store::AdvisorGet(*db_, "A1001")->updated_at, kT0Import);
}

TEST_F(ImportTest, ReimportKeepsAnOperatorsPause) {
  ASSERT_TRUE(import(ImportKind::advisors, write("a.csv", kAdvisorHeader + advisor_row(0))).ok());
  db_->exec("UPDATE advisors SET paused_from = '2026-11-01', paused_until = '2026-11-30' WHERE advisor_id = 'A1000'");
  ASSERT_TRUE(import(ImportKind::advisors, write("b.csv", kAdvisorHeader + advisor_row(0, "email")), kT0Import + 1).ok());
  auto a = store::AdvisorGet(*db_, "A1000");
  EXPECT_EQ(a->advisor.paused_from, "2026-11-01");
  EXPECT_EQ(a->advisor.paused_until, "2026-11-30");
}

TEST_F(ImportTest, DryRunWritesNothing) {
  auto path = write("advisors.csv", kAdvisorHeader + advisor_row(0));
  auto r = import(ImportKind::advisors, path, kT0Import, /*dry_run=*/true);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.rows, 1U);
  EXPECT_EQ(r.imported, 0U);
  EXPECT_EQ(store::AdvisorCount(*db_), 0);
  EXPECT_EQ(count("audit_log"), 0);
  EXPECT_EQ(format_import_report(r), path + ": 1 row valid (dry run: nothing written)");
}

TEST_F(ImportTest, AssignmentsMustNameStoredAdvisorsAndContent) {
  ASSERT_TRUE(import(ImportKind::advisors, write("a.csv", kAdvisorHeader + advisor_row(0) + advisor_row(1))).ok());
  ASSERT_TRUE(import(ImportKind::content, write("c.csv", kContentHeader + "C1,Title,Body,en,tax,,,,yes,no\n")).ok());

  auto bad = import(ImportKind::assignments,
                    write("s1.csv", kAssignmentHeader + "A1000,2026-11-28,C1\nA7777,2026-11-28,C1\n"));
  EXPECT_FALSE(bad.ok());
  ASSERT_EQ(bad.problems.size(), 1U);
  EXPECT_EQ(bad.problems[0].text(), bad.file + ":3: field \"advisor_id\": \"A7777\" is not a known advisor (import advisors first)");
  EXPECT_EQ(store::AssignmentCount(*db_), 0);

  auto good = import(ImportKind::assignments,
                     write("s2.csv", kAssignmentHeader + "A1000,2026-11-28,C1\nA1001,2026-11-28,C1\nA1000,2026-11-29,C1\n"));
  ASSERT_TRUE(good.ok()) << format_import_report(good);
  EXPECT_EQ(good.imported, 3U);
  auto day = store::AssignmentListForDate(*db_, "2026-11-28");
  ASSERT_EQ(day.size(), 2U);
  EXPECT_EQ(day[0].advisor_id, "A1000");
  EXPECT_EQ(day[1].advisor_id, "A1001");
  EXPECT_EQ(day[0].source, Source::editorial);
  EXPECT_EQ(day[0].score_parts, "{}");
}

TEST_F(ImportTest, AnOperatorOverrideSurvivesAnImport) {
  ASSERT_TRUE(import(ImportKind::advisors, write("a.csv", kAdvisorHeader + advisor_row(0))).ok());
  ASSERT_TRUE(import(ImportKind::content, write("c.csv", kContentHeader + "C1,T,B,en,,,,,,\nC2,T,B,en,,,,,,\n")).ok());
  db_->write_tx([&] {
    Assignment o{"A1000", "2026-11-28", "C2", Source::override_, 0, "", "operator choice"};
    EXPECT_TRUE(store::AssignmentUpsert(*db_, {o, kT0Import, false}));
  });
  auto r = import(ImportKind::assignments, write("s.csv", kAssignmentHeader + "A1000,2026-11-28,C1\n"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.imported, 0U);
  EXPECT_EQ(r.kept_overrides, 1U);
  EXPECT_EQ(store::AssignmentGet(*db_, "A1000", "2026-11-28")->content_id, "C2");
  // Without keep_override (the fallback pass) the override is replaced.
  db_->write_tx([&] {
    Assignment f{"A1000", "2026-11-28", "C1", Source::fallback, 1, "", "override content withdrawn"};
    EXPECT_TRUE(store::AssignmentUpsert(*db_, {f, kT0Import + 1, false}));
  });
  EXPECT_EQ(store::AssignmentGet(*db_, "A1000", "2026-11-28")->source, Source::fallback);
}

TEST_F(ImportTest, ContentPoolsAndWithdrawalSurviveReimport) {
  std::string text = kContentHeader +
                     "C1,Always,B,en,,,,,yes,no\n"
                     "C2,December,B,hi,,,2026-12-01,2026-12-31,yes,no\n"
                     "C3,Not fallback,B,en,,,,,no,yes\n"
                     "C4,Withdrawn,B,en,,,,,yes,yes\n";
  auto path = write("content.csv", text);
  ASSERT_TRUE(import(ImportKind::content, path).ok());
  db_->exec("UPDATE content SET withdrawn_at = 1, withdrawn_by = 'compliance' WHERE content_id = 'C4'");
  ASSERT_TRUE(import(ImportKind::content, path, kT0Import + 1).ok());
  EXPECT_TRUE(store::ContentGet(*db_, "C4")->withdrawn);
  EXPECT_EQ(store::ContentCount(*db_), 4);

  auto ids = [](const std::vector<Content>& v) {
    std::vector<std::string> out;
    for (const auto& c : v) out.push_back(c.content_id);
    return out;
  };
  EXPECT_EQ(ids(store::ContentListFallbackPool(*db_, "2026-11-28")), (std::vector<std::string>{"C1"}));
  EXPECT_EQ(ids(store::ContentListFallbackPool(*db_, "2026-12-31")), (std::vector<std::string>{"C1", "C2"}));
  EXPECT_EQ(ids(store::ContentListEmergencyPool(*db_, "2026-11-28")), (std::vector<std::string>{"C3"}));
  EXPECT_FALSE(store::ContentGet(*db_, "nope").has_value());
}

TEST_F(ImportTest, EligibleAdvisorsAreOptedInAndNotPaused) {
  std::string text = kAdvisorHeader + advisor_row(0) + advisor_row(1, "email|whatsapp") + advisor_row(2, "whatsapp", "no") +
                     advisor_row(3, "webhook") + advisor_row(4);
  ASSERT_TRUE(import(ImportKind::advisors, write("a.csv", text)).ok());
  db_->exec("UPDATE advisors SET paused_from = '2026-11-27', paused_until = '2026-11-28' WHERE advisor_id = 'A1000'");
  db_->exec("UPDATE advisors SET paused_from = '2026-11-29' WHERE advisor_id = 'A1004'");  // open-ended

  auto ids = [](const std::vector<store::AdvisorRow>& v) {
    std::vector<std::string> out;
    for (const auto& a : v) out.push_back(a.advisor.advisor_id);
    return out;
  };
  auto on28 = store::AdvisorListEligible(*db_, "2026-11-28");
  EXPECT_EQ(ids(on28), (std::vector<std::string>{"A1001", "A1003", "A1004"}));
  EXPECT_EQ(ids(store::AdvisorListEligible(*db_, "2026-11-29")), (std::vector<std::string>{"A1000", "A1001", "A1003"}));

  // Channels come in the advisor's preference order with their addresses.
  const auto& a1 = on28[0];
  ASSERT_EQ(a1.channels.size(), 2U);
  EXPECT_EQ(a1.channels[0].channel, Channel::email);
  EXPECT_EQ(a1.channels[0].address, "A1001@example.com");
  EXPECT_EQ(a1.channels[1].address, "+919810010001");
  ASSERT_EQ(on28[1].channels.size(), 1U);
  EXPECT_EQ(on28[1].channels[0].channel, Channel::webhook);
  EXPECT_EQ(on28[1].channels[0].address, "A1003");
}

TEST_F(ImportTest, ProblemListIsCappedButEveryProblemCounted) {
  std::string text = kAdvisorHeader;
  for (int i = 0; i < 5; ++i) text += "B" + std::to_string(i) + ",N,gold,,,,,sms,yes,en,\n";
  ImportOptions o;
  o.kind = ImportKind::advisors;
  o.path = write("a.csv", text);
  o.max_problems = 2;
  auto r = run_import(db_.get(), ImportRules{}, o, kT0Import);
  EXPECT_EQ(r.problem_count, 5U);
  EXPECT_EQ(r.problems.size(), 2U);
  auto msg = format_import_report(r);
  EXPECT_NE(msg.find("\n… and 3 more"), std::string::npos) << msg;

  auto j = import_report_json(r);
  EXPECT_EQ(j.at("ok"), false);
  EXPECT_EQ(j.at("error_count"), 5);
  EXPECT_EQ(j.at("errors_omitted"), 3);
  EXPECT_EQ(j.at("errors")[0].at("line"), 2);
  EXPECT_EQ(j.at("errors")[0].at("field"), "channels");
  EXPECT_EQ(j.at("errors")[0].at("message"), "\"sms\" is not a known channel (whatsapp, email, webhook)");
}

TEST_F(ImportTest, EmptyFileAndBadHeader) {
  auto r = import(ImportKind::content, write("empty.csv", ""));
  EXPECT_FALSE(r.ok());
  ASSERT_EQ(r.problems.size(), 1U);
  EXPECT_EQ(r.problems[0].message,
            "the file is empty; expected the header "
            "content_id,title,body,language,topics,media_url,valid_from,valid_until,fallback_eligible,emergency");

  r = import(ImportKind::assignments, write("h.csv", "advisor,date,content_id\nA1,2026-11-28,C1\n"));
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.rows, 1U);
  EXPECT_EQ(r.problem_count, 2U);  // unknown "advisor", missing "advisor_id"; rows are not checked
}

TEST_F(ImportTest, MalformedCsvIsReportedWithItsLine) {
  std::string text = kAdvisorHeader + advisor_row(0) + "A2,\"unterminated,gold,,,,,webhook,yes,en,\n" + advisor_row(1);
  auto r = import(ImportKind::advisors, write("a.csv", text));
  EXPECT_FALSE(r.ok());
  ASSERT_EQ(r.problems.size(), 1U);
  EXPECT_EQ(r.problems[0].line, 3U);
  EXPECT_EQ(r.problems[0].message, "unterminated quoted field");
  EXPECT_EQ(store::AdvisorCount(*db_), 0);
}

TEST_F(ImportTest, ReportOfAFileThatIsNotUtf8IsValidJson) {
  auto r = import(ImportKind::content, write("c.csv", kContentHeader + "C1,T\xFF,B,en,,,\xFF-01-01,,,\n"));
  EXPECT_EQ(r.problem_count, 2U);
  EXPECT_NO_THROW((void)import_report_json(r).dump());
}

// A database failure half-way through the write (here a trigger on the 2,001st advisor) rolls
// everything back and surfaces as a StoreError; nothing is half-imported.
TEST_F(ImportTest, DatabaseFailureMidWriteRollsBackEverything) {
  std::string text = kAdvisorHeader;
  for (int i = 0; i < 20000; ++i) text += advisor_row(i);
  db_->exec(
      "CREATE TRIGGER fail_midway BEFORE INSERT ON advisors WHEN NEW.advisor_id = 'A2000' "
      "BEGIN SELECT RAISE(ABORT, 'injected failure'); END");
  auto path = write("a.csv", text);
  EXPECT_THROW(import(ImportKind::advisors, path), store::StoreError);
  EXPECT_EQ(store::AdvisorCount(*db_), 0);
  EXPECT_EQ(count("audit_log"), 0);
  // The same file imports once the fault is gone. (A fresh connection: Db::stmt resets a cached
  // statement with SQLiteCpp's throwing reset(), which re-reports the statement's last error once.)
  db_->exec("DROP TRIGGER fail_midway");
  db_ = std::make_unique<store::Db>((dir_ / "daybreak.db").string());
  auto r = import(ImportKind::advisors, path);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(store::AdvisorCount(*db_), 20000);
  auto check = db_->raw().execAndGet("PRAGMA integrity_check").getString();
  EXPECT_EQ(check, "ok");
}

TEST_F(ImportTest, MissingFileIsAUsageError) {
  EXPECT_THROW(import(ImportKind::advisors, (dir_ / "nope.csv").string()), UsageError);
  EXPECT_THROW(import(ImportKind::advisors, dir_.string()), UsageError);
}

TEST_F(ImportTest, CrLfBomExportFromASpreadsheetImports) {
  std::string text = "\xEF\xBB\xBF" "advisor_id,name,tier,phone,email,timezone,slot,channels,opted_in,language,topics\r\n"
                     "A1,\"Rao, Asha\",silver,+44 7911 123456,,Europe/London,08:00,whatsapp,TRUE,en-GB,\r\n";
  auto r = import(ImportKind::advisors, write("a.csv", text));
  ASSERT_TRUE(r.ok()) << format_import_report(r);
  auto a = store::AdvisorGet(*db_, "A1");
  EXPECT_EQ(a->advisor.name, "Rao, Asha");
  EXPECT_EQ(a->advisor.phone, "+447911123456");
}

}  // namespace
}  // namespace daybreak

namespace daybreak {
namespace {

// Writes `text` into the FIFO `path` once a reader has opened it: `between` runs after the first
// `split` bytes are written and before the rest. Gives up after 10 s without a reader.
void feed_fifo(const std::string& path, const std::string& text, std::size_t split, const std::function<void()>& between) {
  int fd = -1;
  for (int i = 0; i < 1000 && fd < 0; ++i) {
    fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK);  // ENXIO until the reader opens its end
    if (fd < 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (fd < 0) return;
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  auto put = [fd](std::string_view part) {
    while (!part.empty()) {
      auto n = ::write(fd, part.data(), part.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      part.remove_prefix(static_cast<std::size_t>(n));
    }
  };
  put(std::string_view(text).substr(0, split));
  between();
  put(std::string_view(text).substr(split));
  ::close(fd);
}

// An import reading a slow input (standard input from a pipe) holds no lock while it reads: another
// connection -- the dispatcher's writer during a live run -- commits in the middle of it without
// waiting, and the import still writes the whole file afterwards.
TEST_F(ImportTest, NoWriteLockIsHeldWhileTheInputIsRead) {
  std::string text = kAdvisorHeader;
  for (int i = 0; i < 2000; ++i) text += advisor_row(i);
  auto fifo = (dir_ / "advisors.fifo").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);

  std::string other_error = "the feeding thread never wrote";
  std::thread feeder([&] {
    feed_fifo(fifo, text, text.size() / 2, [&] {
      try {
        store::OpenOptions oo;
        oo.busy_timeout_ms = 300;  // far longer than a commit takes, far shorter than the test
        store::Db other(db_path(), oo);
        Advisor a;
        a.advisor_id = "Z1";
        a.name = "Concurrent";
        a.tier = "gold";
        a.phone = "+919810099999";
        a.timezone = "Asia/Kolkata";
        a.slot = "06:00";
        a.channels = {Channel::whatsapp};
        a.language = "en";
        other.write_tx([&] { store::AdvisorUpsert(other, {a, kT0Import}); });
        other_error.clear();
      } catch (const std::exception& e) {
        other_error = e.what();
      }
    });
  });
  auto r = import(ImportKind::advisors, fifo);
  feeder.join();
  EXPECT_EQ(other_error, "") << "a write during the import's read had to wait for its lock";
  ASSERT_TRUE(r.ok()) << format_import_report(r);
  EXPECT_EQ(r.imported, 2000U);
  EXPECT_EQ(store::AdvisorCount(*db_), 2001);
}

// The write lock is held only for the write itself, and the report says how long; a rejected file
// never takes it.
TEST_F(ImportTest, TheReportSaysHowLongTheWriteLockWasHeld) {
  std::string text = kAdvisorHeader;
  for (int i = 0; i < 500; ++i) text += advisor_row(i);
  auto good = import(ImportKind::advisors, write("a.csv", text));
  ASSERT_TRUE(good.ok()) << format_import_report(good);
  EXPECT_GT(good.write_lock_ms, 0.0);
  EXPECT_LT(good.write_lock_ms, 5000.0);
  auto bad = import(ImportKind::advisors, write("b.csv", text + "A9,Bad,gold,+9198,,,,whatsapp,yes,en,\n"));
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.write_lock_ms, 0.0);
}

// Validation and the write are two phases now: content withdrawn by another process in between
// must not be imported past. The file is rejected whole, naming the item, and nothing is written.
TEST_F(ImportTest, ContentWithdrawnBetweenCheckAndWriteRejectsTheWholeFile) {
  ASSERT_TRUE(import(ImportKind::advisors, write("a.csv", kAdvisorHeader + advisor_row(0) + advisor_row(1))).ok());
  ASSERT_TRUE(import(ImportKind::content, write("c.csv", kContentHeader + "C1,T,B,en,tax,,,,yes,no\nC2,T,B,en,tax,,,,yes,no\n")).ok());
  auto audit_before = count("audit_log");
  ImportOptions o;
  o.kind = ImportKind::assignments;
  o.path = write("s.csv", kAssignmentHeader + "A1000,2026-11-28,C1\nA1001,2026-11-28,C2\n");
  o.after_validation = [&] {
    store::Db other(db_path());
    other.exec("UPDATE content SET withdrawn_at = 1, withdrawn_by = 'someone' WHERE content_id = 'C2'");
  };
  auto r = run_import(db_.get(), ImportRules{}, o, kT0Import);
  EXPECT_FALSE(r.ok());
  ASSERT_EQ(r.problems.size(), 1U);
  EXPECT_EQ(r.problems[0].field, "content_id");
  EXPECT_NE(r.problems[0].message.find("\"C2\" was withdrawn while the file was being checked"), std::string::npos)
      << r.problems[0].message;
  EXPECT_EQ(r.imported, 0U);
  EXPECT_EQ(store::AssignmentCount(*db_), 0);
  EXPECT_EQ(count("audit_log"), audit_before);
  EXPECT_NE(format_import_report(r).find("nothing imported"), std::string::npos);
}

// An advisor removed by another process between the check and the write: the foreign key fails
// the write, the error names the row, and nothing of the file is imported.
TEST_F(ImportTest, AdvisorGoneBetweenCheckAndWriteFailsTheWholeWrite) {
  ASSERT_TRUE(import(ImportKind::advisors, write("a.csv", kAdvisorHeader + advisor_row(0) + advisor_row(1))).ok());
  ASSERT_TRUE(import(ImportKind::content, write("c.csv", kContentHeader + "C1,T,B,en,tax,,,,yes,no\n")).ok());
  ImportOptions o;
  o.kind = ImportKind::assignments;
  o.path = write("s.csv", kAssignmentHeader + "A1000,2026-11-28,C1\nA1001,2026-11-28,C1\n");
  o.after_validation = [&] {
    store::Db other(db_path());
    other.exec("DELETE FROM advisors WHERE advisor_id = 'A1001'");
  };
  try {
    run_import(db_.get(), ImportRules{}, o, kT0Import);
    ADD_FAILURE() << "the import succeeded";
  } catch (const store::StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("assignment of \"A1001\" on 2026-11-28"), std::string::npos) << e.what();
  }
  EXPECT_EQ(store::AssignmentCount(*db_), 0);
}

}  // namespace
}  // namespace daybreak
