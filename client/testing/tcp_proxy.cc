#include "client/testing/tcp_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace tshare::client::testing {
namespace {

[[noreturn]] void Die(const char* what) {
  std::perror(what);
  std::abort();
}

// Writes all of `data`; false if the peer is gone.
bool WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

TcpProxy::TcpProxy(std::string upstream)
    : upstream_host_(upstream.substr(0, upstream.rfind(':'))) {
  if (!absl::SimpleAtoi(upstream.substr(upstream.rfind(':') + 1),
                        &upstream_port_)) {
    std::fprintf(stderr, "TcpProxy: bad upstream address %s\n",
                 upstream.c_str());
    std::abort();
  }
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) Die("TcpProxy: socket");
  const int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) !=
      0) {
    Die("TcpProxy: bind");
  }
  if (::listen(listen_fd_, 64) != 0) Die("TcpProxy: listen");
  socklen_t len = sizeof(addr);
  if (::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) !=
      0) {
    Die("TcpProxy: getsockname");
  }
  port_ = ntohs(addr.sin_port);
  if (::pipe2(wake_, O_CLOEXEC) != 0) Die("TcpProxy: pipe");
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

TcpProxy::~TcpProxy() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  const char byte = 0;
  while (::write(wake_[1], &byte, 1) < 0 && errno == EINTR) {
  }
  acceptor_.join();
  CutAll();
  std::vector<std::unique_ptr<Link>> links;
  {
    absl::MutexLock lock(&mu_);
    links.swap(links_);
  }
  for (auto& link : links) {
    link->pump.join();
    ::close(link->client_fd);
    ::close(link->upstream_fd);
  }
  ::close(listen_fd_);
  ::close(wake_[0]);
  ::close(wake_[1]);
}

std::string TcpProxy::address() const {
  return absl::StrCat("127.0.0.1:", port_);
}

void TcpProxy::CutAll() {
  absl::MutexLock lock(&mu_);
  for (auto& link : links_) {
    // Wakes the pump, which then stops; the descriptors are closed by the
    // destructor.
    ::shutdown(link->client_fd, SHUT_RDWR);
    ::shutdown(link->upstream_fd, SHUT_RDWR);
  }
}

void TcpProxy::SetBlocked(bool blocked) {
  absl::MutexLock lock(&mu_);
  blocked_ = blocked;
}

int TcpProxy::forwarded() const {
  absl::MutexLock lock(&mu_);
  return forwarded_;
}

void TcpProxy::AcceptLoop() {
  while (true) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      Die("TcpProxy: poll");
    }
    if (fds[1].revents != 0) return;
    if ((fds[0].revents & POLLIN) == 0) continue;
    const int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    {
      absl::MutexLock lock(&mu_);
      if (blocked_ || stopping_) {
        ::close(client);
        continue;
      }
    }
    const int upstream = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(upstream_port_));
    if (upstream < 0 ||
        ::inet_pton(AF_INET, upstream_host_.c_str(), &addr.sin_addr) != 1 ||
        ::connect(upstream, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) !=
            0) {
      if (upstream >= 0) ::close(upstream);
      ::close(client);
      continue;
    }
    const int one = 1;
    ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    ::setsockopt(upstream, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    auto link = std::make_unique<Link>();
    link->client_fd = client;
    link->upstream_fd = upstream;
    link->pump = std::thread([client, upstream] { Pump(client, upstream); });
    absl::MutexLock lock(&mu_);
    ++forwarded_;
    links_.push_back(std::move(link));
  }
}

void TcpProxy::Pump(int a, int b) {
  char buffer[16384];
  while (true) {
    pollfd fds[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    bool done = false;
    for (int i = 0; i < 2 && !done; ++i) {
      if (fds[i].revents == 0) continue;
      const int from = i == 0 ? a : b;
      const int to = i == 0 ? b : a;
      const ssize_t n = ::recv(from, buffer, sizeof(buffer), 0);
      if (n <= 0 || !WriteAll(to, buffer, static_cast<size_t>(n))) done = true;
    }
    if (done) break;
  }
  // Either side ended: end both, so that each peer sees the connection go.
  ::shutdown(a, SHUT_RDWR);
  ::shutdown(b, SHUT_RDWR);
}

}  // namespace tshare::client::testing
