#pragma once
// A throwaway PostgreSQL server for store-level tests of the PostgreSQL ledger: initdb into a
// temporary directory, pg_ctl start on a random port with its unix socket in that directory
// (no TCP listener), stopped and removed at the end. The tests run as root and PostgreSQL
// refuses to run as root, so initdb and pg_ctl run as the `postgres` user (runuser) when we are
// root. Absent binaries (/usr/lib/postgresql/15/bin) mean `available()` is false and the
// tests skip with a message saying so.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>

namespace daybreak::test_support {

class PgServer {
 public:
  static constexpr const char* kBin = "/usr/lib/postgresql/15/bin";
  static bool binaries_present() { return std::filesystem::exists(std::string(kBin) + "/initdb"); }

  PgServer() {
    if (!binaries_present()) {
      why_ = std::string("PostgreSQL 15 binaries are absent (") + kBin + "/initdb): install the postgresql package";
      return;
    }
    char tmpl[] = "/tmp/daybreak-pg-XXXXXX";
    if (!::mkdtemp(tmpl)) {
      why_ = "mkdtemp failed";
      return;
    }
    dir_ = tmpl;
    std::random_device rd;
    port_ = 20000 + static_cast<int>(rd() % 20000);
    as_ = ::geteuid() == 0 ? "runuser -u postgres -- " : "";
    if (::geteuid() == 0) sh("chown postgres " + dir_ + " && chmod 700 " + dir_);
    if (sh(as_ + kBin + "/initdb -D " + dir_ + "/data -A trust -U daybreak --no-sync -E UTF8 >" + dir_ + "/initdb.log 2>&1") != 0) {
      why_ = "initdb failed (see " + dir_ + "/initdb.log)";
      return;
    }
    for (int tries = 0; tries < 5; ++tries) {
      const std::string opts = "-k " + dir_ + " -p " + std::to_string(port_) +
                               " -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off";
      if (sh(as_ + kBin + "/pg_ctl -D " + dir_ + "/data -l " + dir_ + "/server.log -w -t 30 -o \"" + opts + "\" start >/dev/null 2>&1") == 0) {
        up_ = true;
        return;
      }
      port_ = 20000 + static_cast<int>(rd() % 20000);  // the port may be taken: another one
    }
    why_ = "pg_ctl start failed (see " + dir_ + "/server.log)";
  }
  ~PgServer() {
    if (up_) sh(as_ + kBin + "/pg_ctl -D " + dir_ + "/data -m immediate -w stop >/dev/null 2>&1");
    if (!dir_.empty() && std::getenv("DAYBREAK_KEEP_PG") == nullptr) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }
  PgServer(const PgServer&) = delete;
  PgServer& operator=(const PgServer&) = delete;

  [[nodiscard]] bool up() const { return up_; }
  [[nodiscard]] const std::string& why_not() const { return why_; }
  /// The URI of database `db` on this server.
  [[nodiscard]] std::string url(const std::string& db = "postgres") const {
    return "postgresql://daybreak@/" + db + "?host=" + dir_ + "&port=" + std::to_string(port_);
  }
 private:
  static int sh(const std::string& cmd) { return std::system(cmd.c_str()); }
  std::string dir_;
  std::string as_;
  std::string why_;
  int port_ = 0;
  bool up_ = false;
};

}  // namespace daybreak::test_support
