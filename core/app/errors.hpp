#pragma once
// What the use cases (core/app) and their command front ends (core/cli) share: the documented
// exit codes, the errors a use case throws that a front end maps to them, and the masking of
// an advisor's address wherever one is shown.
#include <stdexcept>
#include <string>

namespace daybreak {

/// Documented exit codes (README "Exit codes", every man page's EXIT STATUS).
enum ExitCode : int {
  kExitOk = 0,
  kExitCheckFailed = 1,  ///< ran, but the SLA or a check failed
  kExitUsage = 2,
  kExitConfig = 3,
  kExitDatabase = 4,
  kExitProvider = 5,     ///< provider or credentials failure
  kExitNotPublished = 6, ///< planned on the SQLite file, but not published to the PostgreSQL ledger
};

/// Bad flags or arguments: exit 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
/// Provider or credentials failure that stops a command: exit 5.
class ProviderError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
/// A day planned on this host's SQLite file that could not be published to the PostgreSQL ledger
/// ([database] url): the plan stays committed in SQLite; exit 6, and a re-run publishes it.
class PublishError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
/// Input that failed validation (a bad import file, a bad id): exit 1 with every problem listed.
class CheckFailed : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// "+91******3210": enough to recognise, not enough to leak (logs never carry full addresses).
std::string mask_address(const std::string& address);

}  // namespace daybreak
