#include "bench/resp.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace tshare::bench {
namespace {
// Nested arrays deeper than this are refused rather than recursed into.
constexpr int kMaxDepth = 8;
}  // namespace

std::string RespCommand(std::initializer_list<absl::string_view> args) {
  std::string out = absl::StrCat("*", args.size(), "\r\n");
  for (absl::string_view arg : args) {
    absl::StrAppend(&out, "$", arg.size(), "\r\n", arg, "\r\n");
  }
  return out;
}

void RespParser::Feed(absl::string_view bytes) {
  // Drop what was consumed once it dominates the buffer, so the buffer stays
  // small.
  if (consumed_ > 0 && consumed_ * 2 >= buffer_.size()) {
    buffer_.erase(0, consumed_);
    consumed_ = 0;
  }
  buffer_.append(bytes.data(), bytes.size());
}

bool RespParser::Next(RespValue* value) {
  if (!error_.empty()) return false;
  size_t pos = consumed_;
  const int r = Parse(&pos, value, 0);
  if (r == 1) {
    consumed_ = pos;
    return true;
  }
  if (r < 0 && error_.empty()) error_ = "malformed RESP";
  return false;
}

bool RespParser::Line(size_t* pos, absl::string_view* line) const {
  const size_t end = buffer_.find("\r\n", *pos);
  if (end == std::string::npos) return false;
  *line = absl::string_view(buffer_).substr(*pos, end - *pos);
  *pos = end + 2;
  return true;
}

int RespParser::Parse(size_t* pos, RespValue* value, int depth) {
  if (depth > kMaxDepth) {
    error_ = "RESP arrays nested too deep";
    return -1;
  }
  if (*pos >= buffer_.size()) return 0;
  const char kind = buffer_[*pos];
  size_t p = *pos + 1;
  absl::string_view line;
  if (!Line(&p, &line)) return 0;
  value->elements.clear();
  value->str.clear();
  value->integer = 0;
  switch (kind) {
    case '+':
      value->type = RespValue::Type::kSimpleString;
      value->str.assign(line.data(), line.size());
      break;
    case '-':
      value->type = RespValue::Type::kError;
      value->str.assign(line.data(), line.size());
      break;
    case ':':
      value->type = RespValue::Type::kInteger;
      if (!absl::SimpleAtoi(line, &value->integer)) {
        error_ = absl::StrCat("bad RESP integer '", line, "'");
        return -1;
      }
      break;
    case '$': {
      int64_t n = 0;
      if (!absl::SimpleAtoi(line, &n) || n < -1) {
        error_ = absl::StrCat("bad RESP bulk length '", line, "'");
        return -1;
      }
      if (n == -1) {
        value->type = RespValue::Type::kNull;
        break;
      }
      if (buffer_.size() < p + static_cast<size_t>(n) + 2) return 0;
      value->type = RespValue::Type::kBulkString;
      value->str.assign(buffer_, p, static_cast<size_t>(n));
      p += static_cast<size_t>(n);
      if (buffer_.compare(p, 2, "\r\n") != 0) {
        error_ = "RESP bulk string not followed by CRLF";
        return -1;
      }
      p += 2;
      break;
    }
    case '*': {
      int64_t n = 0;
      if (!absl::SimpleAtoi(line, &n) || n < -1) {
        error_ = absl::StrCat("bad RESP array length '", line, "'");
        return -1;
      }
      if (n == -1) {
        value->type = RespValue::Type::kNull;
        break;
      }
      value->type = RespValue::Type::kArray;
      std::vector<RespValue> elements(static_cast<size_t>(n));
      for (RespValue& e : elements) {
        const int r = Parse(&p, &e, depth + 1);
        if (r != 1) return r;
      }
      value->elements = std::move(elements);
      break;
    }
    default:
      error_ =
          absl::StrCat("unknown RESP type byte '", std::string(1, kind), "'");
      return -1;
  }
  *pos = p;
  return 1;
}

absl::StatusOr<int> TcpConnect(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string service = std::to_string(port);
  if (int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
      rc != 0) {
    return absl::UnavailableError(absl::StrCat("cannot resolve ", host, ":",
                                               port, ": ", gai_strerror(rc)));
  }
  int fd = -1;
  int err = 0;
  for (addrinfo* addr = res; addr != nullptr; addr = addr->ai_next) {
    fd = socket(addr->ai_family, addr->ai_socktype, addr->ai_protocol);
    if (fd < 0) {
      err = errno;
      continue;
    }
    if (connect(fd, addr->ai_addr, addr->ai_addrlen) == 0) break;
    err = errno;
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat("cannot connect to ", host, ":",
                                               port, ": ", std::strerror(err)));
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

}  // namespace tshare::bench
