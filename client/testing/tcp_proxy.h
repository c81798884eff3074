// TcpProxy: a TCP forwarder on 127.0.0.1:0 for tests, placed between a client
// and a server so that a test can break the client's connections without
// touching the server.
//
// Thread-safety: every method may be called from any thread.
//
//   TcpProxy proxy(server.address());
//   auto client = Client::Connect(proxy.address());
//   proxy.SetBlocked(true);   // new connections are closed at once
//   proxy.CutAll();           // open ones are closed now
//   ...
//   proxy.SetBlocked(false);  // the client reconnects
#ifndef TSHARE_CLIENT_TESTING_TCP_PROXY_H_
#define TSHARE_CLIENT_TESTING_TCP_PROXY_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace tshare::client::testing {

class TcpProxy final {
 public:
  // Forwards to `upstream` ("127.0.0.1:port"). Aborts the test program if it
  // cannot listen.
  explicit TcpProxy(std::string upstream);
  // Closes everything and joins its threads.
  ~TcpProxy();

  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  int port() const { return port_; }
  std::string address() const;

  // Closes every open connection, both ways. New connections are still accepted
  // unless blocked.
  void CutAll() ABSL_LOCKS_EXCLUDED(mu_);
  // While blocked, each new connection is closed as soon as it is accepted.
  void SetBlocked(bool blocked) ABSL_LOCKS_EXCLUDED(mu_);
  // Connections forwarded so far (not counting those closed while blocked).
  int forwarded() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Link {
    int client_fd = -1;
    int upstream_fd = -1;
    std::thread pump;
  };

  void AcceptLoop();
  static void Pump(int a, int b);

  const std::string upstream_host_;
  int upstream_port_ = 0;
  int listen_fd_ = -1;
  int port_ = 0;
  // A pipe whose write end wakes the accept loop at destruction.
  int wake_[2] = {-1, -1};
  std::thread acceptor_;

  mutable absl::Mutex mu_;
  bool blocked_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int forwarded_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::unique_ptr<Link>> links_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tshare::client::testing

#endif  // TSHARE_CLIENT_TESTING_TCP_PROXY_H_
