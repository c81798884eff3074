// Options and results of tshare::client calls: ClientOptions for the
// connection, CallOptions (the deadline of one call), the per-call option
// structs and the plain result structs.
//
// Thread-safety: plain structs without shared state; the client copies what it
// needs, so an options object may be reused or changed once the call that took
// it has returned.
#ifndef TSHARE_CLIENT_OPTIONS_H_
#define TSHARE_CLIENT_OPTIONS_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "client/value.h"
#include "grpcpp/security/credentials.h"

namespace tshare::client {

// How Client::Connect reaches the server.
//
//   ClientOptions options;
//   options.default_deadline = absl::Seconds(2);
//   auto client = Client::Connect("127.0.0.1:7420", options);
struct ClientOptions {
  // The deadline of every call that does not set its own (CallOptions). Must be
  // positive.
  absl::Duration default_deadline = absl::Seconds(5);
  // Channel credentials; null means an insecure (plaintext) channel.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  // Zero: Connect returns at once and the channel connects on the first call (a
  // server that is down shows as UNAVAILABLE on each call). Positive: Connect
  // waits this long for the connection and returns UNAVAILABLE if it is not up
  // by then.
  absl::Duration connect_timeout = absl::ZeroDuration();
  // Backoff between reconnection attempts of watches, subscriptions and workers
  // (jittered, doubling from initial to max), and of the gRPC channel itself.
  absl::Duration reconnect_initial_backoff = absl::Milliseconds(50);
  absl::Duration reconnect_max_backoff = absl::Seconds(3);
  // While calls are open, the channel pings the server after this long without
  // traffic and drops the connection if no answer comes within
  // keepalive_timeout, so that a connection that went silent (a dead peer, a
  // black-holed route) is replaced. Zero turns pings off.
  absl::Duration keepalive_time = absl::Seconds(30);
  absl::Duration keepalive_timeout = absl::Seconds(10);
};

// The deadline of one call. With neither field set, the call gets
// ClientOptions::default_deadline from now; with both, the earlier of the two.
//
//   client->Get<int64_t>("visits", {.timeout = absl::Milliseconds(200)});
struct CallOptions {
  std::optional<absl::Time> deadline;
  std::optional<absl::Duration> timeout;
};

struct SetOptions {
  // Write only if the key's version equals this; 0 means "only if the key does
  // not exist". A mismatch is FAILED_PRECONDITION. Unset: write
  // unconditionally.
  std::optional<uint64_t> if_version;
  CallOptions call;
};

// For the atomic operations (Add, Append, Merge, CompareAndSet, Min, Max,
// Toggle, Apply).
struct OpOptions {
  // As SetOptions::if_version.
  std::optional<uint64_t> if_version;
  CallOptions call;
};

struct DeleteOptions {
  // Delete only if the key's version equals this (FAILED_PRECONDITION
  // otherwise).
  std::optional<uint64_t> if_version;
  CallOptions call;
};

struct ListOptions {
  // Keys per page; 0 means the server's default (100).
  uint32_t page_size = 0;
  // ListResult::next_page_token of the previous page; empty for the first page.
  std::string page_token;
  // Leave values out (KeyValue::value is empty).
  bool keys_only = false;
  // For List (all pages): one deadline for the whole listing.
  CallOptions call;
};

// For Client::Update<T>, the optimistic read-modify-write loop.
struct UpdateOptions {
  // One deadline for the whole loop: every read, write and backoff.
  CallOptions call;
  // Backoff after a conflicting write: jittered, doubling from initial up to
  // max.
  absl::Duration initial_backoff = absl::Milliseconds(1);
  absl::Duration max_backoff = absl::Milliseconds(100);
};

// A value with its version and revisions (Get, WaitFor).
template <typename T>
struct Versioned {
  T value{};
  // Changes of the key since it was (last) created: 1 after the first set.
  uint64_t version = 0;
  // The store revision when the call was answered.
  uint64_t revision = 0;
  // Store revisions of the change that created the key and of its latest
  // change.
  uint64_t create_revision = 0;
  uint64_t mod_revision = 0;
  // The store's identity; another store_id means the server started over with a
  // new store.
  std::string store_id;
};

// What Set wrote.
struct WriteResult {
  // The key's new version and the revision of this change.
  uint64_t version = 0;
  uint64_t revision = 0;
  std::string store_id;
  // True if the key did not exist before.
  bool created = false;
};

// What an atomic operation (or Update<T>) left in the key.
template <typename T>
struct OpResult {
  T value{};
  uint64_t version = 0;
  // The revision of this change (the store's revision when changed is false).
  uint64_t revision = 0;
  std::string store_id;
  // False when the operation left the value as it was (a Min or Max that did
  // not win, a Merge that changed nothing): then no revision was used and no
  // watch event sent.
  bool changed = true;
};

struct DeleteResult {
  // Keys deleted: 0 or 1 for a key, any number for a prefix.
  uint64_t deleted = 0;
  uint64_t revision = 0;
  std::string store_id;
};

// One page of List.
struct ListResult {
  std::vector<KeyValue> kvs;
  // Pass to ListOptions::page_token for the next page; empty on the last page.
  std::string next_page_token;
  uint64_t revision = 0;
  std::string store_id;
};

struct PublishResult {
  // The message's number in its topic (1, 2, 3... from the server's start).
  uint64_t sequence = 0;
  // Subscriptions the message was queued for.
  uint64_t receivers = 0;
};

// What a watch or subscription does once the server's queue of frames for it is
// full (the wire's OverflowPolicy). A reader that keeps up never loses
// anything.
enum class OverflowPolicy {
  // The server's default: kConflate for watches, kDropOldest for subscriptions.
  kDefault,
  // Watches: keep only the newest pending change per key. Subscriptions: the
  // newest pending
  // message per topic.
  kConflate,
  kDropOldest,
  kDropNewest,
  // The server ends the stream; the client reconnects and resumes (watches
  // replay from the
  // last revision they saw, so nothing is lost while the history lasts).
  kClose,
};

// What the server discarded or conflated, reported with the first update after
// the loss.
struct Loss {
  // Since the previous frame of the stream.
  uint64_t dropped = 0;
  uint64_t conflated = 0;
  // Since the stream (this connection) started.
  uint64_t total_dropped = 0;
  uint64_t total_conflated = 0;
};

}  // namespace tshare::client

#endif  // TSHARE_CLIENT_OPTIONS_H_
