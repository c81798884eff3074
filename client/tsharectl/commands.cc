#include "client/tsharectl/commands.h"

#include <cstdint>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "core/status_macros.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/client_context.h"
#include "tshare/v1/admin.grpc.pb.h"
#include "tshare/v1/shares.grpc.pb.h"
#include "tshare/v1/workers.grpc.pb.h"

namespace tshare::tsharectl {
namespace {

using client::KeyValue;
using client::Op;

constexpr char kUsagePayload[] =
    "type.googleapis.com/tshare.tsharectl.UsageError";

// Marks a parse error of a value typed by the user as a usage error.
template <typename T>
absl::StatusOr<T> AsUsage(absl::StatusOr<T> v) {
  if (v.ok()) return v;
  return UsageError(v.status().message());
}

absl::Status FromGrpc(const grpc::Status& status, const Env& env) {
  if (status.ok()) return absl::OkStatus();
  const auto code = static_cast<absl::StatusCode>(status.error_code());
  if (code == absl::StatusCode::kUnavailable) {
    return absl::UnavailableError(absl::StrCat(status.error_message(),
                                               " (is tshared running at ",
                                               env.server, "? see --server)"));
  }
  return absl::Status(code, status.error_message());
}

void SetDeadline(grpc::ClientContext& ctx, const Env& env) {
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + env.timeout));
}

// {"key", "value", "kind"} plus the fields the caller adds.
OutJson KeyJson(std::string_view key, const Value& value) {
  return OutJson{{"key", key},
                 {"value", value.ToJson()},
                 {"kind", KindLabel(value.kind())}};
}

OutJson KeyValueJson(const KeyValue& kv) {
  OutJson j = {{"key", kv.key}};
  if (kv.value.has_value()) {
    j["value"] = kv.value->ToJson();
    j["kind"] = KindLabel(kv.value->kind());
  }
  j["version"] = kv.version;
  j["create_revision"] = kv.create_revision;
  j["mod_revision"] = kv.mod_revision;
  return j;
}

void PrintVersioned(const Env& env, std::string_view key,
                    const client::Versioned<Value>& v) {
  if (!env.out.json()) {
    env.out.Line(FormatPlain(v.value));
    return;
  }
  OutJson j = KeyJson(key, v.value);
  j["version"] = v.version;
  j["revision"] = v.revision;
  j["create_revision"] = v.create_revision;
  j["mod_revision"] = v.mod_revision;
  j["store_id"] = v.store_id;
  env.out.Object(j);
}

void PrintOpResult(const Env& env, std::string_view key,
                   const client::OpResult<Value>& r) {
  if (!env.out.json()) {
    env.out.Line(FormatPlain(r.value));
    return;
  }
  OutJson j = KeyJson(key, r.value);
  j["version"] = r.version;
  j["revision"] = r.revision;
  j["changed"] = r.changed;
  j["store_id"] = r.store_id;
  env.out.Object(j);
}

std::string ReadAll(std::istream& in) {
  return std::string(std::istreambuf_iterator<char>(in),
                     std::istreambuf_iterator<char>());
}

// The printed form of one worker row.
std::string WorkerRow(const v1::WorkerInfo& w) {
  std::string state = v1::WorkerInfo::State_Name(w.state());
  if (w.pause_requested()) absl::StrAppend(&state, " (pause requested)");
  if (w.stop_requested()) absl::StrAppend(&state, " (stop requested)");
  std::string row =
      absl::StrFormat("%-24s %-7s %-28s %s", w.name(),
                      v1::WorkerInfo::Kind_Name(w.kind()), state, w.progress());
  if (!w.error().empty()) absl::StrAppend(&row, "  error: ", w.error());
  return row;
}

void PrintWorker(const Env& env, const v1::WorkerInfo& w) {
  if (env.out.json()) {
    env.out.Object(ProtoToJson(w));
  } else {
    env.out.Line(WorkerRow(w));
  }
}

// Prints `json` as `path value` lines, nested objects joined with dots.
void PrintFlattened(const Env& env, const std::string& path,
                    const OutJson& json) {
  if (json.is_object()) {
    for (const auto& [name, member] : json.items()) {
      PrintFlattened(env, path.empty() ? name : absl::StrCat(path, ".", name),
                     member);
    }
    return;
  }
  env.out.Line(absl::StrCat(
      path, " ", json.is_string() ? json.get<std::string>() : DumpJson(json)));
}

absl::StatusOr<Value> ParseNumber(absl::string_view text, ValueType type) {
  TSHARE_ASSIGN_OR_RETURN(Value v, AsUsage(ParseValue(text, type)));
  if (v.kind() != ValueKind::kInt && v.kind() != ValueKind::kDouble) {
    return UsageError(absl::StrCat(
        "\"", text, "\" is not a number; give an int or a double"));
  }
  return v;
}

template <typename MakeOp>
Op NumberOp(const Value& v, MakeOp make) {
  if (v.kind() == ValueKind::kInt) return make(v.int_value());
  return make(v.double_value());
}

}  // namespace

absl::Status UsageError(absl::string_view message) {
  absl::Status status = absl::InvalidArgumentError(message);
  status.SetPayload(kUsagePayload, absl::Cord("usage"));
  return status;
}

bool IsUsageError(const absl::Status& status) {
  return status.GetPayload(kUsagePayload).has_value();
}

void Printer::Line(absl::string_view text) {
  absl::MutexLock lock(&mu_);
  std::cout.write(text.data(), static_cast<std::streamsize>(text.size()));
  std::cout.put('\n');
  std::cout.flush();
}

void Printer::Object(const OutJson& json) { Line(DumpJson(json)); }

void StreamStop::Interrupt() {
  absl::MutexLock lock(&mu_);
  done_ = true;
}

void StreamStop::Finish(absl::Status status) {
  absl::MutexLock lock(&mu_);
  if (done_) return;
  done_ = true;
  status_ = std::move(status);
}

bool StreamStop::done() const {
  absl::MutexLock lock(&mu_);
  return done_;
}

absl::Status StreamStop::Wait() const {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(&done_));
  return status_;
}

std::optional<absl::Status> StreamStop::WaitFor(absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  if (!mu_.AwaitWithTimeout(absl::Condition(&done_), timeout))
    return std::nullopt;
  return status_;
}

// ---- Shares ----

absl::Status Get(const Env& env, const std::string& key) {
  TSHARE_ASSIGN_OR_RETURN(client::Versioned<Value> v, env.client.GetValue(key));
  PrintVersioned(env, key, v);
  return absl::OkStatus();
}

absl::Status Set(const Env& env, const SetArgs& args) {
  TSHARE_ASSIGN_OR_RETURN(Value value,
                          AsUsage(ParseValue(args.value, args.type)));
  const ValueKind kind = value.kind();
  TSHARE_ASSIGN_OR_RETURN(client::WriteResult r,
                          env.client.SetValue(args.key, std::move(value),
                                              {.if_version = args.if_version}));
  if (env.out.json()) {
    env.out.Object({{"key", args.key},
                    {"kind", KindLabel(kind)},
                    {"version", r.version},
                    {"revision", r.revision},
                    {"created", r.created},
                    {"store_id", r.store_id}});
  } else {
    env.out.Line(absl::StrCat("OK (", KindLabel(kind), ", version ", r.version,
                              ", revision ", r.revision, ")"));
  }
  return absl::OkStatus();
}

absl::Status Add(const Env& env, const AddArgs& args) {
  TSHARE_ASSIGN_OR_RETURN(Value delta, ParseNumber(args.delta, args.type));
  const Op op = NumberOp(delta, [&](auto d) { return Op::Add(args.key, d); });
  TSHARE_ASSIGN_OR_RETURN(
      client::OpResult<Value> r,
      env.client.Apply(op, {.if_version = args.if_version}));
  PrintOpResult(env, args.key, r);
  return absl::OkStatus();
}

absl::Status Update(const Env& env, const UpdateArgs& args) {
  const int ops = args.append.has_value() + args.merge.has_value() +
                  !args.cas.empty() + args.min.has_value() +
                  args.max.has_value() + args.toggle;
  if (ops != 1) {
    return UsageError(
        "give exactly one operation: --append X, --merge JSON, --cas EXPECTED "
        "NEW, --min N, "
        "--max N or --toggle");
  }
  std::optional<Op> op;
  if (args.append.has_value()) {
    TSHARE_ASSIGN_OR_RETURN(Value v,
                            AsUsage(ParseValue(*args.append, args.type)));
    op = Op::Append(args.key, v);
  } else if (args.merge.has_value()) {
    TSHARE_ASSIGN_OR_RETURN(Value v,
                            AsUsage(ParseValue(*args.merge, ValueType::kJson)));
    op = Op::Merge(args.key, v.json_value());
  } else if (!args.cas.empty()) {
    if (args.cas.size() != 2)
      return UsageError("--cas takes two values: EXPECTED NEW");
    TSHARE_ASSIGN_OR_RETURN(Value expected,
                            AsUsage(ParseValue(args.cas[0], args.type)));
    TSHARE_ASSIGN_OR_RETURN(Value new_value,
                            AsUsage(ParseValue(args.cas[1], args.type)));
    op = Op::CompareAndSet(args.key, expected, new_value);
  } else if (args.min.has_value()) {
    TSHARE_ASSIGN_OR_RETURN(Value v, ParseNumber(*args.min, args.type));
    op = NumberOp(v, [&](auto n) { return Op::Min(args.key, n); });
  } else if (args.max.has_value()) {
    TSHARE_ASSIGN_OR_RETURN(Value v, ParseNumber(*args.max, args.type));
    op = NumberOp(v, [&](auto n) { return Op::Max(args.key, n); });
  } else {
    op = Op::Toggle(args.key);
  }
  TSHARE_ASSIGN_OR_RETURN(
      client::OpResult<Value> r,
      env.client.Apply(*op, {.if_version = args.if_version}));
  PrintOpResult(env, args.key, r);
  return absl::OkStatus();
}

absl::Status Del(const Env& env, const DelArgs& args) {
  if (args.key.empty() == !args.prefix.has_value()) {
    return UsageError("give a KEY or --prefix PREFIX (one of them)");
  }
  client::DeleteResult r;
  if (args.prefix.has_value()) {
    if (args.if_version.has_value())
      return UsageError("--if-version needs a KEY, not --prefix");
    if (args.prefix->empty()) {
      return UsageError(
          "--prefix is empty; deleting every key needs a non-empty prefix");
    }
    TSHARE_ASSIGN_OR_RETURN(r, env.client.DeletePrefix(*args.prefix));
  } else {
    TSHARE_ASSIGN_OR_RETURN(
        r, env.client.Delete(args.key, {.if_version = args.if_version}));
  }
  if (env.out.json()) {
    env.out.Object({{"deleted", r.deleted},
                    {"revision", r.revision},
                    {"store_id", r.store_id}});
  } else {
    env.out.Line(absl::StrCat("deleted ", r.deleted));
  }
  return absl::OkStatus();
}

absl::Status Ls(const Env& env, const LsArgs& args) {
  TSHARE_ASSIGN_OR_RETURN(
      std::vector<KeyValue> kvs,
      env.client.List(args.prefix, {.keys_only = args.keys_only}));
  for (const KeyValue& kv : kvs) {
    if (env.out.json()) {
      env.out.Object(KeyValueJson(kv));
    } else if (args.keys_only || !kv.value.has_value()) {
      env.out.Line(kv.key);
    } else {
      env.out.Line(absl::StrCat(kv.key, " ", FormatInline(*kv.value)));
    }
  }
  return absl::OkStatus();
}

absl::Status Watch(const Env& env, const WatchArgs& args) {
  if (args.key.empty() == !args.prefix.has_value()) {
    return UsageError("give a KEY or --prefix PREFIX (one of them)");
  }
  if (args.snapshot && args.from != 0)
    return UsageError("--snapshot and --from exclude each other");
  client::WatchOptions options;
  options.prefix = args.prefix.has_value();
  options.start_revision = args.from;
  options.snapshot = args.snapshot;
  Printer& out = env.out;
  StreamStop* stop = env.stop;
  auto callback = [&out, stop, count = args.count, printed = uint64_t{0},
                   finished = false](const client::WatchUpdate& u) mutable {
    if (finished) return;
    if (u.kind == client::WatchUpdate::Kind::kEnded) {
      finished = true;
      stop->Finish(u.status.ok()
                       ? absl::UnavailableError("the server ended the watch")
                       : u.status);
      return;
    }
    if (u.loss.has_value()) {
      if (out.json()) {
        out.Object({{"type", "LOSS"},
                    {"dropped", u.loss->dropped},
                    {"conflated", u.loss->conflated}});
      } else {
        std::cerr << "tsharectl: the server dropped " << u.loss->dropped
                  << " and conflated " << u.loss->conflated
                  << " changes of this watch (a slow reader)\n";
      }
    }
    if (u.kind == client::WatchUpdate::Kind::kResync) {
      if (out.json()) {
        OutJson snapshot = OutJson::array();
        for (const KeyValue& kv : u.snapshot)
          snapshot.push_back(KeyValueJson(kv));
        out.Object({{"type", "RESYNC"},
                    {"revision", u.revision},
                    {"store_changed", u.store_changed},
                    {"snapshot", std::move(snapshot)}});
      } else {
        out.Line(absl::StrCat("RESYNC at revision ", u.revision, ": ",
                              u.snapshot.size(), " keys"));
        for (const KeyValue& kv : u.snapshot) {
          out.Line(absl::StrCat(
              "  ", kv.key, " ",
              kv.value.has_value() ? FormatInline(*kv.value) : "null"));
        }
      }
      return;
    }
    for (const client::WatchEvent& e : u.events) {
      const bool put = e.type == client::WatchEvent::Type::kPut;
      if (out.json()) {
        OutJson j = {{"type", put ? "PUT" : "DELETE"}};
        j.update(KeyValueJson(e.kv));
        j["revision"] = e.revision();
        out.Object(j);
      } else if (put) {
        out.Line(absl::StrCat(
            "PUT ", e.kv.key, " ",
            e.kv.value.has_value() ? FormatInline(*e.kv.value) : "null",
            " (revision ", e.revision(), ")"));
      } else {
        out.Line(absl::StrCat("DELETE ", e.kv.key, " (revision ", e.revision(),
                              ")"));
      }
      if (count != 0 && ++printed >= count) {
        finished = true;
        stop->Finish(absl::OkStatus());
        return;
      }
    }
  };
  const std::string& target = args.prefix.has_value() ? *args.prefix : args.key;
  TSHARE_ASSIGN_OR_RETURN(
      client::WatchHandle handle,
      env.client.Watch(target, std::move(callback), options));
  absl::Status status = stop->Wait();
  handle.Stop();
  return status;
}

absl::Status Wait(const Env& env, const WaitArgs& args) {
  absl::StatusOr<client::Versioned<Value>> v = env.client.WaitForValue(
      args.key, args.after_version, absl::Now() + args.timeout);
  if (absl::IsDeadlineExceeded(v.status())) {
    return absl::DeadlineExceededError(absl::StrCat(
        "key \"", args.key, "\" did not pass version ", args.after_version,
        " within ", absl::FormatDuration(args.timeout), " (",
        v.status().message(), ")"));
  }
  if (!v.ok()) return v.status();
  PrintVersioned(env, args.key, *v);
  return absl::OkStatus();
}

absl::Status Txn(const Env& env, const std::string& file) {
  std::string text;
  if (file == "-") {
    text = ReadAll(std::cin);
  } else {
    std::ifstream in(file, std::ios::binary);
    if (!in)
      return UsageError(
          absl::StrCat("cannot read the transaction file \"", file, "\""));
    text = ReadAll(in);
  }
  v1::TxnRequest request;
  google::protobuf::util::Status parsed =
      google::protobuf::util::JsonStringToMessage(text, &request);
  if (!parsed.ok()) {
    return UsageError(absl::StrCat(
        file, " is not a tshare.v1.TxnRequest in JSON: ", parsed.ToString(),
        " (see tsharectl txn --help for the format)"));
  }
  std::unique_ptr<v1::Shares::Stub> stub =
      v1::Shares::NewStub(env.client.channel());
  grpc::ClientContext ctx;
  SetDeadline(ctx, env);
  v1::TxnResponse response;
  TSHARE_RETURN_IF_ERROR(FromGrpc(stub->Txn(&ctx, request, &response), env));

  const auto& ops =
      response.succeeded() ? request.success() : request.failure();
  OutJson results = OutJson::array();
  std::vector<std::string> lines;
  for (int i = 0; i < response.results_size(); ++i) {
    const v1::TxnOpResult& r = response.results(i);
    const v1::TxnOp* op = i < ops.size() ? &ops[i] : nullptr;
    OutJson j;
    std::string line;
    switch (r.result_case()) {
      case v1::TxnOpResult::kGet: {
        const std::string key = op != nullptr ? op->get().key() : "";
        j = {{"op", "get"}, {"key", key}};
        if (r.get().has_value() &&
            r.get().value().kind_case() != v1::Value::KIND_NOT_SET) {
          TSHARE_ASSIGN_OR_RETURN(Value v, FromProto(r.get().value()));
          j["value"] = v.ToJson();
          j["kind"] = KindLabel(v.kind());
          j["version"] = r.get().version();
          j["mod_revision"] = r.get().mod_revision();
          line = absl::StrCat("get ", key, " ", FormatInline(v));
        } else {
          j["value"] = nullptr;
          line = absl::StrCat("get ", key, " (absent)");
        }
        break;
      }
      case v1::TxnOpResult::kSet: {
        const std::string key = op != nullptr ? op->set().key() : "";
        j = {{"op", "set"},
             {"key", key},
             {"version", r.set().version()},
             {"created", r.set().created()}};
        line =
            absl::StrCat("set ", key, " OK (version ", r.set().version(), ")");
        break;
      }
      case v1::TxnOpResult::kUpdate: {
        const std::string key = op != nullptr ? op->update().key() : "";
        TSHARE_ASSIGN_OR_RETURN(Value v, FromProto(r.update().value()));
        j = KeyJson(key, v);
        j["op"] = "update";
        j["version"] = r.update().version();
        j["changed"] = r.update().changed();
        line = absl::StrCat("update ", key, " ", FormatInline(v), " (version ",
                            r.update().version(), ")");
        break;
      }
      case v1::TxnOpResult::kDelete: {
        std::string what;
        if (op != nullptr) {
          what = op->delete_().prefix().empty()
                     ? op->delete_().key()
                     : absl::StrCat(op->delete_().prefix(), "*");
        }
        j = {{"op", "delete"},
             {"key", what},
             {"deleted", r.delete_().deleted()}};
        line =
            absl::StrCat("delete ", what, " deleted ", r.delete_().deleted());
        break;
      }
      case v1::TxnOpResult::RESULT_NOT_SET:
        j = {{"op", nullptr}};
        line = "(empty result)";
        break;
    }
    results.push_back(std::move(j));
    lines.push_back(std::move(line));
  }
  if (env.out.json()) {
    env.out.Object({{"succeeded", response.succeeded()},
                    {"revision", response.revision()},
                    {"store_id", response.store_id()},
                    {"results", std::move(results)}});
  } else {
    env.out.Line(absl::StrCat(response.succeeded() ? "SUCCEEDED" : "FAILED",
                              " (revision ", response.revision(), ")"));
    for (const std::string& line : lines) env.out.Line(line);
  }
  return absl::OkStatus();
}

// ---- Bus ----

absl::Status Pub(const Env& env, const PubArgs& args) {
  TSHARE_ASSIGN_OR_RETURN(Value value,
                          AsUsage(ParseValue(args.value, args.type)));
  TSHARE_ASSIGN_OR_RETURN(
      client::PublishResult r,
      env.client.PublishValue(args.topic, std::move(value)));
  if (env.out.json()) {
    env.out.Object({{"topic", args.topic},
                    {"sequence", r.sequence},
                    {"receivers", r.receivers}});
  } else {
    env.out.Line(absl::StrCat("sequence ", r.sequence, " (", r.receivers,
                              " receivers)"));
  }
  return absl::OkStatus();
}

absl::Status Sub(const Env& env, const SubArgs& args) {
  if (args.patterns.empty())
    return UsageError("give at least one PATTERN, e.g. orders.*");
  Printer& out = env.out;
  StreamStop* stop = env.stop;
  auto callback = [&out, stop, count = args.count, printed = uint64_t{0},
                   finished = false](const client::BusMessage& m) mutable {
    if (finished) return;
    if (out.json()) {
      OutJson j = {
          {"topic", m.topic},
          {"sequence", m.sequence},
          {"value", m.value.ToJson()},
          {"kind", KindLabel(m.value.kind())},
          {"published_at", absl::FormatTime(absl::RFC3339_full, m.published_at,
                                            absl::UTCTimeZone())},
          {"missed", m.missed}};
      if (m.loss.has_value()) {
        j["loss"] = {{"dropped", m.loss->dropped},
                     {"conflated", m.loss->conflated}};
      }
      out.Object(j);
    } else {
      if (m.missed != 0) {
        std::cerr << "tsharectl: missed " << m.missed << " messages on "
                  << m.topic << "\n";
      }
      out.Line(absl::StrCat(m.topic, " ", FormatInline(m.value)));
    }
    if (count != 0 && ++printed >= count) {
      finished = true;
      stop->Finish(absl::OkStatus());
    }
  };
  TSHARE_ASSIGN_OR_RETURN(
      client::SubscriptionHandle handle,
      env.client.Subscribe(args.patterns, std::move(callback)));
  // The subscription reconnects by itself; it ends on its own only for an error
  // no reconnect fixes (a pattern the server refuses), which shows as
  // !active().
  for (;;) {
    if (std::optional<absl::Status> s = stop->WaitFor(absl::Milliseconds(200));
        s.has_value()) {
      handle.Stop();
      return *s;
    }
    if (!handle.active()) {
      absl::Status s = handle.status();
      return s.ok() ? absl::UnavailableError("the subscription ended") : s;
    }
  }
}

// ---- Workers and admin ----

absl::Status Workers(const Env& env, const WorkersArgs& args) {
  std::unique_ptr<v1::Workers::Stub> stub =
      v1::Workers::NewStub(env.client.channel());
  if (args.action == "list") {
    grpc::ClientContext ctx;
    SetDeadline(ctx, env);
    v1::ListWorkersResponse response;
    TSHARE_RETURN_IF_ERROR(
        FromGrpc(stub->List(&ctx, v1::ListWorkersRequest(), &response), env));
    bool found = false;
    if (!env.out.json() && args.name.empty()) {
      env.out.Line(absl::StrFormat("%-24s %-7s %-28s %s", "NAME", "KIND",
                                   "STATE", "PROGRESS"));
    }
    for (const v1::WorkerInfo& w : response.workers()) {
      if (!args.name.empty() && w.name() != args.name) continue;
      found = true;
      PrintWorker(env, w);
    }
    if (!args.name.empty() && !found) {
      return absl::NotFoundError(
          absl::StrCat("no worker named \"", args.name, "\""));
    }
    return absl::OkStatus();
  }
  if (args.action == "pause" || args.action == "resume" ||
      args.action == "stop") {
    if (args.name.empty())
      return UsageError(absl::StrCat("workers ", args.action, " needs a NAME"));
    v1::WorkerRef ref;
    ref.set_name(args.name);
    grpc::ClientContext ctx;
    SetDeadline(ctx, env);
    v1::WorkerInfo info;
    grpc::Status status = args.action == "pause" ? stub->Pause(&ctx, ref, &info)
                          : args.action == "resume"
                              ? stub->Resume(&ctx, ref, &info)
                              : stub->Stop(&ctx, ref, &info);
    TSHARE_RETURN_IF_ERROR(FromGrpc(status, env));
    PrintWorker(env, info);
    return absl::OkStatus();
  }
  if (args.action != "watch") {
    return UsageError(
        absl::StrCat("unknown workers action \"", args.action,
                     "\"; use list, pause, resume, stop or watch"));
  }
  v1::WatchWorkersRequest request;
  request.set_name(args.name);
  grpc::ClientContext ctx;
  std::unique_ptr<grpc::ClientReader<v1::WorkerEvent>> reader =
      stub->Watch(&ctx, request);
  StreamStop* stop = env.stop;
  std::thread reading([&] {
    v1::WorkerEvent event;
    uint64_t printed = 0;
    while (reader->Read(&event)) {
      if (env.out.json()) {
        OutJson j = ProtoToJson(event.worker());
        j["event"] = v1::WorkerEvent::Kind_Name(event.kind());
        env.out.Object(j);
      } else {
        env.out.Line(absl::StrCat(v1::WorkerEvent::Kind_Name(event.kind()), " ",
                                  WorkerRow(event.worker())));
      }
      if (args.count != 0 && ++printed >= args.count) {
        stop->Finish(absl::OkStatus());
        break;
      }
    }
    absl::Status status = FromGrpc(reader->Finish(), env);
    stop->Finish(status.ok()
                     ? absl::UnavailableError("the server ended the stream")
                     : status);
  });
  absl::Status status = stop->Wait();
  ctx.TryCancel();
  reading.join();
  return status;
}

absl::Status Stats(const Env& env) {
  std::unique_ptr<v1::Admin::Stub> stub =
      v1::Admin::NewStub(env.client.channel());
  grpc::ClientContext ctx;
  SetDeadline(ctx, env);
  v1::StatsResponse response;
  TSHARE_RETURN_IF_ERROR(
      FromGrpc(stub->Stats(&ctx, v1::StatsRequest(), &response), env));
  const OutJson j = ProtoToJson(response);
  if (env.out.json()) {
    env.out.Object(j);
  } else {
    PrintFlattened(env, "", j);
  }
  return absl::OkStatus();
}

absl::Status Subs(const Env& env) {
  std::unique_ptr<v1::Admin::Stub> stub =
      v1::Admin::NewStub(env.client.channel());
  grpc::ClientContext ctx;
  SetDeadline(ctx, env);
  v1::ListSubscriptionsResponse response;
  TSHARE_RETURN_IF_ERROR(FromGrpc(
      stub->ListSubscriptions(&ctx, v1::ListSubscriptionsRequest(), &response),
      env));
  if (!env.out.json()) {
    env.out.Line(
        absl::StrFormat("%-12s %-5s %-22s %-24s %6s %6s %-11s %9s %7s %9s",
                        "KIND", "ID", "PEER", "TARGETS", "LAG", "QUEUE",
                        "POLICY", "DELIVERED", "DROPPED", "CONFLATED"));
  }
  for (const v1::SubscriptionInfo& s : response.subscriptions()) {
    if (env.out.json()) {
      env.out.Object(ProtoToJson(s));
      continue;
    }
    env.out.Line(
        absl::StrFormat("%-12s %-5d %-22s %-24s %6d %6d %-11s %9d %7d %9d",
                        v1::SubscriptionInfo::Kind_Name(s.kind()), s.id(),
                        s.peer(), absl::StrJoin(s.targets(), ","), s.lag(),
                        s.queue_depth(), v1::OverflowPolicy_Name(s.policy()),
                        s.delivered(), s.dropped(), s.conflated()));
  }
  return absl::OkStatus();
}

}  // namespace tshare::tsharectl
