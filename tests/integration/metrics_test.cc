// Metrics over HTTP: a real server with /metrics on 127.0.0.1:0, scraped with
// cpp-httplib while real gRPC clients drive traffic.
#include "service/metrics.h"

#include <httplib.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "grpcpp/client_context.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/slice.h"
#include "gtest/gtest.h"
#include "proto/grpc_status.h"
#include "service/server.h"
#include "tests/integration/test_server.h"
#include "tests/status_matchers.h"
#include "tshare/v1/admin.grpc.pb.h"
#include "tshare/v1/bus.grpc.pb.h"
#include "tshare/v1/shares.grpc.pb.h"
#include "tshare/v1/workers.grpc.pb.h"

namespace tshare {
namespace {

using ::testing::HasSubstr;
using testing::StatusIs;
using testing::TestServer;

// Long enough for a stream to end on a loaded machine under a sanitizer;
// reaching it means the behaviour under test is broken, not slow.
constexpr absl::Duration kPatience = absl::Seconds(30);

service::ServerOptions MetricsOptions() {
  service::ServerOptions options = TestServer::DefaultOptions();
  options.metrics_listen = "127.0.0.1:0";
  return options;
}

using Labels = std::map<std::string, std::string>;

// One scrape, parsed: samples by name and labels, and the HELP and TYPE lines.
class Scrape final {
 public:
  explicit Scrape(std::string text) : text_(std::move(text)) {
    for (absl::string_view line : absl::StrSplit(text_, '\n')) {
      if (line.empty()) continue;
      if (absl::StartsWith(line, "# HELP ")) {
        std::vector<std::string> parts =
            absl::StrSplit(line.substr(7), absl::MaxSplits(' ', 1));
        help_[parts[0]] = parts.size() > 1 ? parts[1] : "";
        continue;
      }
      if (absl::StartsWith(line, "# TYPE ")) {
        std::vector<std::string> parts = absl::StrSplit(line.substr(7), ' ');
        if (parts.size() == 2) type_[parts[0]] = parts[1];
        continue;
      }
      if (line.front() == '#') continue;
      ParseSample(line);
    }
  }

  const std::string& text() const { return text_; }
  const std::map<std::string, std::string>& types() const { return type_; }
  const std::map<std::string, std::string>& helps() const { return help_; }

  std::optional<double> Value(const std::string& name,
                              const Labels& labels = {}) const {
    auto it = samples_.find({name, labels});
    if (it == samples_.end()) return std::nullopt;
    return it->second;
  }
  // Sum over the samples of `name` whose labels include `match`.
  double Sum(const std::string& name, const Labels& match = {}) const {
    double sum = 0;
    for (const auto& [key, value] : samples_) {
      if (key.first != name) continue;
      bool all = true;
      for (const auto& [k, v] : match) {
        auto it = key.second.find(k);
        all = all && it != key.second.end() && it->second == v;
      }
      if (all) sum += value;
    }
    return sum;
  }
  // Every label set of `name`.
  std::vector<Labels> Series(const std::string& name) const {
    std::vector<Labels> out;
    for (const auto& [key, value] : samples_) {
      if (key.first == name) out.push_back(key.second);
    }
    return out;
  }

 private:
  // name{k="v",...} value   (values of our labels hold no quotes or escapes)
  void ParseSample(absl::string_view line) {
    const size_t space = line.rfind(' ');
    ASSERT_NE(space, absl::string_view::npos) << line;
    double value = 0;
    ASSERT_TRUE(absl::SimpleAtod(line.substr(space + 1), &value)) << line;
    absl::string_view series = line.substr(0, space);
    Labels labels;
    std::string name(series);
    if (const size_t brace = series.find('{');
        brace != absl::string_view::npos) {
      name = std::string(series.substr(0, brace));
      absl::string_view body =
          series.substr(brace + 1, series.size() - brace - 2);
      for (absl::string_view pair :
           absl::StrSplit(body, "\",", absl::SkipEmpty())) {
        const size_t eq = pair.find("=\"");
        ASSERT_NE(eq, absl::string_view::npos) << line;
        absl::string_view v = pair.substr(eq + 2);
        if (absl::EndsWith(v, "\"")) v.remove_suffix(1);
        labels[std::string(pair.substr(0, eq))] = std::string(v);
      }
    }
    samples_[{name, labels}] = value;
  }

  std::string text_;
  std::map<std::pair<std::string, Labels>, double> samples_;
  std::map<std::string, std::string> help_;
  std::map<std::string, std::string> type_;
};

Scrape Fetch(int port) {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(10, 0);
  httplib::Result result = client.Get("/metrics");
  EXPECT_TRUE(result) << "GET /metrics on port " << port << " failed";
  if (!result) return Scrape("");
  EXPECT_EQ(result->status, 200);
  EXPECT_THAT(result->get_header_value("Content-Type"),
              HasSubstr("text/plain"));
  return Scrape(result->body);
}

// Scrapes until `pred` holds (a server-side count that follows a client's
// call a little later) or kPatience passes; returns the last scrape.
template <typename Pred>
Scrape FetchUntil(int port, Pred pred) {
  const absl::Time deadline = absl::Now() + kPatience;
  Scrape scrape = Fetch(port);
  while (!pred(scrape) && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
    scrape = Fetch(port);
  }
  return scrape;
}

Labels Method(const std::string& service, const std::string& method,
              const std::string& type) {
  return {
      {"grpc_service", service}, {"grpc_method", method}, {"grpc_type", type}};
}

Labels WithCode(Labels labels, grpc::StatusCode code) {
  labels["grpc_code"] = std::string(GrpcCodeLabel(code));
  return labels;
}

const char* TypeOf(const google::protobuf::MethodDescriptor& m) {
  if (m.client_streaming() && m.server_streaming()) return "bidi_stream";
  if (m.client_streaming()) return "client_stream";
  if (m.server_streaming()) return "server_stream";
  return "unary";
}

TEST(MetricsTest, EveryMethodHasItsSeriesAtZeroBeforeTraffic) {
  TestServer server(MetricsOptions());
  const int port = server.server().metrics_port();
  ASSERT_GT(port, 0);
  const Scrape scrape = Fetch(port);

  const char* const services[] = {"tshare.v1.Shares", "tshare.v1.Bus",
                                  "tshare.v1.Workers", "tshare.v1.Admin",
                                  "grpc.health.v1.Health"};
  int methods = 0;
  for (const char* name : services) {
    const google::protobuf::ServiceDescriptor* service =
        google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
            name);
    ASSERT_NE(service, nullptr) << name;
    for (int i = 0; i < service->method_count(); ++i) {
      const google::protobuf::MethodDescriptor& m = *service->method(i);
      ++methods;
      const Labels labels = Method(name, m.name(), TypeOf(m));
      SCOPED_TRACE(absl::StrCat(name, "/", m.name()));
      EXPECT_EQ(scrape.Value("grpc_server_started_total", labels), 0);
      EXPECT_EQ(scrape.Value("grpc_server_msg_received_total", labels), 0);
      EXPECT_EQ(scrape.Value("grpc_server_msg_sent_total", labels), 0);
      EXPECT_EQ(scrape.Value("grpc_server_handling_seconds_count", labels), 0);
      for (int code = 0; code <= 16; ++code) {
        EXPECT_EQ(
            scrape.Value("grpc_server_handled_total",
                         WithCode(labels, static_cast<grpc::StatusCode>(code))),
            0)
            << GrpcCodeLabel(static_cast<grpc::StatusCode>(code));
      }
    }
  }
  // Shares 9, Bus 2, Workers 6, Admin 2, Health 2.
  EXPECT_EQ(methods, 21);
  EXPECT_EQ(scrape.Value("grpc_server_started_total",
                         Method("tshare.v1.Shares", "Session", "bidi_stream")),
            0);
  EXPECT_EQ(scrape.Value("grpc_server_started_total",
                         Method("tshare.v1.Workers", "Watch", "server_stream")),
            0);
  // go-grpc-prometheus's buckets (client_golang's defaults).
  std::vector<std::string> buckets;
  for (const Labels& l : scrape.Series("grpc_server_handling_seconds_bucket")) {
    if (l.at("grpc_method") == "Get" &&
        l.at("grpc_service") == "tshare.v1.Shares") {
      buckets.push_back(l.at("le"));
    }
  }
  EXPECT_THAT(buckets, ::testing::UnorderedElementsAre(
                           "0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
                           "0.5", "1", "2.5", "5", "10", "+Inf"));
}

TEST(MetricsTest, EveryFamilyHasHelpAndTheRightType) {
  TestServer server(MetricsOptions());
  const Scrape scrape = Fetch(server.server().metrics_port());
  const std::map<std::string, std::string> expected = {
      {"grpc_server_started_total", "counter"},
      {"grpc_server_handled_total", "counter"},
      {"grpc_server_msg_received_total", "counter"},
      {"grpc_server_msg_sent_total", "counter"},
      {"grpc_server_handling_seconds", "histogram"},
      {"tshare_build_info", "gauge"},
      {"tshare_keys", "gauge"},
      {"tshare_store_bytes", "gauge"},
      {"tshare_revision", "gauge"},
      {"tshare_history_changes", "gauge"},
      {"tshare_store_ops_total", "counter"},
      {"tshare_watches", "gauge"},
      {"tshare_watch_events_sent_total", "counter"},
      {"tshare_watch_events_dropped_total", "counter"},
      {"tshare_watch_events_conflated_total", "counter"},
      {"tshare_watch_resyncs_total", "counter"},
      {"tshare_watch_max_lag_revisions", "gauge"},
      {"tshare_bus_subscriptions", "gauge"},
      {"tshare_bus_topics", "gauge"},
      {"tshare_bus_published_total", "counter"},
      {"tshare_bus_delivered_total", "counter"},
      {"tshare_bus_dropped_total", "counter"},
      {"tshare_bus_conflated_total", "counter"},
      {"tshare_pool_threads", "gauge"},
      {"tshare_pool_max_threads", "gauge"},
      {"tshare_pool_active_threads", "gauge"},
      {"tshare_pool_queued_tasks", "gauge"},
      {"tshare_pool_max_queued_tasks", "gauge"},
      {"tshare_pool_tasks_completed_total", "counter"},
      {"tshare_pool_tasks_failed_total", "counter"},
      {"tshare_pool_tasks_rejected_total", "counter"},
      {"tshare_pool_task_wait_seconds", "histogram"},
      {"tshare_workers", "gauge"},
      {"process_cpu_seconds_total", "counter"},
      {"process_start_time_seconds", "gauge"},
      {"process_virtual_memory_bytes", "gauge"},
      {"process_resident_memory_bytes", "gauge"},
      {"process_open_fds", "gauge"},
      {"process_max_fds", "gauge"},
  };
  for (const auto& [name, type] : expected) {
    SCOPED_TRACE(name);
    ASSERT_EQ(scrape.types().count(name), 1u);
    EXPECT_EQ(scrape.types().at(name), type);
    ASSERT_EQ(scrape.helps().count(name), 1u);
    EXPECT_FALSE(scrape.helps().at(name).empty());
  }
  // Only the exposer's own series (exposer_*) come on top.
  for (const auto& [name, type] : scrape.types()) {
    if (absl::StartsWith(name, "exposer_")) continue;
    EXPECT_EQ(expected.count(name), 1u) << "undocumented family " << name;
  }
}

TEST(MetricsTest, GrpcCountersMoveWithUnaryCalls) {
  TestServer server(MetricsOptions());
  const int port = server.server().metrics_port();
  auto shares = v1::Shares::NewStub(server.channel());

  v1::SetRequest set;
  set.set_key("visits");
  set.mutable_value()->set_int_value(1);
  v1::SetResponse set_response;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(shares->Set(&context, set, &set_response).ok());
  }
  v1::GetRequest get;
  get.set_key("missing");
  v1::GetResponse get_response;
  {
    grpc::ClientContext context;
    EXPECT_EQ(shares->Get(&context, get, &get_response).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }

  const Labels get_labels = Method("tshare.v1.Shares", "Get", "unary");
  const Labels set_labels = Method("tshare.v1.Shares", "Set", "unary");
  const Scrape scrape = FetchUntil(port, [&](const Scrape& s) {
    return s.Sum("grpc_server_handled_total", get_labels) == 1 &&
           s.Sum("grpc_server_handled_total", set_labels) == 1;
  });
  EXPECT_EQ(scrape.Value("grpc_server_handled_total",
                         WithCode(get_labels, grpc::StatusCode::NOT_FOUND)),
            1);
  EXPECT_EQ(scrape.Value("grpc_server_handled_total",
                         WithCode(get_labels, grpc::StatusCode::OK)),
            0);
  EXPECT_EQ(scrape.Value("grpc_server_handled_total",
                         WithCode(set_labels, grpc::StatusCode::OK)),
            1);
  EXPECT_EQ(scrape.Value("grpc_server_started_total", get_labels), 1);
  EXPECT_EQ(scrape.Value("grpc_server_started_total", set_labels), 1);
  EXPECT_EQ(scrape.Value("grpc_server_msg_received_total", get_labels), 1);
  // A failed unary call sends no message; a successful one sends its response.
  EXPECT_EQ(scrape.Value("grpc_server_msg_sent_total", get_labels), 0);
  EXPECT_EQ(scrape.Value("grpc_server_msg_sent_total", set_labels), 1);
  EXPECT_EQ(scrape.Value("grpc_server_handling_seconds_count", get_labels), 1);
  Labels inf = get_labels;
  inf["le"] = "+Inf";
  EXPECT_EQ(scrape.Value("grpc_server_handling_seconds_bucket", inf), 1);
  EXPECT_GT(scrape.Value("grpc_server_handling_seconds_sum", get_labels), 0);
  // Other methods did not move.
  EXPECT_EQ(
      scrape.Sum("grpc_server_started_total", {{"grpc_method", "Update"}}), 0);
}

TEST(MetricsTest, StreamCountersCountMessagesAndTheEnd) {
  TestServer server(MetricsOptions());
  const int port = server.server().metrics_port();
  auto shares = v1::Shares::NewStub(server.channel());

  // Session (bidi): two requests, answered in order, then a clean end.
  {
    grpc::ClientContext context;
    auto session = shares->Session(&context);
    for (int i = 1; i <= 2; ++i) {
      v1::SessionRequest request;
      v1::SessionOp* op = request.add_ops();
      op->set_id(i);
      op->mutable_set()->set_key("k");
      op->mutable_set()->mutable_value()->set_int_value(i);
      ASSERT_TRUE(session->Write(request));
    }
    ASSERT_TRUE(session->WritesDone());
    int results = 0;
    v1::SessionResponse response;
    while (session->Read(&response)) results += response.results_size();
    EXPECT_EQ(results, 2);
    ASSERT_TRUE(session->Finish().ok());
  }
  const Labels session = Method("tshare.v1.Shares", "Session", "bidi_stream");
  Scrape scrape = FetchUntil(port, [&](const Scrape& s) {
    return s.Sum("grpc_server_handled_total", session) == 1;
  });
  EXPECT_EQ(scrape.Value("grpc_server_started_total", session), 1);
  EXPECT_EQ(scrape.Value("grpc_server_msg_received_total", session), 2);
  const std::optional<double> sent =
      scrape.Value("grpc_server_msg_sent_total", session);
  ASSERT_TRUE(sent.has_value());
  EXPECT_GE(*sent, 1);  // results of consecutive requests may share a response
  EXPECT_LE(*sent, 2);
  EXPECT_EQ(scrape.Value("grpc_server_handled_total",
                         WithCode(session, grpc::StatusCode::OK)),
            1);

  // Watch (server stream): in flight while open, handled once it ends.
  const Labels watch = Method("tshare.v1.Shares", "Watch", "server_stream");
  {
    v1::WatchRequest request;
    request.set_key("k");
    request.mutable_progress_interval()->set_nanos(20'000'000);
    grpc::ClientContext context;
    auto stream = shares->Watch(&context, request);
    v1::WatchEvent event;
    ASSERT_TRUE(stream->Read(&event));
    scrape = Fetch(port);
    EXPECT_EQ(scrape.Value("grpc_server_started_total", watch), 1);
    EXPECT_EQ(scrape.Sum("grpc_server_handled_total", watch), 0);
    EXPECT_GE(scrape.Value("grpc_server_msg_sent_total", watch), 1);
    EXPECT_EQ(scrape.Value("grpc_server_msg_received_total", watch), 1);
    EXPECT_EQ(scrape.Value("tshare_watches"), 1);
    context.TryCancel();
    EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  scrape = FetchUntil(port, [&](const Scrape& s) {
    return s.Sum("grpc_server_handled_total", watch) == 1 &&
           s.Value("tshare_watches") == 0;
  });
  EXPECT_EQ(scrape.Sum("grpc_server_handled_total", watch), 1);
  EXPECT_EQ(scrape.Value("tshare_watches"), 0);
}

TEST(MetricsTest, UnknownMethodsMakeNoSeries) {
  TestServer server(MetricsOptions());
  grpc::GenericStub generic(server.channel());
  grpc::ClientContext context;
  grpc::Slice empty("");
  grpc::ByteBuffer request(&empty, 1);  // an empty message
  grpc::ByteBuffer response;
  absl::Notification done;
  grpc::Status status;
  generic.UnaryCall(&context, "/tshare.v1.Shares/NoSuchMethod",
                    grpc::StubOptions(), &request, &response,
                    [&](grpc::Status s) {
                      status = std::move(s);
                      done.Notify();
                    });
  done.WaitForNotification();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  const Scrape scrape = Fetch(server.server().metrics_port());
  EXPECT_THAT(scrape.text(), ::testing::Not(HasSubstr("NoSuchMethod")));
}

TEST(MetricsTest, ServerFiguresFollowTheParts) {
  TestServer server(MetricsOptions());
  const int port = server.server().metrics_port();
  auto shares = v1::Shares::NewStub(server.channel());
  auto bus = v1::Bus::NewStub(server.channel());

  // A subscriber, so that published messages are delivered through the pool.
  v1::SubscribeRequest subscribe;
  subscribe.add_patterns("orders.*");
  subscribe.mutable_progress_interval()->set_nanos(20'000'000);
  grpc::ClientContext subscribe_context;
  auto subscription = bus->Subscribe(&subscribe_context, subscribe);
  v1::BusMessage message;
  ASSERT_TRUE(subscription->Read(&message));  // registered once it reads

  for (int i = 0; i < 3; ++i) {
    v1::SetRequest set;
    set.set_key(absl::StrCat("secret-key-", i));
    set.mutable_value()->set_string_value("secret-value");
    v1::SetResponse response;
    grpc::ClientContext context;
    ASSERT_TRUE(shares->Set(&context, set, &response).ok());
  }
  for (int i = 0; i < 2; ++i) {
    v1::PublishRequest publish;
    publish.set_topic("orders.secret");
    publish.mutable_value()->set_int_value(i);
    v1::PublishResponse response;
    grpc::ClientContext context;
    ASSERT_TRUE(bus->Publish(&context, publish, &response).ok());
  }
  int data = 0;
  while (data < 2 && subscription->Read(&message)) {
    if (message.kind() != v1::BusMessage::PROGRESS) ++data;
  }
  ASSERT_EQ(data, 2);

  const Scrape scrape = FetchUntil(port, [](const Scrape& s) {
    return s.Value("tshare_bus_delivered_total") == 2;
  });
  const v1::StatsResponse stats =
      server.server().admin_service().CollectStats();
  EXPECT_EQ(
      scrape.Value("tshare_build_info", {{"version", service::kServerVersion}}),
      1);
  EXPECT_EQ(scrape.Value("tshare_keys"), 3);
  EXPECT_EQ(scrape.Value("tshare_revision"), 3);
  EXPECT_EQ(scrape.Value("tshare_revision"), stats.revision());
  EXPECT_EQ(scrape.Value("tshare_store_bytes"), stats.store().bytes());
  EXPECT_EQ(scrape.Value("tshare_store_ops_total", {{"op", "set"}}), 3);
  EXPECT_EQ(scrape.Value("tshare_store_ops_total", {{"op", "get"}}), 0);
  EXPECT_EQ(scrape.Series("tshare_store_ops_total").size(), 7u);
  EXPECT_EQ(scrape.Value("tshare_bus_subscriptions"), 1);
  EXPECT_EQ(scrape.Value("tshare_bus_published_total"), 2);
  EXPECT_EQ(scrape.Value("tshare_bus_delivered_total"), 2);
  EXPECT_EQ(scrape.Value("tshare_bus_dropped_total"), 0);
  EXPECT_EQ(scrape.Value("tshare_bus_topics"), 1);
  EXPECT_EQ(scrape.Value("tshare_watches"), 0);
  EXPECT_EQ(scrape.Value("tshare_watch_max_lag_revisions"), 0);

  // The pool: the history compactor's task (low priority) at least.
  EXPECT_GE(scrape.Value("tshare_pool_threads"), 1);
  EXPECT_EQ(scrape.Value("tshare_pool_max_threads"),
            server.server().pool().options().max_threads);
  EXPECT_EQ(scrape.Value("tshare_pool_max_queued_tasks"),
            server.server().pool().options().max_queue);
  EXPECT_EQ(scrape.Series("tshare_pool_queued_tasks").size(), 4u);
  EXPECT_GE(scrape.Value("tshare_pool_task_wait_seconds_count",
                         {{"priority", "low"}}),
            1);
  EXPECT_GE(scrape.Sum("tshare_pool_task_wait_seconds_count"),
            scrape.Value("tshare_pool_tasks_completed_total").value_or(0));

  // Workers by state: the compactor runs.
  EXPECT_GE(scrape.Value("tshare_workers", {{"state", "running"}}), 1);
  EXPECT_EQ(scrape.Series("tshare_workers").size(), 6u);

  // Process figures from /proc.
  EXPECT_GT(scrape.Value("process_resident_memory_bytes"), 0);
  EXPECT_GE(scrape.Value("process_virtual_memory_bytes"),
            scrape.Value("process_resident_memory_bytes"));
  EXPECT_GT(scrape.Value("process_open_fds"), 0);
  EXPECT_GE(scrape.Value("process_max_fds"), scrape.Value("process_open_fds"));
  EXPECT_GE(scrape.Value("process_cpu_seconds_total"), 0);
  const double now = absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch());
  EXPECT_GT(scrape.Value("process_start_time_seconds"), now - 24 * 3600);
  EXPECT_LE(scrape.Value("process_start_time_seconds"), now + 1);

  // Keys, values and topics never show.
  EXPECT_THAT(scrape.text(), ::testing::Not(HasSubstr("secret")));

  subscribe_context.TryCancel();
  subscription->Finish();
}

TEST(MetricsTest, MetricsPortInUseIsUnavailableNamingTheFlag) {
  TestServer first(MetricsOptions());
  service::ServerOptions options = MetricsOptions();
  options.metrics_listen =
      absl::StrCat("127.0.0.1:", first.server().metrics_port());
  absl::StatusOr<std::unique_ptr<service::Server>> second =
      service::Server::Start(options);
  EXPECT_THAT(second.status(), StatusIs(absl::StatusCode::kUnavailable,
                                        HasSubstr("--metrics_listen")));
  // The first one still serves.
  EXPECT_EQ(
      Fetch(first.server().metrics_port())
          .Value("tshare_build_info", {{"version", service::kServerVersion}}),
      1);
}

TEST(MetricsTest, IPv6MetricsAddressIsInvalidArgument) {
  service::ServerOptions options = MetricsOptions();
  options.metrics_listen = "[::1]:0";
  EXPECT_THAT(service::Server::Start(options).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--metrics_listen")));
}

TEST(MetricsTest, EmptyMetricsListenServesNothingButStillCounts) {
  TestServer server;  // metrics_listen = ""
  EXPECT_EQ(server.server().metrics_port(), 0);
  auto admin = v1::Admin::NewStub(server.channel());
  v1::StatsResponse response;
  grpc::ClientContext context;
  ASSERT_TRUE(admin->Stats(&context, {}, &response).ok());
  const Scrape scrape(server.server().metrics().Render());
  const Labels stats = Method("tshare.v1.Admin", "Stats", "unary");
  EXPECT_EQ(scrape.Value("grpc_server_started_total", stats), 1);
  // Without a listener the parts are not read; the rest is there.
  EXPECT_FALSE(scrape.Value("tshare_keys").has_value());
  EXPECT_EQ(
      scrape.Value("tshare_build_info", {{"version", service::kServerVersion}}),
      1);
}

}  // namespace
}  // namespace tshare
