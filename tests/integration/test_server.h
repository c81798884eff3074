// A full tshared Server on 127.0.0.1:0 for integration tests, and a channel to
// it.
//
// Thread-safety: channel() and address() may be called from any thread; the
// TestServer itself is created and destroyed by one test.
//
// Example:
//   tshare::testing::TestServer server;
//   auto stub = tshare::v1::Shares::NewStub(server.channel());
//   grpc::ClientContext ctx;
//   tshare::v1::SetResponse response;
//   grpc::Status status = stub->Set(&ctx, request, &response);
#ifndef TSHARE_TESTS_INTEGRATION_TEST_SERVER_H_
#define TSHARE_TESTS_INTEGRATION_TEST_SERVER_H_

#include <memory>
#include <string>

#include "grpcpp/channel.h"
#include "service/options.h"
#include "service/server.h"

namespace tshare::testing {

class TestServer final {
 public:
  // Starts the server; the test aborts with the status if it cannot start.
  // `options.listen` should keep port 0 (DefaultOptions() does).
  explicit TestServer(service::ServerOptions options = DefaultOptions());
  // Shuts the server down (grace: options.shutdown_grace) and waits for it.
  ~TestServer();

  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  // One channel to the server, shared by the callers (connected lazily by
  // gRPC).
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }
  // A channel of its own: a second connection (another "client process").
  std::shared_ptr<grpc::Channel> NewChannel() const;
  // "127.0.0.1:port".
  std::string address() const { return server_->address(); }
  service::Server& server() { return *server_; }

  // listen 127.0.0.1:0, metrics off, two pool threads, short shutdown grace;
  // every other field keeps ServerOptions' default.
  static service::ServerOptions DefaultOptions();

 private:
  std::unique_ptr<service::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

}  // namespace tshare::testing

#endif  // TSHARE_TESTS_INTEGRATION_TEST_SERVER_H_
