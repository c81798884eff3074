// The server as a whole: start-up errors, health per service, reflection, and a
// shutdown that ends open streams with UNAVAILABLE.
#include "service/server.h"

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/message.h"
#include "grpc/health/v1/health.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/impl/client_unary_call.h"
#include "grpcpp/impl/rpc_method.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/sync_stream.h"
#include "gtest/gtest.h"
#include "tests/integration/test_server.h"
#include "tests/status_matchers.h"
#include "tshare/v1/bus.grpc.pb.h"
#include "tshare/v1/shares.grpc.pb.h"
#include "tshare/v1/workers.grpc.pb.h"

namespace tshare {
namespace {

using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsSupersetOf;
using testing::StatusIs;
using testing::TestServer;

// grpc.health.v1.Health has no generated stub here (only its messages are
// compiled into tshare_proto), so the tests call it the way generated stubs do.
grpc::Status HealthCheck(grpc::Channel& channel, const std::string& service,
                         HealthCheckResponse* response) {
  static const grpc::internal::RpcMethod kCheck(
      "/grpc.health.v1.Health/Check", grpc::internal::RpcMethod::NORMAL_RPC);
  HealthCheckRequest request;
  request.set_service(service);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  return grpc::internal::BlockingUnaryCall<
      HealthCheckRequest, HealthCheckResponse, grpc::protobuf::MessageLite,
      grpc::protobuf::MessageLite>(&channel, kCheck, &context, request,
                                   response);
}

TEST(ServerTest, HealthIsServingForTheServerAndEachService) {
  TestServer server;
  for (const char* service : {"", "tshare.v1.Shares", "tshare.v1.Bus",
                              "tshare.v1.Workers", "tshare.v1.Admin"}) {
    HealthCheckResponse response;
    grpc::Status status = HealthCheck(*server.channel(), service, &response);
    ASSERT_TRUE(status.ok()) << service << ": " << status.error_message();
    EXPECT_EQ(response.status(), HealthCheckResponse::SERVING) << service;
  }
  HealthCheckResponse response;
  EXPECT_EQ(HealthCheck(*server.channel(), "tshare.v1.Nothing", &response)
                .error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST(ServerTest, HealthTurnsNotServingWhenShutdownBegins) {
  TestServer server;
  static const grpc::internal::RpcMethod kWatch(
      "/grpc.health.v1.Health/Watch",
      grpc::internal::RpcMethod::SERVER_STREAMING);
  HealthCheckRequest request;
  request.set_service("tshare.v1.Shares");
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReader<HealthCheckResponse>> watch(
      grpc::internal::ClientReaderFactory<HealthCheckResponse>::Create(
          server.channel().get(), kWatch, &context, request));
  HealthCheckResponse response;
  ASSERT_TRUE(watch->Read(&response));
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);

  std::thread stopper(
      [&server] { server.server().Shutdown(absl::Seconds(1)); });
  ASSERT_TRUE(watch->Read(&response));
  EXPECT_EQ(response.status(), HealthCheckResponse::NOT_SERVING);
  EXPECT_TRUE(server.server().shutting_down());
  context.TryCancel();
  watch->Finish();
  stopper.join();
}

// A reflection client built from the reflection messages that
// libgrpc++_reflection registers in the generated descriptor pool.
class ReflectionClient {
 public:
  explicit ReflectionClient(grpc::Channel& channel) {
    static const grpc::internal::RpcMethod kInfo(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        grpc::internal::RpcMethod::BIDI_STREAMING);
    stream_.reset(grpc::internal::ClientReaderWriterFactory<
                  grpc::ByteBuffer, grpc::ByteBuffer>::Create(&channel, kInfo,
                                                              &context_));
    const google::protobuf::DescriptorPool* pool =
        google::protobuf::DescriptorPool::generated_pool();
    request_type_ = pool->FindMessageTypeByName(
        "grpc.reflection.v1alpha.ServerReflectionRequest");
    response_type_ = pool->FindMessageTypeByName(
        "grpc.reflection.v1alpha.ServerReflectionResponse");
  }
  ~ReflectionClient() {
    stream_->WritesDone();
    stream_->Finish();
  }

  bool ready() const {
    return request_type_ != nullptr && response_type_ != nullptr;
  }

  // Sends a request with string field `field` set to `value`; returns the
  // response.
  std::unique_ptr<google::protobuf::Message> Ask(const std::string& field,
                                                 const std::string& value) {
    auto* factory = google::protobuf::MessageFactory::generated_factory();
    std::unique_ptr<google::protobuf::Message> request(
        factory->GetPrototype(request_type_)->New());
    request->GetReflection()->SetString(
        request.get(), request_type_->FindFieldByName(field), value);
    std::string bytes = request->SerializeAsString();
    grpc::Slice slice(bytes);
    grpc::ByteBuffer out(&slice, 1);
    grpc::ByteBuffer in;
    if (!stream_->Write(out) || !stream_->Read(&in)) return nullptr;
    std::vector<grpc::Slice> slices;
    EXPECT_TRUE(in.Dump(&slices).ok());
    std::string received;
    for (const grpc::Slice& s : slices) {
      received.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
    std::unique_ptr<google::protobuf::Message> response(
        factory->GetPrototype(response_type_)->New());
    EXPECT_TRUE(response->ParseFromString(received));
    return response;
  }

  std::vector<std::string> ListServices() {
    std::vector<std::string> names;
    auto response = Ask("list_services", "*");
    if (response == nullptr) return names;
    const auto& list = response->GetReflection()->GetMessage(
        *response, response_type_->FindFieldByName("list_services_response"));
    const auto* service_field =
        list.GetDescriptor()->FindFieldByName("service");
    for (int i = 0; i < list.GetReflection()->FieldSize(list, service_field);
         ++i) {
      const auto& service =
          list.GetReflection()->GetRepeatedMessage(list, service_field, i);
      names.push_back(service.GetReflection()->GetString(
          service, service.GetDescriptor()->FindFieldByName("name")));
    }
    return names;
  }

  // The names of the files that describe `symbol` (the first is the one
  // defining it).
  std::vector<std::string> FilesContaining(const std::string& symbol) {
    std::vector<std::string> names;
    auto response = Ask("file_containing_symbol", symbol);
    if (response == nullptr) return names;
    const auto* files_field =
        response_type_->FindFieldByName("file_descriptor_response");
    if (!response->GetReflection()->HasField(*response, files_field))
      return names;
    const auto& files =
        response->GetReflection()->GetMessage(*response, files_field);
    const auto* proto_field =
        files.GetDescriptor()->FindFieldByName("file_descriptor_proto");
    for (int i = 0; i < files.GetReflection()->FieldSize(files, proto_field);
         ++i) {
      google::protobuf::FileDescriptorProto file;
      file.ParseFromString(
          files.GetReflection()->GetRepeatedString(files, proto_field, i));
      names.push_back(file.name());
    }
    return names;
  }

 private:
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>>
      stream_;
  const google::protobuf::Descriptor* request_type_ = nullptr;
  const google::protobuf::Descriptor* response_type_ = nullptr;
};

TEST(ServerTest, ReflectionListsAndDescribesTheServices) {
  TestServer server;
  ReflectionClient reflection(*server.channel());
  ASSERT_TRUE(reflection.ready());
  EXPECT_THAT(
      reflection.ListServices(),
      IsSupersetOf({"tshare.v1.Shares", "tshare.v1.Bus", "tshare.v1.Workers",
                    "tshare.v1.Admin", "grpc.health.v1.Health"}));
  // File names as users see them: no build-directory prefix.
  EXPECT_THAT(reflection.FilesContaining("tshare.v1.Shares"),
              Contains("tshare/v1/shares.proto"));
  EXPECT_THAT(reflection.FilesContaining("tshare.v1.Bus"),
              Contains("tshare/v1/bus.proto"));
  // The health service can be described too (its messages are linked in).
  EXPECT_THAT(reflection.FilesContaining("grpc.health.v1.Health"),
              Contains("grpc/health/v1/health.proto"));
}

TEST(ServerTest, ShutdownEndsOpenStreamsWithUnavailable) {
  TestServer server;
  auto bus = v1::Bus::NewStub(server.channel());
  auto workers = v1::Workers::NewStub(server.channel());
  auto shares = v1::Shares::NewStub(server.channel());

  v1::SubscribeRequest subscribe;
  subscribe.add_patterns("orders.*");
  subscribe.mutable_progress_interval()->set_nanos(20'000'000);
  grpc::ClientContext subscribe_context;
  auto subscription = bus->Subscribe(&subscribe_context, subscribe);
  v1::BusMessage message;
  ASSERT_TRUE(subscription->Read(&message));  // registered

  grpc::ClientContext workers_context;
  auto worker_watch =
      workers->Watch(&workers_context, v1::WatchWorkersRequest());
  v1::WorkerEvent worker_event;
  ASSERT_TRUE(worker_watch->Read(&worker_event));  // the snapshot

  v1::WatchRequest watch_request;
  watch_request.set_prefix("cfg/");
  watch_request.mutable_progress_interval()->set_nanos(20'000'000);
  grpc::ClientContext watch_context;
  auto watch = shares->Watch(&watch_context, watch_request);
  v1::WatchEvent watch_event;
  ASSERT_TRUE(watch->Read(&watch_event));  // registered

  std::thread stopper(
      [&server] { server.server().Shutdown(absl::Seconds(5)); });
  while (subscription->Read(&message)) {
  }
  grpc::Status status = subscription->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << status.error_message();
  while (worker_watch->Read(&worker_event)) {
  }
  status = worker_watch->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << status.error_message();
  while (watch->Read(&watch_event)) {
  }
  status = watch->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << status.error_message();
  stopper.join();

  // And new calls are refused.
  v1::PublishRequest publish;
  publish.set_topic("orders.new");
  publish.mutable_value()->set_int_value(1);
  v1::PublishResponse response;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  EXPECT_EQ(bus->Publish(&context, publish, &response).error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

TEST(ServerTest, AttachedWorkerFailsWhenTheServerShutsDown) {
  TestServer server;
  auto workers = v1::Workers::NewStub(server.channel());
  grpc::ClientContext context;
  auto attach = workers->Attach(&context);
  v1::WorkerReport hello;
  hello.mutable_hello()->set_name("indexer");
  ASSERT_TRUE(attach->Write(hello));
  v1::WorkerCommand command;
  ASSERT_TRUE(attach->Read(&command));
  ASSERT_EQ(command.command(), v1::WorkerCommand::ATTACHED);
  std::thread stopper(
      [&server] { server.server().Shutdown(absl::Seconds(5)); });
  while (attach->Read(&command)) {
  }
  EXPECT_EQ(attach->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
  stopper.join();
}

TEST(ServerTest, PortInUseIsUnavailableWithAHint) {
  TestServer first;
  service::ServerOptions options = TestServer::DefaultOptions();
  options.listen = first.address();
  absl::StatusOr<std::unique_ptr<service::Server>> second =
      service::Server::Start(options);
  EXPECT_THAT(second.status(),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr(absl::StrCat(
                           "cannot listen on ", first.address(),
                           ": address in use; pass --listen=HOST:PORT"))));
}

TEST(ServerTest, BadOptionsAreInvalidArgument) {
  auto start = [](auto change) {
    service::ServerOptions options = TestServer::DefaultOptions();
    change(options);
    return service::Server::Start(options).status();
  };
  EXPECT_THAT(
      start([](auto& o) { o.listen = "nonsense"; }),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--listen")));
  EXPECT_THAT(
      start([](auto& o) { o.listen = "127.0.0.1:99999"; }),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--listen")));
  EXPECT_THAT(start([](auto& o) { o.metrics_listen = "9464"; }),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--metrics_listen")));
  EXPECT_THAT(start([](auto& o) { o.pool_threads = -1; }),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--pool_threads")));
  EXPECT_THAT(start([](auto& o) { o.max_key_bytes = 0; }),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--max_key_bytes")));
  EXPECT_THAT(start([](auto& o) { o.compact_interval = absl::ZeroDuration(); }),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--compact_interval")));
  EXPECT_THAT(start([](auto& o) {
                o.subscription_queue = o.max_subscription_queue + 1;
              }),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--max_subscription_queue")));
}

TEST(ServerTest, ReportsItsAddressAndStoreId) {
  TestServer server;
  EXPECT_GT(server.server().port(), 0);
  EXPECT_EQ(server.address(),
            absl::StrCat("127.0.0.1:", server.server().port()));
  EXPECT_EQ(server.server().store_id().size(), 32u);
  EXPECT_FALSE(server.server().shutting_down());
}

}  // namespace
}  // namespace tshare
