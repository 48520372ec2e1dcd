// Logging to the journal (cli/common.hpp): lines carry the sd-daemon(3) priority prefix instead
// of a timestamp when stderr is the stream systemd named in JOURNAL_STREAM, and only then.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <regex>
#include <sstream>

#include "cli/common.hpp"

namespace daybreak {
namespace {

std::string dev_ino(int fd) {
  struct stat st{};
  EXPECT_EQ(::fstat(fd, &st), 0);
  return std::to_string(static_cast<unsigned long long>(st.st_dev)) + ":" +
         std::to_string(static_cast<unsigned long long>(st.st_ino));
}

TEST(JournalStream, MatchesOnlyTheFileItNames) {
  FILE* a = ::tmpfile();
  FILE* b = ::tmpfile();
  ASSERT_TRUE(a && b);
  const std::string id = dev_ino(::fileno(a));
  EXPECT_TRUE(is_journal_stream(id.c_str(), ::fileno(a)));
  // A wrapper that redirects stderr to a log file keeps the variable: that file is not the journal.
  EXPECT_FALSE(is_journal_stream(id.c_str(), ::fileno(b)));
  EXPECT_FALSE(is_journal_stream(nullptr, ::fileno(a)));
  EXPECT_FALSE(is_journal_stream("", ::fileno(a)));
  EXPECT_FALSE(is_journal_stream("not-a-stream", ::fileno(a)));
  EXPECT_FALSE(is_journal_stream((id + "x").c_str(), ::fileno(a))) << "trailing garbage";
  EXPECT_FALSE(is_journal_stream(id.c_str(), -1));
  ::fclose(a);
  ::fclose(b);
}

struct LogFormatTest : ::testing::Test {
  std::ostringstream out;
  std::shared_ptr<spdlog::logger> log =
      std::make_shared<spdlog::logger>("format-test", std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
  void SetUp() override { log->set_level(spdlog::level::trace); }
};

TEST_F(LogFormatTest, JournalLinesCarryThePriorityAndNoTimestamp) {
  set_log_format(*log, "dispatch", true);
  log->critical("c");
  log->error("e {}", 1);
  log->warn("w");
  log->info("i");
  log->debug("d");
  log->trace("t");
  log->flush();
  EXPECT_EQ(out.str(), "<2>c\n<3>e 1\n<4>w\n<6>i\n<7>d\n<7>t\n");
}

TEST_F(LogFormatTest, TerminalAndFileLinesKeepTimestampLevelAndProgram) {
  set_log_format(*log, "dispatch", false);
  log->warn("w");
  log->flush();
  const std::regex line(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} warning dispatch\[\d+\]: w\n)");
  EXPECT_TRUE(std::regex_match(out.str(), line)) << out.str();
  EXPECT_EQ(out.str().find('<'), std::string::npos);
}

}  // namespace
}  // namespace daybreak
