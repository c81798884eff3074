// tshare::client::Client — a connection to tshared: typed get/set, atomic
// operations, optimistic updates, transactions, long polls, watches,
// publish/subscribe and workers that the server controls.
//
// Thread-safety: a Client is thread-safe: every method may be called from any
// number of threads at once, and all calls share one gRPC channel. Blocking
// calls block only the calling thread and every one of them has a deadline
// (CallOptions, or ClientOptions::default_deadline). The *Async forms return a
// core::Future at once; its result (and any Then continuation) arrives on a
// gRPC thread, so continuations must not block. Handles (WatchHandle,
// SubscriptionHandle, WorkerHandle) keep the connection alive and may outlive
// the Client.
//
// Errors are absl::Status with the server's codes: NOT_FOUND for a missing key,
// FAILED_PRECONDITION for an if_version mismatch and for a typed read of
// another kind, INVALID_ARGUMENT for an operation that does not fit the stored
// kind, DEADLINE_EXCEEDED when a deadline passes, UNAVAILABLE when the server
// cannot be reached.
//
//   absl::StatusOr<std::unique_ptr<Client>> c =
//   Client::Connect("127.0.0.1:7420"); if (!c.ok()) return c.status();
//   (*c)->Set("visits", 1);                              // an int
//   (*c)->Add("visits", 1);                              // 2
//   absl::StatusOr<int64_t> visits = (*c)->Get<int64_t>("visits");
//   (*c)->Update<Json>("cfg", [](Json& cfg) { cfg["retries"] = 3; });
#ifndef TSHARE_CLIENT_CLIENT_H_
#define TSHARE_CLIENT_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "client/bus.h"
#include "client/ops.h"
#include "client/options.h"
#include "client/value.h"
#include "client/watch.h"
#include "client/worker.h"
#include "core/future.h"

namespace grpc {
class Channel;
}  // namespace grpc

namespace tshare::client {

namespace internal {
class Connection;

// The typed form of a result of any kind: T's kind or KindMismatchError.
template <typename T>
absl::StatusOr<Versioned<T>> Typed(absl::StatusOr<Versioned<Value>> v,
                                   std::string_view key) {
  if (!v.ok()) return v.status();
  if constexpr (std::is_same_v<T, Value>) {
    return v;
  } else {
    absl::StatusOr<T> typed = v->value.template As<T>(key);
    if (!typed.ok()) return typed.status();
    return Versioned<T>{*std::move(typed), v->version,
                        v->revision,       v->create_revision,
                        v->mod_revision,   std::move(v->store_id)};
  }
}

// The typed form of an operation's result. The operation was applied when the
// result is not of the expected kind, and the error says so.
template <typename T>
absl::StatusOr<OpResult<T>> TypedOp(absl::StatusOr<OpResult<Value>> r,
                                    std::string_view key) {
  if (!r.ok()) return r.status();
  if constexpr (std::is_same_v<T, Value>) {
    return r;
  } else {
    absl::StatusOr<T> typed = r->value.template As<T>(key);
    if (!typed.ok()) {
      return absl::Status(
          typed.status().code(),
          absl::StrCat(typed.status().message(),
                       " (the operation was applied; the key now holds ",
                       r->value.DebugString(), ")"));
    }
    return OpResult<T>{*std::move(typed), r->version, r->revision,
                       std::move(r->store_id), r->changed};
  }
}

// Sleeps before the next attempt of an optimistic update (jittered, doubling
// from `initial` up to `max` with `conflicts`); false, without sleeping, if
// that would pass `deadline`.
bool SleepBeforeRetry(int conflicts, absl::Duration initial, absl::Duration max,
                      absl::Time deadline);
absl::Status UpdateGaveUpError(std::string_view key, int conflicts,
                               const absl::Status& last);
}  // namespace internal

// The result of one op of a transaction, in the order of the branch that ran.
struct TxnOpResult {
  enum class Kind { kGet, kSet, kUpdate, kDelete };
  Kind kind = Kind::kGet;
  // kGet: the key (a get of a key that does not exist aborts the whole
  // transaction with NOT_FOUND: guard it with Compare::Exists); kUpdate: its
  // new state; kSet: key, version and revision of the write; kDelete: empty.
  KeyValue kv;
  // kSet: true if the key did not exist before. kUpdate: false if the value did
  // not change.
  bool created = false;
  bool changed = false;
  // kDelete: keys deleted.
  uint64_t deleted = 0;
};

struct TxnResult {
  // Whether every compare held, so that the Then ops ran (else the Else ops).
  bool succeeded = false;
  std::vector<TxnOpResult> results;
  // The transaction's revision (all its changes share it).
  uint64_t revision = 0;
  std::string store_id;
};

// A transaction being built: conditions, then the ops to run if all hold and
// those to run otherwise, all atomically at one revision. Built by
// Client::Txn().
//
//   absl::StatusOr<TxnResult> r = client->Txn()
//       .If(Compare::Version("leader") == 0)
//       .Then(Op::Set("leader", "me"))
//       .Else(Op::Get("leader"))
//       .Commit();
//
// Thread-safety: a builder is not thread-safe; build and commit it on one
// thread. Commit may be called more than once (each is a new transaction).
class Transaction final {
 public:
  // Adds a condition; all of them must hold for the Then ops to run.
  Transaction& If(Compare compare);
  // Adds an op to run if every condition holds (in order).
  Transaction& Then(Op op);
  // Adds an op to run otherwise.
  Transaction& Else(Op op);

  // An op that fails (an if_version mismatch, a kind mismatch) aborts the whole
  // transaction with its status and changes nothing; a key changed by two ops
  // is INVALID_ARGUMENT.
  absl::StatusOr<TxnResult> Commit(CallOptions call = {}) const;
  core::Future<TxnResult> CommitAsync(CallOptions call = {}) const;

 private:
  friend class Client;
  explicit Transaction(std::shared_ptr<internal::Connection> conn)
      : conn_(std::move(conn)) {}

  std::shared_ptr<internal::Connection> conn_;
  std::vector<Compare> compares_;
  std::vector<Op> success_;
  std::vector<Op> failure_;
};

// The worker function RunWorker runs: returns OK when it finished, an error
// when it failed (the server then shows the worker FAILED with that error).
using WorkerFn = absl::AnyInvocable<absl::Status(WorkerContext&)>;

class Client final {
 public:
  // Opens a channel to `target` ("host:port", or any gRPC target string). With
  // options.connect_timeout zero it does not wait for the connection (see
  // ClientOptions). INVALID_ARGUMENT for an empty target or non-positive
  // deadlines.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(
      std::string_view target, ClientOptions options = {});

  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  Client(Client&&) = delete;
  Client& operator=(Client&&) = delete;

  const std::string& target() const;
  const ClientOptions& options() const;
  std::shared_ptr<grpc::Channel> channel() const;
  // The absolute deadline a call with `call` gets.
  absl::Time Deadline(const CallOptions& call = {}) const;

  // ---- Reading
  // -------------------------------------------------------------------------------

  // The key's value as T (see ValueTraits): NOT_FOUND if the key does not
  // exist, FAILED_PRECONDITION if it holds another kind ("key \"x\" holds a
  // string, not an int"). Get<Value> accepts any kind.
  template <typename T>
  absl::StatusOr<T> Get(std::string_view key, CallOptions call = {}) const {
    absl::StatusOr<Versioned<T>> v = GetVersioned<T>(key, call);
    if (!v.ok()) return v.status();
    return std::move(v->value);
  }
  // The same with the key's version and revisions.
  template <typename T>
  absl::StatusOr<Versioned<T>> GetVersioned(std::string_view key,
                                            CallOptions call = {}) const {
    return internal::Typed<T>(GetValue(key, call), key);
  }
  absl::StatusOr<Versioned<Value>> GetValue(std::string_view key,
                                            CallOptions call = {}) const;

  template <typename T>
  core::Future<T> GetAsync(std::string_view key, CallOptions call = {}) const {
    return GetValueAsync(key, call).Then(
        [k = std::string(key)](const Versioned<Value>& v) -> absl::StatusOr<T> {
          return v.value.template As<T>(k);
        });
  }
  template <typename T>
  core::Future<Versioned<T>> GetVersionedAsync(std::string_view key,
                                               CallOptions call = {}) const {
    return GetValueAsync(key, call).Then(
        [k = std::string(key)](
            const Versioned<Value>& v) -> absl::StatusOr<Versioned<T>> {
          return internal::Typed<T>(v, k);
        });
  }
  core::Future<Versioned<Value>> GetValueAsync(std::string_view key,
                                               CallOptions call = {}) const;

  // Keys under `prefix` (empty: all keys) in key order, every page (one
  // deadline for all); pages are read one at a time, not from one snapshot.
  absl::StatusOr<std::vector<KeyValue>> List(std::string_view prefix,
                                             ListOptions options = {}) const;
  // One page.
  absl::StatusOr<ListResult> ListPage(std::string_view prefix,
                                      ListOptions options = {}) const;
  core::Future<ListResult> ListPageAsync(std::string_view prefix,
                                         ListOptions options = {}) const;

  // Long poll: the key once its version exceeds `after_version` (0: once it
  // exists), or DEADLINE_EXCEEDED at `deadline`. The deadline is this call's
  // own: the default deadline does not shorten it.
  template <typename T = Value>
  absl::StatusOr<Versioned<T>> WaitFor(std::string_view key,
                                       uint64_t after_version,
                                       absl::Time deadline) const {
    return internal::Typed<T>(WaitForValue(key, after_version, deadline), key);
  }
  absl::StatusOr<Versioned<Value>> WaitForValue(std::string_view key,
                                                uint64_t after_version,
                                                absl::Time deadline) const;
  core::Future<Versioned<Value>> WaitForAsync(std::string_view key,
                                              uint64_t after_version,
                                              absl::Time deadline) const;

  // ---- Writing
  // -------------------------------------------------------------------------------

  // Sets the key to `value`, whose C++ type picks the kind: Set("n", 1) an int,
  // Set("s", "x") a string, Set("j", Json{...}) JSON. With options.if_version:
  // FAILED_PRECONDITION unless the key's version equals it (0: unless the key
  // does not exist).
  template <typename T>
  absl::StatusOr<WriteResult> Set(std::string_view key, const T& value,
                                  SetOptions options = {}) const {
    absl::StatusOr<Value> v = Value::Of(value);
    if (!v.ok()) return v.status();
    return SetValue(key, *std::move(v), options);
  }
  absl::StatusOr<WriteResult> SetValue(std::string_view key, Value value,
                                       SetOptions options = {}) const;
  template <typename T>
  core::Future<WriteResult> SetAsync(std::string_view key, const T& value,
                                     SetOptions options = {}) const {
    absl::StatusOr<Value> v = Value::Of(value);
    if (!v.ok()) return core::MakeReadyFuture<WriteResult>(v.status());
    return SetValueAsync(key, *std::move(v), options);
  }
  core::Future<WriteResult> SetValueAsync(std::string_view key, Value value,
                                          SetOptions options = {}) const;

  // Deletes the key; deleting an absent key is OK with deleted == 0.
  absl::StatusOr<DeleteResult> Delete(std::string_view key,
                                      DeleteOptions options = {}) const;
  core::Future<DeleteResult> DeleteAsync(std::string_view key,
                                         DeleteOptions options = {}) const;
  // Deletes every key under `prefix`, all at one revision. An empty prefix is
  // INVALID_ARGUMENT.
  absl::StatusOr<DeleteResult> DeletePrefix(std::string_view prefix,
                                            CallOptions call = {}) const;

  // ---- Atomic operations (one round trip; the server applies them)
  // ---------------------------
  //
  // On an absent key Add, Append, Merge, Min, Max and Toggle start from the
  // operand kind's zero (0, "", empty bytes, {}, false); CompareAndSet is
  // NOT_FOUND. An operand whose kind does not fit the stored value is
  // INVALID_ARGUMENT. Each returns the key's new value and version.

  // An integral delta adds to an int (Add("visits", 1)), a floating-point one
  // to a double.
  template <typename T>
  requires(std::is_arithmetic_v<T> && !std::is_same_v<T, bool>)
      absl::StatusOr<OpResult<StoredType<T>>> Add(std::string_view key, T delta,
                                                  OpOptions options = {})
  const {
    return internal::TypedOp<StoredType<T>>(Apply(Op::Add(key, delta), options),
                                            key);
  }
  template <typename T>
  requires(std::is_arithmetic_v<T> && !std::is_same_v<T, bool>)
      core::Future<OpResult<StoredType<T>>> AddAsync(std::string_view key,
                                                     T delta,
                                                     OpOptions options = {})
  const {
    return ApplyAsync(Op::Add(key, delta), options)
        .Then([k = std::string(key)](const OpResult<Value>& r) {
          return internal::TypedOp<StoredType<T>>(r, k);
        });
  }
  // A string onto a string, Bytes onto bytes, a Json element onto a JSON array.
  template <typename T>
  absl::StatusOr<OpResult<StoredType<T>>> Append(std::string_view key,
                                                 const T& value,
                                                 OpOptions options = {}) const {
    return internal::TypedOp<StoredType<T>>(
        Apply(Op::Append(key, value), options), key);
  }
  // RFC 7386 merge of a JSON object into a JSON object (null members remove
  // members).
  absl::StatusOr<OpResult<Json>> Merge(std::string_view key, Json patch,
                                       OpOptions options = {}) const {
    return internal::TypedOp<Json>(
        Apply(Op::Merge(key, std::move(patch)), options), key);
  }
  // Writes `new_value` if the key holds exactly `expected`; FAILED_PRECONDITION
  // otherwise.
  template <typename E, typename N>
  absl::StatusOr<OpResult<StoredType<N>>> CompareAndSet(
      std::string_view key, const E& expected, const N& new_value,
      OpOptions options = {}) const {
    return internal::TypedOp<StoredType<N>>(
        Apply(Op::CompareAndSet(key, expected, new_value), options), key);
  }
  template <typename T>
  requires(std::is_arithmetic_v<T> && !std::is_same_v<T, bool>)
      absl::StatusOr<OpResult<StoredType<T>>> Min(std::string_view key, T v,
                                                  OpOptions options = {})
  const {
    return internal::TypedOp<StoredType<T>>(Apply(Op::Min(key, v), options),
                                            key);
  }
  template <typename T>
  requires(std::is_arithmetic_v<T> && !std::is_same_v<T, bool>)
      absl::StatusOr<OpResult<StoredType<T>>> Max(std::string_view key, T v,
                                                  OpOptions options = {})
  const {
    return internal::TypedOp<StoredType<T>>(Apply(Op::Max(key, v), options),
                                            key);
  }
  absl::StatusOr<OpResult<bool>> Toggle(std::string_view key,
                                        OpOptions options = {}) const {
    return internal::TypedOp<bool>(Apply(Op::Toggle(key), options), key);
  }
  // Any atomic op (Op::Add ... Op::Toggle; other kinds are INVALID_ARGUMENT).
  // options' if_version, when set, overrides the op's.
  absl::StatusOr<OpResult<Value>> Apply(const Op& op,
                                        OpOptions options = {}) const;
  core::Future<OpResult<Value>> ApplyAsync(const Op& op,
                                           OpOptions options = {}) const;

  // ---- Optimistic read-modify-write
  // ----------------------------------------------------------

  // Reads the key as T, lets `f` change it, and writes it back only if nobody
  // wrote the key in between (if_version); on a conflict it waits a jittered,
  // growing backoff and starts over, until options.call's deadline (then
  // DEADLINE_EXCEEDED). It never loses an update, and `f` may run more than
  // once, so it must not have other side effects.
  //
  // `f` is called as f(T&) and may return void, absl::Status (an error stops
  // the loop and is returned; nothing is written) or a new T. An absent key
  // gives f a T{} and is written only if it is still absent. A key of another
  // kind is FAILED_PRECONDITION (never retried). Network errors are returned,
  // not retried.
  //
  //   client->Update<int64_t>("visits", [](int64_t& v) { ++v; });
  //   client->Update<Json>("cfg", [](Json& cfg) { cfg["mode"] = "fast"; });
  template <typename T, typename F>
  absl::StatusOr<OpResult<T>> Update(std::string_view key, F&& f,
                                     UpdateOptions options = {}) const;

  // ---- Transactions
  // --------------------------------------------------------------------------

  Transaction Txn() const;

  // ---- Watches
  // -------------------------------------------------------------------------------

  // Calls `callback` with every change of `key_or_prefix` (a prefix with
  // options.prefix) from now on (or options.start_revision), on a thread the
  // watch owns, in revision order, each change exactly once. The watch survives
  // lost connections and server restarts: it reconnects with jittered backoff
  // and resumes after the last revision it delivered; after a restart with a
  // new store it hands the new state to the callback as one kResync update. A
  // stream that sends nothing (not even progress frames) for options.dead_after
  // is cancelled and reconnected. `call` bounds the first contact with the
  // server, which this call makes to learn the store's identity and revision
  // (so UNAVAILABLE if the server is down now).
  absl::StatusOr<WatchHandle> Watch(std::string_view key_or_prefix,
                                    WatchCallback callback,
                                    WatchOptions options = {},
                                    CallOptions call = {}) const;

  // ---- Bus
  // -----------------------------------------------------------------------------------

  // Publishes `value` (any type ValueTraits maps) on `topic`; returns its
  // sequence.
  template <typename T>
  absl::StatusOr<PublishResult> Publish(std::string_view topic, const T& value,
                                        CallOptions call = {}) const {
    absl::StatusOr<Value> v = Value::Of(value);
    if (!v.ok()) return v.status();
    return PublishValue(topic, *std::move(v), call);
  }
  absl::StatusOr<PublishResult> PublishValue(std::string_view topic,
                                             Value value,
                                             CallOptions call = {}) const;
  template <typename T>
  core::Future<PublishResult> PublishAsync(std::string_view topic,
                                           const T& value,
                                           CallOptions call = {}) const {
    absl::StatusOr<Value> v = Value::Of(value);
    if (!v.ok()) return core::MakeReadyFuture<PublishResult>(v.status());
    return PublishValueAsync(topic, *std::move(v), call);
  }
  core::Future<PublishResult> PublishValueAsync(std::string_view topic,
                                                Value value,
                                                CallOptions call = {}) const;

  // Calls `callback` with every message on topics matching any of `patterns`
  // ("orders.new", "orders.*" one segment, "orders.>" the rest), per topic in
  // publish order, on a thread the subscription owns. Reconnects with jittered
  // backoff after a lost connection; see bus.h for how gaps are reported.
  // Returns at once: the server registers the subscription when the stream
  // reaches it (SubscriptionHandle::WaitUntilConnected waits for that).
  absl::StatusOr<SubscriptionHandle> Subscribe(
      std::vector<std::string> patterns, MessageCallback callback,
      SubscribeOptions options = {}) const;

  // ---- Workers
  // -------------------------------------------------------------------------------

  // Registers a worker named `name` with the server (Workers.Attach) and, once
  // the server accepted it, runs fn(WorkerContext&) on a new thread. `fn`
  // returns absl::Status or void. Returns the server's refusal (ALREADY_EXISTS
  // for a name in use, INVALID_ARGUMENT for a bad name) or UNAVAILABLE /
  // DEADLINE_EXCEEDED if the first attach fails; see worker.h for what happens
  // when the connection is lost later.
  template <typename F>
  absl::StatusOr<WorkerHandle> RunWorker(std::string_view name, F&& fn,
                                         WorkerOptions options = {}) const {
    using R = std::invoke_result_t<std::decay_t<F>&, WorkerContext&>;
    if constexpr (std::is_void_v<R>) {
      return RunWorkerFn(
          name,
          [f = std::forward<F>(fn)](
              WorkerContext& ctx) mutable -> absl::Status {
            f(ctx);
            return absl::OkStatus();
          },
          std::move(options));
    } else {
      static_assert(
          std::is_convertible_v<R, absl::Status>,
          "RunWorker: fn(WorkerContext&) must return void or absl::Status");
      return RunWorkerFn(name, WorkerFn(std::forward<F>(fn)),
                         std::move(options));
    }
  }
  absl::StatusOr<WorkerHandle> RunWorkerFn(std::string_view name, WorkerFn fn,
                                           WorkerOptions options = {}) const;

  // Control of any worker of the server, its own or one a client attached
  // (Workers.List, Pause, Resume, Stop), as tsharectl and grpcurl do it. Pause
  // and Stop are requests: the worker acts at its next checkpoint (the returned
  // info shows pause_requested / stop_requested until it does). NOT_FOUND for
  // a name the registry does not hold; FAILED_PRECONDITION for a worker that
  // has ended.
  absl::StatusOr<std::vector<WorkerInfo>> ListWorkers(
      CallOptions call = {}) const;
  absl::StatusOr<WorkerInfo> PauseWorker(std::string_view name,
                                         CallOptions call = {}) const;
  absl::StatusOr<WorkerInfo> ResumeWorker(std::string_view name,
                                          CallOptions call = {}) const;
  absl::StatusOr<WorkerInfo> StopWorker(std::string_view name,
                                        CallOptions call = {}) const;

 private:
  enum class WorkerControl { kPause, kResume, kStop };

  explicit Client(std::shared_ptr<internal::Connection> conn);
  absl::StatusOr<WorkerInfo> ControlWorker(std::string_view name,
                                           WorkerControl control,
                                           CallOptions call) const;

  const std::shared_ptr<internal::Connection> conn_;
};

template <typename T, typename F>
absl::StatusOr<OpResult<T>> Client::Update(std::string_view key, F&& f,
                                           UpdateOptions options) const {
  static_assert(std::is_invocable_v<F&, T&>,
                "Update<T>(key, f): f must be callable as f(T&)");
  using R = std::invoke_result_t<F&, T&>;
  const absl::Time deadline = Deadline(options.call);
  const CallOptions call{.deadline = deadline};
  for (int conflicts = 0;; ++conflicts) {
    absl::StatusOr<Versioned<Value>> current = GetValue(key, call);
    T value{};
    uint64_t if_version = 0;  // Only if absent.
    if (current.ok()) {
      absl::StatusOr<T> typed = current->value.template As<T>(key);
      if (!typed.ok()) return typed.status();
      value = *std::move(typed);
      if_version = current->version;
    } else if (!absl::IsNotFound(current.status())) {
      return current.status();
    }
    if constexpr (std::is_void_v<R>) {
      f(value);
    } else if constexpr (std::is_same_v<std::remove_cvref_t<R>, absl::Status>) {
      absl::Status s = f(value);
      if (!s.ok()) return s;
    } else {
      value = f(value);
    }
    absl::StatusOr<Value> encoded = Value::Of(value);
    if (!encoded.ok()) return encoded.status();
    absl::StatusOr<WriteResult> written =
        SetValue(key, *std::move(encoded),
                 SetOptions{.if_version = if_version, .call = call});
    if (written.ok()) {
      return OpResult<T>{std::move(value), written->version, written->revision,
                         std::move(written->store_id), true};
    }
    // With if_version set, FAILED_PRECONDITION means that another write came
    // first.
    if (!absl::IsFailedPrecondition(written.status())) return written.status();
    if (!internal::SleepBeforeRetry(conflicts, options.initial_backoff,
                                    options.max_backoff, deadline)) {
      return internal::UpdateGaveUpError(key, conflicts + 1, written.status());
    }
  }
}

}  // namespace tshare::client

#endif  // TSHARE_CLIENT_CLIENT_H_
