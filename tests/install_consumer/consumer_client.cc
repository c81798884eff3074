// Built against the installed package only: <tshare/client/...> headers,
// tshare::client. Talks to nothing real: it connects to a loopback port that
// nobody listens on and checks that a call fails the way it should, which
// proves that the headers, the library and its gRPC dependencies link and run.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <tshare/client/client.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace {

// A loopback port that nothing listens on (bound, then closed).
int ClosedPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (fd < 0 ||
      ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::perror("consumer_client: socket");
    std::exit(1);
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace

int main() {
  namespace tc = tshare::client;
  const std::string target = "127.0.0.1:" + std::to_string(ClosedPort());
  absl::StatusOr<std::unique_ptr<tc::Client>> client =
      tc::Client::Connect(target, {.default_deadline = absl::Seconds(2)});
  if (!client.ok()) {
    std::fprintf(stderr, "consumer_client: Connect: %s\n",
                 client.status().ToString().c_str());
    return 1;
  }
  const absl::StatusOr<int64_t> visits = (*client)->Get<int64_t>("visits");
  const absl::StatusCode code = visits.status().code();
  if (code != absl::StatusCode::kUnavailable &&
      code != absl::StatusCode::kDeadlineExceeded) {
    std::fprintf(stderr,
                 "consumer_client: Get from %s: got %s, want UNAVAILABLE or "
                 "DEADLINE_EXCEEDED\n",
                 target.c_str(), visits.status().ToString().c_str());
    return 1;
  }
  // The typed value API works without a server.
  absl::StatusOr<tc::Value> one = tc::Value::Of(1);
  if (!one.ok() || one->kind() != tc::ValueKind::kInt ||
      one->As<std::string>("visits").status().code() !=
          absl::StatusCode::kFailedPrecondition) {
    std::fprintf(stderr, "consumer_client: Value::Of(1) is not an int\n");
    return 1;
  }
  std::printf("consumer_client: ok (%s)\n", visits.status().ToString().c_str());
  return 0;
}
