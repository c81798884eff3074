// internal::ReadStream against a real server's Bus.Subscribe: frames come
// through a bounded buffer in order, a refused or cancelled call ends with its
// status, and once Finish returns the consumer alone owns the stream, so the
// stream (and the last reference to its channel) is never destroyed on a gRPC
// callback thread.
#include "client/internal/read_stream.h"

#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "client/internal/connection.h"
#include "client/options.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/integration/test_server.h"
#include "tests/status_matchers.h"
#include "tshare/v1/bus.grpc.pb.h"

namespace tshare::client::internal {
namespace {

using ::testing::HasSubstr;
using ::tshare::testing::TestServer;

using Stream = ReadStream<v1::BusMessage>;

constexpr absl::Duration kWait = absl::Seconds(20);

class ReadStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(
        conn_, Connection::Create(server_.address(), ClientOptions{}));
  }

  // Starts Bus.Subscribe for `pattern`; `request_` must outlive the call.
  std::shared_ptr<Stream> Subscribe(const std::string& pattern,
                                    size_t max_buffered) {
    request_.clear_patterns();
    request_.add_patterns(pattern);
    // The server's headers come with its first frame: a PROGRESS frame soon.
    request_.mutable_progress_interval()->set_nanos(50'000'000);
    auto stream = std::make_shared<Stream>(max_buffered);
    std::shared_ptr<const Connection> conn = conn_;
    stream->Start([this, conn](grpc::ClientContext* ctx, Stream* r) {
      conn->bus().async()->Subscribe(ctx, &request_, r);
    });
    return stream;
  }

  TestServer server_;
  std::shared_ptr<Connection> conn_;
  v1::SubscribeRequest request_;
};

TEST_F(ReadStreamTest, FramesArriveInOrderThroughABufferSmallerThanTheBurst) {
  std::shared_ptr<Stream> stream = Subscribe("t", /*max_buffered=*/2);
  ASSERT_TRUE(stream->WaitForHeaders(absl::Now() + kWait));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Client> publisher,
                       Client::Connect(server_.address()));
  for (int i = 1; i <= 10; ++i) ASSERT_OK(publisher->Publish("t", i).status());
  int expected = 1;
  while (expected <= 10) {
    v1::BusMessage frame;
    ASSERT_EQ(stream->Wait(&frame, kWait), Stream::Next::kFrame);
    if (frame.kind() != v1::BusMessage::MESSAGE) continue;  // PROGRESS
    EXPECT_EQ(frame.topic(), "t");
    EXPECT_EQ(frame.value().int_value(), expected);
    ++expected;
  }
  // Not ended: Finish cancels the call.
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(ReadStreamTest, ARefusedCallEndsWithTheServersStatus) {
  std::shared_ptr<Stream> stream = Subscribe("orders.>.x", 4);
  v1::BusMessage frame;
  EXPECT_EQ(stream->Wait(&frame, kWait), Stream::Next::kEnded);
  EXPECT_FALSE(stream->HeadersReceived());
  const grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("orders.>.x"));
}

TEST_F(ReadStreamTest, ACancelFromAnotherThreadEndsTheWait) {
  std::shared_ptr<Stream> stream = Subscribe("t", 4);
  ASSERT_TRUE(stream->WaitForHeaders(absl::Now() + kWait));
  stream->Cancel();
  v1::BusMessage frame;
  Stream::Next next;
  do {
    next = stream->Wait(&frame, kWait);
  } while (next == Stream::Next::kFrame);
  EXPECT_EQ(next, Stream::Next::kEnded);
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

// The stream's ClientContext holds a reference to the channel. gRPC joins its
// callback threads when the last channel using them goes away, so if gRPC's
// OnDone held the last reference to the stream, dropping it there could
// destroy the channel on the thread being joined and abort the process.
TEST_F(ReadStreamTest, AfterFinishTheConsumerHoldsTheOnlyReference) {
  for (const char* pattern : {"orders.>.x", "t"}) {
    SCOPED_TRACE(pattern);
    std::shared_ptr<Stream> stream = Subscribe(pattern, 4);
    stream->Finish();
    EXPECT_EQ(stream.use_count(), 1);
  }
  // With the connection gone, the stream holds the last reference to the
  // channel; it goes here, on this thread.
  std::shared_ptr<Stream> stream = Subscribe("orders.>.x", 4);
  conn_.reset();
  v1::BusMessage frame;
  EXPECT_EQ(stream->Wait(&frame, kWait), Stream::Next::kEnded);
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  std::weak_ptr<Stream> weak = stream;
  stream.reset();
  EXPECT_TRUE(weak.expired());
}

}  // namespace
}  // namespace tshare::client::internal
