#pragma once
// `daybreak serve`, the operator console (op_serve.cpp): the pieces that are tested on their
// own (tokens file, login check, --listen rule, form decoding) and the page's embedded files
// (serve_assets.cpp: plain HTML, CSS and JavaScript, no build step, no third-party code).
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace daybreak::serve {

enum class Role { viewer, operator_ };

/// One line of the tokens file: NAME ROLE SHA256HEX.
struct OperatorToken {
  std::string name;
  Role role = Role::viewer;
  std::string sha256_hex;  ///< of the token the operator types, lower-case hex
};

/// SHA-256 of `data` as lower-case hex (OpenSSL).
std::string sha256_hex(const std::string& data);
/// Reads the tokens file: a regular file not readable or writable by group or others (like
/// every secret file of daybreak), one "NAME ROLE SHA256HEX" per line, `#` comments. Throws
/// ConfigError naming the file (and line) otherwise.
std::vector<OperatorToken> load_tokens(const std::string& path);
/// The operator whose name is `name` and whose token hashes to the listed hash (compared in
/// constant time), or nullopt.
std::optional<OperatorToken> check_login(const std::vector<OperatorToken>& tokens, const std::string& name, const std::string& token);

struct ListenAddress {
  std::string host;  ///< numeric IPv4 or IPv6 address
  std::uint16_t port = 0;
  bool v6 = false;
  bool loopback = false;
};
/// Parses --listen HOST:PORT ([::1]:PORT, localhost = 127.0.0.1). UsageError for anything else,
/// and for an address that is not loopback unless `allow_remote`.
ListenAddress parse_listen(const std::string& spec, bool allow_remote);

/// Failed logins per client address: after `max_failures` within `window_ms`, every login from
/// that address (right or wrong) is refused until the window has passed since the first of them,
/// so a token cannot be guessed at network speed. A success clears the address. At most
/// `max_clients` addresses are remembered (the stalest is forgotten first).
class LoginThrottle {
 public:
  LoginThrottle(int max_failures = 10, std::int64_t window_ms = 60'000, std::size_t max_clients = 10'000)
      : max_failures_(max_failures), window_ms_(window_ms), max_clients_(max_clients) {}
  /// Milliseconds until `client` may try again, 0 when it may now.
  [[nodiscard]] std::int64_t wait_ms(const std::string& client, std::int64_t now_ms) const;
  void failed(const std::string& client, std::int64_t now_ms);
  void succeeded(const std::string& client) { clients_.erase(client); }

 private:
  struct Failures {
    std::int64_t first_ms = 0;
    int count = 0;
  };
  int max_failures_;
  std::int64_t window_ms_;
  std::size_t max_clients_;
  std::map<std::string, Failures> clients_;
};

/// application/x-www-form-urlencoded → key/value (first value of a repeated key kept).
std::map<std::string, std::string> parse_form(const std::string& body);

/// The embedded files. console_html has {{CSRF}}, {{USER}} and {{ROLE}}; login_html {{ERROR}}.
std::string_view console_html();
std::string_view login_html();
std::string_view console_css();
std::string_view console_js();
std::string_view favicon_svg();

}  // namespace daybreak::serve
