#pragma once
// HTTP/1.1 pieces of the epoll transport (channels/epoll_transport.cpp): the request head it
// writes and an incremental response parser (status line, headers, a Content-Length, chunked or
// read-until-close body). No I/O here, so the parser is unit-tested byte by byte.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "domain/types.hpp"

namespace daybreak::channels::http1 {

/// An http:// URL split for a request: host (brackets of an IPv6 literal removed), port, and the
/// request target (path and query, "/" when empty; a fragment is dropped).
struct Url {
  bool tls = false;  ///< https://
  std::string host;
  int port = 80;
  std::string target;
  std::string host_header;  ///< "host" or "host:port" when the port is not the scheme's default
};
/// False when the URL is not http:// or https:// with a host and a valid port.
bool parse_url(std::string_view url, Url& out);

/// The request head for a POST of `body_size` bytes: request line, Host, Accept, the adapter's
/// headers ("Name: value"; "Name:" with nothing after the colon is dropped, as curl drops it),
/// Content-Length, the blank line.
std::string request_head(const Url& u, const std::vector<std::string>& headers, std::size_t body_size);

/// Parses one response as its bytes arrive. feed() consumes what it can; the body is kept up to
/// kMaxBody bytes (the rest is read and dropped, as the curl transport caps it).
class ResponseParser {
 public:
  static constexpr std::size_t kMaxBody = 64 * 1024;
  static constexpr std::size_t kMaxHead = 64 * 1024;
  enum class Result { more, done, error };

  /// Consumes data; `used` is how many bytes belonged to this response (the rest, if any, is
  /// bytes after it on the connection).
  Result feed(const char* data, std::size_t n, std::size_t& used);
  /// The peer closed: done when the body runs until close, else error.
  Result eof();

  [[nodiscard]] bool started() const { return any_bytes_; }
  [[nodiscard]] bool in_body() const { return state_ != State::head; }
  [[nodiscard]] long status() const { return status_; }
  [[nodiscard]] bool keep_alive() const { return keep_alive_; }
  /// Retry-After in milliseconds (delta-seconds, or an HTTP date against `now_unix_ms`); 0 none.
  [[nodiscard]] Millis retry_after_ms(Millis now_unix_ms) const;
  std::string& body() { return body_; }
  [[nodiscard]] const std::string& error() const { return error_; }

 private:
  enum class State { head, body_length, chunk_size, chunk_data, chunk_crlf, trailers, body_close, done };
  Result parse_head(std::string_view head);
  void keep(const char* p, std::size_t n);

  State state_ = State::head;
  std::string line_;  ///< a head or a chunk-size/trailer line being collected
  std::string body_;
  std::string retry_after_;
  std::string error_;
  long status_ = 0;
  bool keep_alive_ = true;
  bool any_bytes_ = false;
  unsigned long long remaining_ = 0;
};

}  // namespace daybreak::channels::http1
