#include "tests/integration/test_server.h"

#include <cstdio>
#include <cstdlib>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"

namespace tshare::testing {

TestServer::TestServer(service::ServerOptions options) {
  absl::StatusOr<std::unique_ptr<service::Server>> server =
      service::Server::Start(std::move(options));
  if (!server.ok()) {
    std::fprintf(stderr, "TestServer: cannot start the server: %s\n",
                 server.status().ToString().c_str());
    std::abort();
  }
  server_ = *std::move(server);
  channel_ = NewChannel();
}

TestServer::~TestServer() {
  server_->Shutdown(server_->options().shutdown_grace);
  server_->Wait();
}

std::shared_ptr<grpc::Channel> TestServer::NewChannel() const {
  grpc::ChannelArguments args;
  // A channel of its own, not one shared through gRPC's subchannel pool.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(server_->address(),
                                   grpc::InsecureChannelCredentials(), args);
}

service::ServerOptions TestServer::DefaultOptions() {
  service::ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.metrics_listen = "";
  options.pool_threads = 2;
  options.shutdown_grace = absl::Seconds(2);
  return options;
}

}  // namespace tshare::testing
