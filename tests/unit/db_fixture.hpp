#pragma once
// The unit tests' temporary database (STYLE.md 12): one directory per test under the system temp
// directory with a migrated daybreak database in it; removed after a passing test, kept (and its
// path printed) after a failing one so it can be opened with sqlite3. Plus the rows several
// suites start from: content C1 with a run, a WhatsApp advisor, a planned delivery.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "domain/time.hpp"
#include "store/advisors.hpp"
#include "store/content.hpp"
#include "store/db.hpp"
#include "store/deliveries.hpp"
#include "store/runs.hpp"

namespace daybreak::test_support {

class DbTest : public ::testing::Test {
 protected:
  /// `name` goes into the directory's name (daybreak-<name>-XXXXXX), `file` is the database's.
  explicit DbTest(std::string name, std::string file = "daybreak.db") : name_(std::move(name)), file_(std::move(file)) {}

  /// Derived fixtures call this first and return if it failed (HasFatalFailure()).
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / ("daybreak-" + name_ + "-XXXXXX")).string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    db_ = std::make_unique<store::Db>(db_path());
  }
  void TearDown() override {
    db_.reset();
    if (dir_.empty()) return;
    if (HasFailure()) {
      std::cerr << name_ << ": kept " << dir_ << " for inspection\n";
    } else {
      std::filesystem::remove_all(dir_);
    }
  }
  [[nodiscard]] std::string db_path() const { return (dir_ / file_).string(); }
  /// The first column of the first row of `sql`, as an integer (counts, ids).
  std::int64_t scalar(const std::string& sql) {
    SQLite::Statement q(db_->raw(), sql);
    q.executeStep();
    return q.getColumn(0).getInt64();
  }

  std::filesystem::path dir_;
  std::unique_ptr<store::Db> db_;

 private:
  std::string name_;
  std::string file_;
};

/// Content "C1" and the run of the 06:00 IST slot of 2026-11-28 planned at `t0`; returns the run id.
inline std::int64_t add_content_and_run(store::Db& db, Millis t0) {
  Content c;
  c.content_id = "C1";
  c.title = "T";
  c.body = "B";
  c.language = "en";
  store::ContentUpsert(db, {c, t0});
  store::RunUpsertParams rp;
  rp.date = "2026-11-28";
  rp.window = window_for(t0, WindowPolicy{});
  return store::RunUpsert(db, rp);
}

/// Puts run `run_id`'s slot at `slot` with the default window around it (opens 30 s before, ends
/// 270 s after, deadline 5 min after).
inline void set_run_window(store::Db& db, std::int64_t run_id, Millis slot) {
  db.exec("UPDATE runs SET slot_at = " + std::to_string(slot) + ", window_start = " + std::to_string(slot - 30'000) +
          ", window_end = " + std::to_string(slot + 270'000) + ", deadline_at = " + std::to_string(slot + 300'000) +
          " WHERE run_id = " + std::to_string(run_id));
}

/// An opted-in gold advisor on WhatsApp, 06:00 Asia/Kolkata.
inline void add_whatsapp_advisor(store::Db& db, const std::string& id, Millis t0) {
  Advisor a;
  a.advisor_id = id;
  a.name = id;
  a.tier = "gold";
  a.phone = "+919810012345";
  a.timezone = "Asia/Kolkata";
  a.slot = "06:00";
  a.channels = {Channel::whatsapp};
  a.language = "en";
  store::AdvisorUpsert(db, {a, t0});
}

/// The planned WhatsApp delivery (wa-1, gold, editorial content C1) to `advisor` in a run of slot
/// `slot_at` on `date`, due at `planned_at`, deadline five minutes after the slot.
inline store::DeliveryInsertParams planned_delivery(std::int64_t run_id, const std::string& advisor,
                                                    const std::string& date, Millis slot_at, Millis planned_at,
                                                    Millis now) {
  store::DeliveryInsertParams p;
  p.run_id = run_id;
  p.advisor_id = advisor;
  p.date = date;
  p.slot_at = slot_at;
  p.content_id = "C1";
  p.source = "editorial";
  p.tier = "gold";
  p.channel = "whatsapp";
  p.sender = "wa-1";
  p.planned_at = planned_at;
  p.deadline_at = slot_at + 300'000;
  p.now = now;
  return p;
}

}  // namespace daybreak::test_support
