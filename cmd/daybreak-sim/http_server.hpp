#pragma once
// daybreak-sim's HTTP/1.1 server: a few epoll event loops instead of a thread per connection.
//
// Why not cpp-httplib here (the status callback receiver uses libmicrohttpd, docs/architecture.md): the bench measured the
// simulator, not dispatch, as the limit at 3,500 sends/s on a 2-core machine. cpp-httplib 0.11
// serves each keep-alive connection on its own pool thread, the simulated provider latency was a
// sleep on that thread, and its keep-alive wait polls the idle socket every 10 ms; 60% of the
// simulator's samples were the kernel switching those threads (docs/performance.md). Here a
// connection is a buffer in an event loop and the latency is a timer, so 400 connections cost no
// threads and an idle connection costs nothing.
//
// Only what daybreak's clients send is understood: requests with a Content-Length body (or none),
// keep-alive and `Connection: close`, `Expect: 100-continue`, pipelining (answered in order).
// A chunked request body is refused with 501 and the connection closed.
#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct ssl_ctx_st;  // OpenSSL's SSL_CTX

namespace daybreak::sim::http {

struct Header {
  std::string_view name;
  std::string_view value;
};

/// One parsed request; every view points into the connection's input buffer and is valid only
/// while the handler runs.
struct Request {
  std::string_view method;
  std::string_view target;  ///< as sent: path and query
  std::string_view path;
  std::string_view query;   ///< after '?', without it; empty if none
  std::vector<Header> headers;
  std::string_view body;
  bool keep_alive = true;

  /// The first header of that name (case-insensitive), or empty.
  [[nodiscard]] std::string_view header(std::string_view name) const;
  [[nodiscard]] bool has_header(std::string_view name) const;
  /// A query parameter's raw value (no percent-decoding), if present.
  [[nodiscard]] std::optional<std::string_view> query_param(std::string_view key) const;
};

/// What a handler answers; `delay` holds the answer back without holding a thread.
struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  ///< extra headers
  std::chrono::nanoseconds delay{0};
};

enum class ParseState {
  kIncomplete,   ///< need more bytes
  kComplete,     ///< `request` and `consumed` are set
  kBad,          ///< 400: malformed request line or header
  kTooLarge,     ///< 413 (body) or 431 (headers): `status` says which
  kUnsupported,  ///< 501: Transfer-Encoding on a request
};

struct ParseResult {
  ParseState state = ParseState::kIncomplete;
  std::size_t consumed = 0;       ///< bytes of the request, headers and body (kComplete)
  bool expects_continue = false;  ///< headers are in, body is not, client sent Expect: 100-continue
  int status = 0;                 ///< HTTP status to answer when not kIncomplete/kComplete
  Request request;
};

/// Largest header block accepted (request line and headers).
inline constexpr std::size_t kMaxHeaderBytes = 64 * 1024;

/// Parses the first request in `data`. Pure: the server and the unit tests call it alike.
ParseResult parse_request(std::string_view data, std::size_t max_body);

/// The status line's reason phrase for the codes the simulator answers.
std::string_view reason_phrase(int status);

/// Serialises a response (status line, Content-Type, Content-Length, Date, extra headers,
/// `Connection: close` when closing, body) onto `out`. `date` is an IMF-fixdate.
void append_response(std::string& out, const Response& r, bool close, std::string_view date);

class Server {
 public:
  using Handler = std::function<Response(const Request&)>;

  Server(Handler handler, std::size_t max_body);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Binds and listens (backlog SOMAXCONN, SO_REUSEADDR only). Returns the port, or -1 with
  /// `error` set. Port 0 picks a free one.
  int bind(const std::string& host, int port, std::string& error);

  /// Serves https:// from now on: TLS with this PEM certificate chain and key. False with `error`
  /// when they cannot be used.
  bool enable_tls(const std::string& cert_file, const std::string& key_file, std::string& error);

  /// Serves on `loops` threads (the calling one included) until stop(). Each loop owns the
  /// connections it accepted; the handler must be thread-safe when loops > 1.
  void run(int loops);

  /// Stops every loop; safe from any thread. Answers still held back are dropped with their
  /// connections (the provider had accepted those messages already, as with a real timeout).
  void stop();

 private:
  class Loop;
  Handler handler_;
  std::size_t max_body_;
  int listen_fd_ = -1;
  int stop_fd_ = -1;  ///< eventfd: readable once stop() ran; never read, so every loop sees it
  ssl_ctx_st* tls_ = nullptr;  ///< enable_tls's context (SSL_CTX), shared by every loop
};

}  // namespace daybreak::sim::http
