// cq_server: the smallest fast server of tshare.v1.Shares/Get, on gRPC's
// asynchronous completion-queue API, as a baseline for tshared's callback-API
// server: same wire API, same keys and values (bench/bench_keys.h), an
// in-memory map read under a reader lock, and
// --threads threads each polling its own completion queue. Only Get is served;
// it preloads
// --keys keys itself, so tshare-bench runs `get --preload=false` against it.
//
//   cq_server --listen=127.0.0.1:0 --threads=2 --keys=10000 --value_bytes=64
//   -> prints "cq_server listening on 127.0.0.1:PORT"; SIGTERM or SIGINT stop
//   it (exit 0).
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/synchronization/mutex.h"
#include "bench/bench_keys.h"
#include "grpcpp/grpcpp.h"
#include "tshare/v1/shares.grpc.pb.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:0",
          "HOST:PORT; port 0 picks a free port");
ABSL_FLAG(int32_t, threads, 0,
          "Completion queues, one thread each; 0 = number of CPUs");
ABSL_FLAG(int32_t, calls_per_thread, 64,
          "Get calls each queue has requested in advance");
ABSL_FLAG(uint64_t, keys, 10000, "Keys preloaded: keys 0..keys-1");
ABSL_FLAG(int32_t, key_bytes, 16, "Key length, as tshare-bench's --key_bytes");
ABSL_FLAG(int32_t, value_bytes, 64,
          "Value length, as tshare-bench's --value_bytes");
ABSL_FLAG(std::string, key_prefix,
          "key:", "Key prefix, as tshare-bench's --key_prefix");

namespace tshare::bench {
namespace {

class Store final {
 public:
  Store(uint64_t keys, const std::string& prefix, size_t key_bytes,
        size_t value_bytes) {
    absl::MutexLock l(&mu_);
    map_.reserve(keys);
    for (uint64_t i = 0; i < keys; ++i) {
      tshare::v1::Value v;
      v.set_bytes_value(std::string(value_bytes, 'v'));
      map_.emplace(KeyName(prefix, i, key_bytes), std::move(v));
    }
  }
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Fills `response` as tshared does; false if the key is absent.
  bool Get(const std::string& key, tshare::v1::GetResponse* response) const
      ABSL_LOCKS_EXCLUDED(mu_) {
    absl::ReaderMutexLock l(&mu_);
    auto it = map_.find(key);
    if (it == map_.end()) return false;
    *response->mutable_value() = it->second;
    response->set_version(1);
    response->set_revision(static_cast<uint64_t>(map_.size()));
    response->set_create_revision(1);
    response->set_mod_revision(1);
    response->set_store_id("cq-server");
    return true;
  }

 private:
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, tshare::v1::Value> map_ ABSL_GUARDED_BY(mu_);
};

// One Get call's life: requested, answered, deleted. A requested call that is
// answered first requests its successor, so each queue always has calls
// waiting.
class GetCall final {
 public:
  GetCall(tshare::v1::Shares::AsyncService* service,
          grpc::ServerCompletionQueue* cq, const Store* store)
      : service_(service), cq_(cq), store_(store), responder_(&context_) {
    service_->RequestGet(&context_, &request_, &responder_, cq_, cq_, this);
  }
  GetCall(const GetCall&) = delete;
  GetCall& operator=(const GetCall&) = delete;

  void Proceed(bool ok) {
    if (answered_ || !ok) {
      delete this;
      return;
    }
    new GetCall(service_, cq_, store_);
    answered_ = true;
    if (store_->Get(request_.key(), &response_)) {
      responder_.Finish(response_, grpc::Status::OK, this);
    } else {
      responder_.FinishWithError(
          grpc::Status(grpc::StatusCode::NOT_FOUND, "key not found"), this);
    }
  }

 private:
  tshare::v1::Shares::AsyncService* const service_;
  grpc::ServerCompletionQueue* const cq_;
  const Store* const store_;
  grpc::ServerContext context_;
  tshare::v1::GetRequest request_;
  tshare::v1::GetResponse response_;
  grpc::ServerAsyncResponseWriter<tshare::v1::GetResponse> responder_;
  bool answered_ = false;
};

int Main() {
  int threads = absl::GetFlag(FLAGS_threads);
  if (threads <= 0)
    threads =
        static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const Store store(absl::GetFlag(FLAGS_keys), absl::GetFlag(FLAGS_key_prefix),
                    static_cast<size_t>(absl::GetFlag(FLAGS_key_bytes)),
                    static_cast<size_t>(absl::GetFlag(FLAGS_value_bytes)));

  tshare::v1::Shares::AsyncService service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(absl::GetFlag(FLAGS_listen),
                           grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> cqs;
  for (int i = 0; i < threads; ++i) cqs.push_back(builder.AddCompletionQueue());
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "cq_server: cannot listen on %s\n",
                 absl::GetFlag(FLAGS_listen).c_str());
    return 1;
  }
  const std::string listen = absl::GetFlag(FLAGS_listen);
  std::printf("cq_server listening on %s:%d (%d threads)\n",
              listen.substr(0, listen.rfind(':')).c_str(), port, threads);
  std::fflush(stdout);

  std::vector<std::thread> workers;
  for (auto& cq : cqs) {
    for (int i = 0; i < absl::GetFlag(FLAGS_calls_per_thread); ++i) {
      new GetCall(&service, cq.get(), &store);
    }
    workers.emplace_back([q = cq.get()] {
      void* tag = nullptr;
      bool ok = false;
      while (q->Next(&tag, &ok)) static_cast<GetCall*>(tag)->Proceed(ok);
    });
  }

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  for (auto& cq : cqs) cq->Shutdown();
  for (auto& t : workers) t.join();
  return 0;
}

}  // namespace
}  // namespace tshare::bench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "a minimal completion-queue gRPC server of tshare.v1.Shares/Get "
      "(benchmark "
      "baseline).\nUsage: cq_server [--listen=HOST:PORT] [--threads=N] "
      "[--keys=N]");
  absl::ParseCommandLine(argc, argv);
#ifdef NDEBUG
  // As tshared: Debian's Abseil is built without NDEBUG, so absl::Mutex (gRPC's
  // too) would run its deadlock detector on every lock.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
  // Blocked in every thread (they inherit the mask); main takes them with
  // sigwait.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  return tshare::bench::Main();
}
