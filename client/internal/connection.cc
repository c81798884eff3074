#include "client/internal/connection.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"
#include "proto/grpc_status.h"

namespace tshare::client::internal {
namespace {

// Uniform in [d/2, d].
absl::Duration Jitter(absl::BitGen& gen, absl::Duration d) {
  const int64_t hi = absl::ToInt64Nanoseconds(d);
  if (hi <= 1) return d;
  return absl::Nanoseconds(
      absl::Uniform<int64_t>(absl::IntervalClosed, gen, hi / 2, hi));
}

int ToMillisArg(absl::Duration d) {
  const int64_t ms = absl::ToInt64Milliseconds(d);
  return static_cast<int>(
      std::clamp<int64_t>(ms, 1, std::numeric_limits<int>::max()));
}

}  // namespace

absl::StatusOr<std::shared_ptr<Connection>> Connection::Create(
    std::string target, ClientOptions options) {
  if (target.empty()) {
    return absl::InvalidArgumentError(
        "Client::Connect: the target is empty; pass the server's HOST:PORT, "
        "e.g. "
        "\"127.0.0.1:7420\"");
  }
  if (options.default_deadline <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ClientOptions::default_deadline=",
        absl::FormatDuration(options.default_deadline), " must be positive"));
  }
  if (options.reconnect_initial_backoff <= absl::ZeroDuration() ||
      options.reconnect_max_backoff < options.reconnect_initial_backoff) {
    return absl::InvalidArgumentError(
        absl::StrCat("ClientOptions: reconnect_initial_backoff=",
                     absl::FormatDuration(options.reconnect_initial_backoff),
                     " must be positive and at most reconnect_max_backoff=",
                     absl::FormatDuration(options.reconnect_max_backoff)));
  }
  grpc::ChannelArguments args;
  // A connection of its own, not one shared with other channels to the same
  // address through gRPC's global subchannel pool: a Client is one
  // connection, and closing it never disturbs another Client.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  // The channel's own reconnection follows the same backoff as the streams,
  // so that a stream that retries after a server restart finds the channel
  // trying too. (GRPC_ARG_MIN_RECONNECT_BACKOFF_MS is left alone: gRPC also
  // takes it as the minimum time a connection attempt gets, 20 s.)
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
              ToMillisArg(options.reconnect_initial_backoff));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
              ToMillisArg(options.reconnect_max_backoff));
  if (options.keepalive_time > absl::ZeroDuration()) {
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS,
                ToMillisArg(options.keepalive_time));
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                ToMillisArg(options.keepalive_timeout));
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials =
      options.credentials != nullptr ? options.credentials
                                     : grpc::InsecureChannelCredentials();
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateCustomChannel(target, credentials, args);
  if (options.connect_timeout > absl::ZeroDuration()) {
    const absl::Time deadline = absl::Now() + options.connect_timeout;
    if (!channel->WaitForConnected(absl::ToChronoTime(deadline))) {
      return absl::UnavailableError(
          absl::StrCat("cannot connect to tshared at ", target, " within ",
                       absl::FormatDuration(options.connect_timeout),
                       ": is the server running and the address right?"));
    }
  }
  return std::shared_ptr<Connection>(new Connection(
      std::move(target), std::move(options), std::move(channel)));
}

thread_local int CallbackScope::depth_ = 0;

Connection::~Connection() {
  if (!CallbackScope::Active()) return;
  // On a gRPC callback thread: destroying the channel here could make gRPC
  // join this very thread (when it is the last user of gRPC's callback
  // threads). Let another thread do it.
  std::thread([channel = std::move(channel_), shares = std::move(shares_),
               bus = std::move(bus_), workers = std::move(workers_)]() mutable {
    shares.reset();
    bus.reset();
    workers.reset();
    channel.reset();
  }).detach();
}

Connection::Connection(std::string target, ClientOptions options,
                       std::shared_ptr<grpc::Channel> channel)
    : target_(std::move(target)),
      options_(std::move(options)),
      channel_(std::move(channel)),
      shares_(v1::Shares::NewStub(channel_)),
      bus_(v1::Bus::NewStub(channel_)),
      workers_(v1::Workers::NewStub(channel_)) {}

absl::Time Connection::Deadline(const CallOptions& call) const {
  if (!call.deadline.has_value() && !call.timeout.has_value()) {
    return absl::Now() + options_.default_deadline;
  }
  absl::Time deadline = absl::InfiniteFuture();
  if (call.deadline.has_value()) deadline = *call.deadline;
  if (call.timeout.has_value())
    deadline = std::min(deadline, absl::Now() + *call.timeout);
  return deadline;
}

absl::Status Connection::ToStatus(const grpc::Status& status) const {
  absl::Status s = FromGrpcStatus(status);
  if (absl::IsUnavailable(s)) {
    return absl::UnavailableError(
        absl::StrCat("tshared at ", target_, " is unavailable: ", s.message()));
  }
  return s;
}

void SetDeadline(grpc::ClientContext& ctx, absl::Time deadline) {
  if (deadline != absl::InfiniteFuture())
    ctx.set_deadline(absl::ToChronoTime(deadline));
}

absl::Duration Backoff::Next() {
  const int attempt = attempts_;
  if (attempts_ < 62) ++attempts_;
  absl::Duration d = initial_;
  for (int i = 0; i < attempt && d < max_; ++i) d *= 2;
  return Jitter(gen_, std::min(d, max_));
}

absl::Duration JitteredDelay(int attempt, absl::Duration initial,
                             absl::Duration max) {
  thread_local absl::BitGen gen;
  absl::Duration d = initial;
  for (int i = 0; i < attempt && d < max; ++i) d *= 2;
  return Jitter(gen, std::min(d, max));
}

}  // namespace tshare::client::internal
