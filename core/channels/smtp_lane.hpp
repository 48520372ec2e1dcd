#pragma once
// SMTP off the shared HTTP loop. libcurl runs SMTP's DONE phase (sending the final "." and
// waiting for its reply) blocking, even under the multi interface: a relay slow to answer it
// froze the whole transport thread and every WhatsApp transfer on it. So every email sender
// (Request::lane) gets its own `concurrency` threads, each with its own easy handle and so its
// own connection: a slow or silent relay holds only that sender's threads. A session that
// failed or timed out is never reused: the handle, and its connection, are thrown away.
#include <memory>

#include "channels/transport.hpp"

namespace daybreak::channels {

class SmtpLanes {
 public:
  SmtpLanes();
  ~SmtpLanes();  ///< shutdown()
  SmtpLanes(const SmtpLanes&) = delete;
  SmtpLanes& operator=(const SmtpLanes&) = delete;
  /// Queues an SMTP request on its lane (made on first use with req.concurrency threads).
  void submit(Request req, Transport::Done done);
  /// Requests not started yet complete at once as failures that never left (nothing sent);
  /// sessions in progress get 15 s, then are aborted. Joins every thread: no `done` after it.
  void shutdown();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace daybreak::channels
