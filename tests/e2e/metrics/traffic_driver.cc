// tshare_traffic_driver: drives traffic through every tshared service for the
// end-to-end metrics test, with real gRPC clients.
//
// Usage: tshare_traffic_driver HOST:PORT
// Opens long-lived streams (a prefix Watch, a bus Subscribe, a Workers Watch
// and an attached client worker), then runs rounds of calls (Shares
// get/set/update/delete/list/txn/wait_for/session, Bus publish, Workers
// list/pause/resume, Admin stats/list_subscriptions) until its stdin reaches
// end of file. Prints "ready" after the first round. Exits 0 if every call
// ended as expected, 1 (naming the call) otherwise.
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "tshare/v1/admin.grpc.pb.h"
#include "tshare/v1/bus.grpc.pb.h"
#include "tshare/v1/shares.grpc.pb.h"
#include "tshare/v1/workers.grpc.pb.h"

namespace {

namespace v1 = ::tshare::v1;

std::atomic<bool> failed{false};

// Records a call whose status was not `want`.
void Expect(const char* call, const grpc::Status& status,
            grpc::StatusCode want = grpc::StatusCode::OK) {
  if (status.error_code() == want) return;
  std::fprintf(stderr, "driver: %s: got code %d (%s), want %d\n", call,
               static_cast<int>(status.error_code()),
               status.error_message().c_str(), static_cast<int>(want));
  failed = true;
}

// Unary calls get a deadline, so that a stuck server fails the driver.
std::unique_ptr<grpc::ClientContext> Context() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::seconds(10));
  return context;
}

class Driver final {
 public:
  explicit Driver(const std::shared_ptr<grpc::Channel>& channel)
      : shares_(v1::Shares::NewStub(channel)),
        bus_(v1::Bus::NewStub(channel)),
        workers_(v1::Workers::NewStub(channel)),
        admin_(v1::Admin::NewStub(channel)) {}

  // Opens the long-lived streams and a thread that drains each.
  void OpenStreams() {
    v1::WatchRequest watch;
    watch.set_prefix("e2e/");
    watch.set_prev_kv(true);
    watch_ = shares_->Watch(&watch_context_, watch);
    threads_.emplace_back([this] {
      v1::WatchEvent event;
      while (watch_->Read(&event)) ++watch_frames_;
    });

    v1::SubscribeRequest subscribe;
    subscribe.add_patterns("e2e.*");
    subscription_ = bus_->Subscribe(&subscribe_context_, subscribe);
    threads_.emplace_back([this] {
      v1::BusMessage message;
      while (subscription_->Read(&message)) ++bus_messages_;
    });

    worker_watch_ = workers_->Watch(&worker_watch_context_, {});
    threads_.emplace_back([this] {
      v1::WorkerEvent event;
      while (worker_watch_->Read(&event)) {
      }
    });

    attach_ = workers_->Attach(&attach_context_);
    v1::WorkerReport hello;
    hello.mutable_hello()->set_name("e2e-worker");
    if (!attach_->Write(hello)) {
      Expect("Workers.Attach hello",
             grpc::Status(grpc::StatusCode::UNKNOWN, "write failed"));
    }
    v1::WorkerCommand attached;
    if (!attach_->Read(&attached) ||
        attached.command() != v1::WorkerCommand::ATTACHED) {
      Expect("Workers.Attach", attach_->Finish());
    }
  }

  void Round(int n) {
    const std::string key = "e2e/counter";
    {
      v1::SetRequest request;
      request.set_key(key);
      request.mutable_value()->set_int_value(n);
      v1::SetResponse response;
      Expect("Shares.Set", shares_->Set(Context().get(), request, &response));
    }
    {
      v1::GetRequest request;
      request.set_key(key);
      v1::GetResponse response;
      Expect("Shares.Get", shares_->Get(Context().get(), request, &response));
      request.set_key("e2e/missing");
      Expect("Shares.Get missing",
             shares_->Get(Context().get(), request, &response),
             grpc::StatusCode::NOT_FOUND);
    }
    {
      v1::UpdateRequest request;
      request.set_key(key);
      request.mutable_add()->set_int_value(1);
      v1::UpdateResponse response;
      Expect("Shares.Update",
             shares_->Update(Context().get(), request, &response));
    }
    {
      v1::SetRequest set;
      set.set_key("e2e/tmp");
      set.mutable_value()->set_string_value("x");
      v1::SetResponse set_response;
      Expect("Shares.Set tmp",
             shares_->Set(Context().get(), set, &set_response));
      v1::DeleteRequest request;
      request.set_key("e2e/tmp");
      v1::DeleteResponse response;
      Expect("Shares.Delete",
             shares_->Delete(Context().get(), request, &response));
    }
    {
      v1::ListRequest request;
      request.set_prefix("e2e/");
      v1::ListResponse response;
      Expect("Shares.List", shares_->List(Context().get(), request, &response));
    }
    {
      v1::TxnRequest request;
      v1::TxnResponse response;
      Expect("Shares.Txn", shares_->Txn(Context().get(), request, &response));
    }
    {
      v1::WaitForRequest request;
      request.set_key(key);  // version > 0: answered at once
      v1::GetResponse response;
      Expect("Shares.WaitFor",
             shares_->WaitFor(Context().get(), request, &response));
    }
    {
      auto context = Context();
      auto session = shares_->Session(context.get());
      v1::SessionRequest request;
      v1::SessionOp* op = request.add_ops();
      op->set_id(1);
      op->mutable_get()->set_key(key);
      session->Write(request);
      session->WritesDone();
      v1::SessionResponse response;
      while (session->Read(&response)) {
      }
      Expect("Shares.Session", session->Finish());
    }
    {
      v1::PublishRequest request;
      request.set_topic("e2e.tick");
      request.mutable_value()->set_int_value(n);
      v1::PublishResponse response;
      Expect("Bus.Publish", bus_->Publish(Context().get(), request, &response));
    }
    {
      v1::ListWorkersResponse response;
      Expect("Workers.List", workers_->List(Context().get(), {}, &response));
      v1::WorkerRef ref;
      ref.set_name("history-compactor");
      v1::WorkerInfo info;
      Expect("Workers.Pause", workers_->Pause(Context().get(), ref, &info));
      Expect("Workers.Resume", workers_->Resume(Context().get(), ref, &info));
    }
    {
      v1::StatsResponse response;
      Expect("Admin.Stats", admin_->Stats(Context().get(), {}, &response));
      v1::ListSubscriptionsResponse list;
      Expect("Admin.ListSubscriptions",
             admin_->ListSubscriptions(Context().get(), {}, &list));
    }
  }

  // Ends the streams: the attached worker says goodbye, the others are
  // cancelled.
  void CloseStreams() {
    v1::WorkerReport goodbye;
    goodbye.mutable_goodbye();
    attach_->Write(goodbye);
    attach_->WritesDone();
    v1::WorkerCommand command;
    while (attach_->Read(&command)) {
    }
    Expect("Workers.Attach", attach_->Finish());

    watch_context_.TryCancel();
    subscribe_context_.TryCancel();
    worker_watch_context_.TryCancel();
    for (std::thread& t : threads_) t.join();
    Expect("Shares.Watch", watch_->Finish(), grpc::StatusCode::CANCELLED);
    Expect("Bus.Subscribe", subscription_->Finish(),
           grpc::StatusCode::CANCELLED);
    Expect("Workers.Watch", worker_watch_->Finish(),
           grpc::StatusCode::CANCELLED);
    std::printf("watch frames %d, bus messages %d\n", watch_frames_.load(),
                bus_messages_.load());
  }

 private:
  std::unique_ptr<v1::Shares::Stub> shares_;
  std::unique_ptr<v1::Bus::Stub> bus_;
  std::unique_ptr<v1::Workers::Stub> workers_;
  std::unique_ptr<v1::Admin::Stub> admin_;

  grpc::ClientContext watch_context_;
  std::unique_ptr<grpc::ClientReader<v1::WatchEvent>> watch_;
  grpc::ClientContext subscribe_context_;
  std::unique_ptr<grpc::ClientReader<v1::BusMessage>> subscription_;
  grpc::ClientContext worker_watch_context_;
  std::unique_ptr<grpc::ClientReader<v1::WorkerEvent>> worker_watch_;
  grpc::ClientContext attach_context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::WorkerReport, v1::WorkerCommand>>
      attach_;
  std::vector<std::thread> threads_;
  std::atomic<int> watch_frames_{0};
  std::atomic<int> bus_messages_{0};
};

// True once stdin is at end of file; waits at most `ms` for it.
bool StdinClosed(int ms) {
  pollfd fd{STDIN_FILENO, POLLIN, 0};
  if (poll(&fd, 1, ms) <= 0) return false;
  char buffer[256];
  return read(STDIN_FILENO, buffer, sizeof(buffer)) <= 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s HOST:PORT (runs until stdin closes)\n",
                 argv[0]);
    return 2;
  }
  Driver driver(
      grpc::CreateChannel(argv[1], grpc::InsecureChannelCredentials()));
  driver.OpenStreams();
  int round = 0;
  driver.Round(++round);
  std::printf("ready\n");
  std::fflush(stdout);
  while (!failed && !StdinClosed(100)) driver.Round(++round);
  driver.CloseStreams();
  std::printf("%d rounds\n", round);
  return failed ? 1 : 0;
}
