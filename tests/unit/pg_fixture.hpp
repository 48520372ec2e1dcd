#pragma once
// The fixture of the tests on the PostgreSQL ledger: a SQLite fixture (DbTest, or one derived
// from it: where a day is planned, then copied with migrate_ledger_to_pg) plus one throwaway
// PostgreSQL server per test suite (pg_server.hpp) with a fresh database on it for each test
// (url_). Without a server the test is skipped, saying why; derived fixtures call
// WithPg<…>::SetUp() (PgDbTest::SetUp()) first and return when it skipped or failed
// (IsSkipped() || HasFatalFailure()).
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>

#include "db_fixture.hpp"
#include "pg_server.hpp"
#include "store/pg.hpp"

namespace daybreak::test_support {

template <class Base>
class WithPg : public Base {
 protected:
  using Base::Base;
  static void SetUpTestSuite() { server_ = std::make_unique<PgServer>(); }
  static void TearDownTestSuite() { server_.reset(); }
  void SetUp() override {
    if (!server_->up()) GTEST_SKIP() << "no PostgreSQL server for this test: " << server_->why_not();
    Base::SetUp();
    if (this->HasFatalFailure()) return;
    static int n = 0;
    const std::string name = "test" + std::to_string(++n);
    store::PgConn(server_->url()).exec("CREATE DATABASE " + name);
    url_ = server_->url(name);
  }
  /// The first column of the first row of `sql` on the test's PostgreSQL database.
  std::int64_t pg_scalar(const std::string& sql) { return store::PgConn(url_).query(sql).i64(0, 0); }

  static inline std::unique_ptr<PgServer> server_;
  std::string url_;
};

/// DbTest with PostgreSQL: PgDbTest("name") names the test's directory as DbTest("name") does.
using PgDbTest = WithPg<DbTest>;

}  // namespace daybreak::test_support
