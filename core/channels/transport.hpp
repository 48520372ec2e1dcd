#pragma once
// Executes adapters' requests. CurlTransport runs a small pool of threads, each driving a curl
// multi handle: many concurrent HTTP transfers per thread, connections kept alive and reused.
// SMTP requests never run there: each email sender has its own threads (channels/smtp_lane.hpp).
#include <functional>
#include <memory>

#include "channels/channel.hpp"

namespace daybreak::channels {

/// Runs requests asynchronously; `done` is called exactly once per request, on a transport thread.
class Transport {
 public:
  using Done = std::function<void(Response)>;
  virtual ~Transport() = default;
  virtual void submit(Request req, Done done) = 0;
  /// Stops the threads; transfers still running are completed with a transport failure.
  virtual void shutdown() = 0;
};

/// The answer to a request a stopped transport never sent: aborted (curl's code), not arrived,
/// with `why`; every transport and SMTP lane answers a submit after shutdown with it.
Response never_sent_response(std::string message_id, const char* why);

struct CurlTransportOptions {
  int workers = 2;                ///< HTTP threads, each with its own multi handle
  long max_host_connections = 0;  ///< per thread and host; 0 = unlimited
  /// PEM CA file that verifies https:// peers; empty: CURL_CA_BUNDLE, else SSL_CERT_FILE, else
  /// libcurl's own store (resolve_ca_file).
  std::string ca_file;
};

std::unique_ptr<Transport> make_curl_transport(const CurlTransportOptions& opts);

/// The epoll transport ([dispatch] transport = "epoll"): http:// and https:// requests on
/// hand-written HTTP/1.1 over keep-alive connections, one epoll loop per worker, TLS through
/// OpenSSL (channels/epoll_transport.cpp); SMTP, and a scheme the environment names a proxy for
/// (http_proxy, https_proxy, all_proxy as libcurl reads them), go to a curl transport it starts
/// on first use.
/// Same contract as above: `done` once per request on a transport thread, failures with curl's
/// codes (35 for a failed handshake, 60 for a certificate that does not verify).
struct EpollTransportOptions {
  int workers = 2;                ///< HTTP threads, each with its own epoll set and connections
  long max_host_connections = 0;  ///< per thread and host; 0 = unlimited (requests beyond wait)
  Millis shutdown_grace_ms = 15000;  ///< shutdown lets requests in flight finish this long (as curl's)
  /// PEM CA file that verifies https:// peers; empty: CURL_CA_BUNDLE, else SSL_CERT_FILE, else
  /// OpenSSL's default store (resolve_ca_file).
  std::string ca_file;
};

std::unique_ptr<Transport> make_epoll_transport(const EpollTransportOptions& opts);

}  // namespace daybreak::channels
