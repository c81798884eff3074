// socket_client: the seed's socket client (a connection thread, a sender
// thread and a receiver thread sharing one client state), with that state in
// shares on tshared, so that anyone can watch it: this program's monitor, or
// `tsharectl watch --prefix socket/client-1/`.
//
// The state, under socket/<id>/:
//   connected    bool    set by the connection thread once the TCP
//                        connection is up
//   last_error   string  what the last connection attempt ran into ("" once
//                        connected)
//   sent         int     lines the sender wrote
//   received     int     echoed lines the receiver read back
//
// The sender and the receiver wait for `connected` on the server
// (Client::WaitFor, by version: no polling, no missed change), then exchange
// --messages lines with the peer, a TCP echo server: --peer=HOST:PORT, or by
// default one this program runs on 127.0.0.1 (the seed used a Node.js server).
// The monitor prints every change of the state as the server reports it (a
// prefix watch from the revision of the initial state), and the program ends
// once it has seen all the messages sent and received.
//
// The server is --server, else $TSHARE_SERVER, else 127.0.0.1:7420.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "core/share.h"

ABSL_FLAG(std::string, server, "",
          "tshared address (default: $TSHARE_SERVER or 127.0.0.1:7420)");
ABSL_FLAG(std::string, id, "client-1",
          "This client's name; its state is under socket/<id>/");
ABSL_FLAG(std::string, peer, "",
          "Echo server HOST:PORT; empty: run one on 127.0.0.1");
ABSL_FLAG(int, messages, 5, "Lines to send and receive");
ABSL_FLAG(int, attempts, 3, "Connection attempts before giving up");

namespace {

using tshare::client::Client;
using tshare::client::Value;

std::string ServerAddress() {
  std::string server = absl::GetFlag(FLAGS_server);
  if (server.empty()) {
    const char* env = std::getenv("TSHARE_SERVER");
    server = env != nullptr ? env : "127.0.0.1:7420";
  }
  return server;
}

std::string Errno(absl::string_view what) {
  return absl::StrCat(what, ": ", std::strerror(errno));
}

// A TCP server on 127.0.0.1 that echoes what one client sends, until that
// client closes.
class EchoServer final {
 public:
  // The address it listens on, or the error.
  absl::StatusOr<std::string> Start() {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) return absl::InternalError(Errno("socket"));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        listen(listen_fd_, 1) != 0 ||
        getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) !=
            0) {
      return absl::InternalError(Errno("echo server"));
    }
    thread_ = std::thread([this] {
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      char buffer[4096];
      ssize_t n;
      while ((n = read(fd, buffer, sizeof(buffer))) > 0) {
        if (write(fd, buffer, static_cast<size_t>(n)) != n) break;
      }
      close(fd);
    });
    return absl::StrCat("127.0.0.1:", ntohs(addr.sin_port));
  }
  ~EchoServer() {
    if (listen_fd_ >= 0) shutdown(listen_fd_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    if (listen_fd_ >= 0) close(listen_fd_);
  }

 private:
  int listen_fd_ = -1;
  std::thread thread_;
};

// A connected TCP socket to host:port (IPv4), or the error.
absl::StatusOr<int> Dial(const std::string& peer) {
  std::vector<std::string> parts = absl::StrSplit(peer, ':');
  int port = 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[1], &port) ||
      inet_pton(AF_INET, parts[0].c_str(), &addr.sin_addr) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--peer=", peer, " is not IPv4 HOST:PORT"));
  }
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::UnavailableError(Errno("socket"));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    absl::Status error =
        absl::UnavailableError(Errno(absl::StrCat("connect to ", peer)));
    close(fd);
    return error;
  }
  return fd;
}

// Blocks until the connection thread has written `connected` (after the version
// the reset left), then says whether the connection is up.
absl::Status WaitUntilConnected(const Client& c, const std::string& key,
                                uint64_t reset_version) {
  absl::StatusOr<tshare::client::Versioned<bool>> v =
      c.WaitFor<bool>(key, reset_version, absl::Now() + absl::Seconds(30));
  if (!v.ok()) return v.status();
  if (!v->value) return absl::UnavailableError("the connection thread gave up");
  return absl::OkStatus();
}

// What the monitor has seen, key by key.
struct Seen {
  absl::Mutex mu;
  std::map<std::string, Value> state ABSL_GUARDED_BY(mu);
};

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string prefix =
      absl::StrCat("socket/", absl::GetFlag(FLAGS_id), "/");
  const std::string connected = prefix + "connected";
  const std::string last_error = prefix + "last_error";
  const std::string sent = prefix + "sent";
  const std::string received = prefix + "received";
  const int messages = absl::GetFlag(FLAGS_messages);

  absl::StatusOr<std::unique_ptr<Client>> client =
      Client::Connect(ServerAddress());
  if (!client.ok()) {
    std::fprintf(stderr, "socket_client: %s\n",
                 client.status().ToString().c_str());
    return 1;
  }
  const Client& c = **client;

  EchoServer echo;
  std::string peer = absl::GetFlag(FLAGS_peer);
  if (peer.empty()) {
    absl::StatusOr<std::string> address = echo.Start();
    if (!address.ok()) {
      std::fprintf(stderr, "socket_client: %s\n",
                   address.status().ToString().c_str());
      return 1;
    }
    peer = *address;
  }

  // The initial state, in one transaction: a watcher never sees half of it.
  absl::StatusOr<tshare::client::TxnResult> reset =
      c.Txn()
          .Then(tshare::client::Op::Set(connected, false))
          .Then(tshare::client::Op::Set(last_error, ""))
          .Then(tshare::client::Op::Set(sent, 0))
          .Then(tshare::client::Op::Set(received, 0))
          .Commit();
  if (!reset.ok()) {
    std::fprintf(stderr, "socket_client: %s\n",
                 reset.status().ToString().c_str());
    return 1;
  }
  const uint64_t reset_version = reset->results[0].kv.version;

  // The monitor: every change of the state, in order.
  Seen seen;
  absl::Notification all_done;
  auto print_and_check = [&](const std::string& key, const Value& value) {
    std::printf("  %s = %s\n", key.substr(prefix.size()).c_str(),
                value.DebugString().c_str());
    absl::MutexLock lock(&seen.mu);
    seen.state[key] = value;
    auto count =
        [&](const std::string& k) ABSL_EXCLUSIVE_LOCKS_REQUIRED(seen.mu) {
          auto it = seen.state.find(k);
          return it != seen.state.end() &&
                         it->second.kind() == tshare::client::ValueKind::kInt
                     ? it->second.int_value()
                     : -1;
        };
    if (count(sent) == messages && count(received) == messages &&
        !all_done.HasBeenNotified()) {
      all_done.Notify();
    }
  };
  // Starts at the reset's revision: the reset itself, then every later change.
  tshare::client::WatchOptions from_reset;
  from_reset.prefix = true;
  from_reset.start_revision = reset->revision;
  uint64_t last_printed = 0;  // Only the watch's thread uses it.
  absl::StatusOr<tshare::client::WatchHandle> monitor = c.Watch(
      prefix,
      [&](const tshare::client::WatchUpdate& u) {
        for (const tshare::client::WatchEvent& e : u.events) {
          if (e.revision() != last_printed) {
            last_printed = e.revision();
            std::printf("at revision %llu:\n",
                        static_cast<unsigned long long>(last_printed));
          }
          if (e.kv.value.has_value()) print_and_check(e.kv.key, *e.kv.value);
        }
        std::fflush(stdout);
      },
      from_reset);
  if (!monitor.ok()) {
    std::fprintf(stderr, "socket_client: %s\n",
                 monitor.status().ToString().c_str());
    return 1;
  }

  // The socket itself is this process's own state, shared by the three threads
  // in memory.
  tshare::core::Share<int> socket_fd(-1);
  absl::Mutex errors_mu;
  std::vector<std::string> errors;
  auto fail = [&](const absl::Status& s) {
    absl::MutexLock lock(&errors_mu);
    errors.push_back(s.ToString());
  };

  std::thread connection([&] {
    const int attempts = absl::GetFlag(FLAGS_attempts);
    for (int attempt = 1; attempt <= attempts; ++attempt) {
      absl::StatusOr<int> fd = Dial(peer);
      if (fd.ok()) {
        socket_fd.Set(*fd);
        absl::Status s = c.Txn()
                             .Then(tshare::client::Op::Set(connected, true))
                             .Then(tshare::client::Op::Set(last_error, ""))
                             .Commit()
                             .status();
        if (!s.ok()) fail(s);
        return;
      }
      absl::Status s = c.Set(last_error, absl::StrCat("attempt ", attempt, ": ",
                                                      fd.status().message()))
                           .status();
      if (!s.ok()) return fail(s);
      // Back off before the next try.
      if (attempt < attempts) absl::SleepFor(absl::Milliseconds(200) * attempt);
    }
    fail(absl::UnavailableError(absl::StrCat(
        "no connection to ", peer, " after ", attempts, " attempts")));
    // Tell the others, who wait for `connected` to be written.
    c.Set(connected, false).IgnoreError();
  });

  std::thread sender([&] {
    if (absl::Status s = WaitUntilConnected(c, connected, reset_version);
        !s.ok()) {
      return fail(s);
    }
    const int fd = socket_fd.Get();
    for (int i = 1; i <= messages; ++i) {
      const std::string line = absl::StrCat("message ", i, "\n");
      if (write(fd, line.data(), line.size()) !=
          static_cast<ssize_t>(line.size())) {
        return fail(absl::UnavailableError(Errno("write")));
      }
      if (absl::Status s = c.Add(sent, 1).status(); !s.ok()) return fail(s);
    }
  });

  std::thread receiver([&] {
    if (absl::Status s = WaitUntilConnected(c, connected, reset_version);
        !s.ok()) {
      return fail(s);
    }
    const int fd = socket_fd.Get();
    std::string pending;
    int lines = 0;
    char buffer[1024];
    while (lines < messages) {
      const ssize_t n = read(fd, buffer, sizeof(buffer));
      if (n <= 0) return fail(absl::UnavailableError(Errno("read")));
      pending.append(buffer, static_cast<size_t>(n));
      for (size_t nl; lines < messages &&
                      (nl = pending.find('\n')) != std::string::npos;) {
        pending.erase(0, nl + 1);
        ++lines;
        if (absl::Status s = c.Add(received, 1).status(); !s.ok())
          return fail(s);
      }
    }
  });

  connection.join();
  sender.join();
  receiver.join();
  const bool done = errors.empty() &&
                    all_done.WaitForNotificationWithTimeout(absl::Seconds(30));
  monitor->Stop();
  if (const int fd = socket_fd.Get(); fd >= 0)
    close(fd);  // The echo server sees EOF.

  for (const std::string& e : errors)
    std::fprintf(stderr, "socket_client: %s\n", e.c_str());
  absl::MutexLock lock(&seen.mu);
  auto show = [&](const std::string& k) ABSL_EXCLUSIVE_LOCKS_REQUIRED(seen.mu) {
    auto it = seen.state.find(k);
    return it == seen.state.end() ? std::string("?") : it->second.DebugString();
  };
  std::printf("Status: Connected=%s, Sent=%s, Received=%s\n",
              show(connected).c_str(), show(sent).c_str(),
              show(received).c_str());
  return done ? 0 : 1;
}
