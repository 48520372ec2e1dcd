#pragma once
// The unit tests' temporary database (STYLE.md 12): one directory per test under the system temp
// directory with a migrated daybreak database in it; removed after a passing test, kept (and its
// path printed) after a failing one so it can be opened with sqlite3.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "store/db.hpp"

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

  std::filesystem::path dir_;
  std::unique_ptr<store::Db> db_;

 private:
  std::string name_;
  std::string file_;
};

}  // namespace daybreak::test_support
