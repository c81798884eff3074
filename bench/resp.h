// A minimal client side of RESP, the Redis protocol, for tshare-bench's Redis
// pub/sub mode: encoding commands, parsing replies and pushes incrementally
// from a byte stream, and opening a TCP connection. Nothing else of Redis is
// needed: redis-benchmark measures the rest.
//
// Thread-safety: RespParser is a plain object for one thread; the functions are
// pure.
//
//   std::string wire = RespCommand({"PUBLISH", "bench.pubsub", payload});
//   RespParser parser;
//   parser.Feed(bytes_read_from_socket);
//   RespValue reply;
//   while (parser.Next(&reply)) { ... }   // false: need more bytes
//   if (!parser.error().empty()) { ... }  // the stream is not RESP
#ifndef TSHARE_BENCH_RESP_H_
#define TSHARE_BENCH_RESP_H_

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tshare::bench {

struct RespValue {
  enum class Type {
    kSimpleString,
    kError,
    kInteger,
    kBulkString,
    kNull,
    kArray
  };
  Type type = Type::kNull;
  // kSimpleString, kError, kBulkString.
  std::string str;
  // kInteger.
  int64_t integer = 0;
  // kArray.
  std::vector<RespValue> elements;
};

// The command as a RESP array of bulk strings (binary-safe).
std::string RespCommand(std::initializer_list<absl::string_view> args);

class RespParser final {
 public:
  RespParser() = default;
  RespParser(const RespParser&) = delete;
  RespParser& operator=(const RespParser&) = delete;

  // Appends bytes read from the connection.
  void Feed(absl::string_view bytes);
  // Takes the next complete value into *value: true if there was one; false if
  // more bytes are needed or the stream is malformed (then error() says why,
  // and stays set).
  bool Next(RespValue* value);
  const std::string& error() const { return error_; }

 private:
  // Parses one value at buffer_[*pos...]: 1 = parsed (pos moved past it), 0 =
  // incomplete, -1 = malformed.
  int Parse(size_t* pos, RespValue* value, int depth);
  // The line at *pos up to CRLF (moves *pos past CRLF); false if incomplete.
  bool Line(size_t* pos, absl::string_view* line) const;

  std::string buffer_;
  size_t consumed_ = 0;
  std::string error_;
};

// A TCP connection to host:port with TCP_NODELAY; the caller owns (and closes)
// the fd.
absl::StatusOr<int> TcpConnect(const std::string& host, int port);

}  // namespace tshare::bench

#endif  // TSHARE_BENCH_RESP_H_
