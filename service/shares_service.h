// tshare.v1.Shares over gRPC (callback API): thin handlers over Store and
// WatchHub.
//
// Unary calls validate, call the store and finish on the gRPC thread. Watch is
// a write reactor fed by its Watcher; WaitFor is a unary reactor finished by
// the store's waiter callback, its deadline (a grpc::Alarm) or the client's
// cancellation, whichever comes first; Session is a bidi reactor that runs ops
// in arrival order and batches their results. No reaction blocks, and no store
// or hub lock is held while calling into gRPC.
//
// Thread-safety: gRPC calls the handlers from its threads; BeginShutdown may be
// called from any thread.
//
//   Store store(options);
//   WatchHub hub(&store, options);
//   BusService bus(&message_bus, options);
//   SharesService shares(&store, &hub, &bus, options);
//   builder.RegisterService(&shares);
//   ...
//   // Streams end with UNAVAILABLE, new calls are refused:
//   shares.BeginShutdown();
//   server->Shutdown(deadline);
#ifndef TSHARE_SERVICE_SHARES_SERVICE_H_
#define TSHARE_SERVICE_SHARES_SERVICE_H_

#include <atomic>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "service/bus_service.h"
#include "service/options.h"
#include "service/store.h"
#include "service/watch_hub.h"
#include "tshare/v1/shares.grpc.pb.h"

namespace tshare::service {

class SharesService final : public tshare::v1::Shares::CallbackService {
 public:
  // `store`, `hub` and `bus` (which runs a Session's publish ops) are borrowed
  // and must outlive the service and every call it serves (shut the
  // grpc::Server down before destroying them).
  SharesService(Store* store, WatchHub* hub, BusService* bus,
                const ServerOptions& options);
  ~SharesService() override;

  SharesService(const SharesService&) = delete;
  SharesService& operator=(const SharesService&) = delete;
  SharesService(SharesService&&) = delete;
  SharesService& operator=(SharesService&&) = delete;

  // Every open Watch, WaitFor and Session call ends with UNAVAILABLE ("server
  // is shutting down") as soon as it has no message in flight; every new call
  // gets UNAVAILABLE. Does not wait. Idempotent.
  void BeginShutdown() ABSL_LOCKS_EXCLUDED(mu_);

  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* context,
                                const tshare::v1::GetRequest* request,
                                tshare::v1::GetResponse* response) override;
  grpc::ServerUnaryReactor* Set(grpc::CallbackServerContext* context,
                                const tshare::v1::SetRequest* request,
                                tshare::v1::SetResponse* response) override;
  grpc::ServerUnaryReactor* Update(
      grpc::CallbackServerContext* context,
      const tshare::v1::UpdateRequest* request,
      tshare::v1::UpdateResponse* response) override;
  grpc::ServerUnaryReactor* Delete(
      grpc::CallbackServerContext* context,
      const tshare::v1::DeleteRequest* request,
      tshare::v1::DeleteResponse* response) override;
  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* context,
                                 const tshare::v1::ListRequest* request,
                                 tshare::v1::ListResponse* response) override;
  grpc::ServerUnaryReactor* Txn(grpc::CallbackServerContext* context,
                                const tshare::v1::TxnRequest* request,
                                tshare::v1::TxnResponse* response) override;
  grpc::ServerWriteReactor<tshare::v1::WatchEvent>* Watch(
      grpc::CallbackServerContext* context,
      const tshare::v1::WatchRequest* request) override;
  grpc::ServerUnaryReactor* WaitFor(grpc::CallbackServerContext* context,
                                    const tshare::v1::WaitForRequest* request,
                                    tshare::v1::GetResponse* response) override;
  grpc::ServerBidiReactor<tshare::v1::SessionRequest,
                          tshare::v1::SessionResponse>*
  Session(grpc::CallbackServerContext* context) override;

 private:
  class WatchReactor;
  class WaitForReactor;
  class SessionReactor;

  // Something BeginShutdown must end.
  class Stoppable {
   public:
    virtual ~Stoppable() = default;
    // Must not block and must not call back into the service.
    virtual void Stop() = 0;
  };
  // False (and the caller refuses the call) once shutting down.
  bool Track(Stoppable* call) ABSL_LOCKS_EXCLUDED(mu_);
  void Untrack(Stoppable* call) ABSL_LOCKS_EXCLUDED(mu_);
  bool shutting_down() const {
    return shutting_down_.load(std::memory_order_acquire);
  }

  Store* const store_;
  WatchHub* const hub_;
  BusService* const bus_;
  const ServerOptions options_;

  std::atomic<bool> shutting_down_{false};
  absl::Mutex mu_;
  absl::flat_hash_set<Stoppable*> calls_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tshare::service

#endif  // TSHARE_SERVICE_SHARES_SERVICE_H_
