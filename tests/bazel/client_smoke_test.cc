// The Bazel build's check that //client:client and //proto:proto link and work
// against the system's gRPC: a minimal tshare.v1.Shares service (Get and Set on
// a map, in this process, on 127.0.0.1:0) answers a real
// tshare::client::Client.
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "tests/status_matchers.h"
#include "tshare/v1/shares.grpc.pb.h"

namespace {

using ::tshare::testing::StatusIs;

// Keeps values and versions; revision grows by one per Set.
class MapShares final : public tshare::v1::Shares::Service {
 public:
  grpc::Status Get(grpc::ServerContext*, const tshare::v1::GetRequest* request,
                   tshare::v1::GetResponse* response) override {
    absl::MutexLock lock(&mu_);
    auto it = values_.find(request->key());
    if (it == values_.end()) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND,
                          "no key " + request->key());
    }
    *response->mutable_value() = it->second.value;
    response->set_version(it->second.version);
    response->set_revision(revision_);
    response->set_mod_revision(it->second.mod_revision);
    response->set_store_id("smoke");
    return grpc::Status::OK;
  }

  grpc::Status Set(grpc::ServerContext*, const tshare::v1::SetRequest* request,
                   tshare::v1::SetResponse* response) override {
    absl::MutexLock lock(&mu_);
    Entry& entry = values_[request->key()];
    response->set_created(entry.version == 0);
    entry.value = request->value();
    ++entry.version;
    entry.mod_revision = ++revision_;
    response->set_version(entry.version);
    response->set_revision(revision_);
    response->set_store_id("smoke");
    return grpc::Status::OK;
  }

 private:
  struct Entry {
    tshare::v1::Value value;
    uint64_t version = 0;
    uint64_t mod_revision = 0;
  };

  absl::Mutex mu_;
  std::map<std::string, Entry> values_ ABSL_GUARDED_BY(mu_);
  uint64_t revision_ ABSL_GUARDED_BY(mu_) = 0;
};

TEST(BazelClientSmokeTest, ClientSetsAndGetsThroughGeneratedStubs) {
  MapShares service;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  ASSERT_GT(port, 0);

  tshare::client::ClientOptions options;
  options.connect_timeout = absl::Seconds(10);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<tshare::client::Client> client,
                       tshare::client::Client::Connect(
                           "127.0.0.1:" + std::to_string(port), options));

  EXPECT_THAT(client->Get<int64_t>("visits").status(),
              StatusIs(absl::StatusCode::kNotFound));

  ASSERT_OK_AND_ASSIGN(tshare::client::WriteResult first,
                       client->Set("visits", 41));
  EXPECT_TRUE(first.created);
  EXPECT_EQ(first.version, 1u);
  ASSERT_OK_AND_ASSIGN(tshare::client::WriteResult second,
                       client->Set("visits", 42));
  EXPECT_FALSE(second.created);
  EXPECT_EQ(second.revision, 2u);

  ASSERT_OK_AND_ASSIGN(tshare::client::Versioned<int64_t> visits,
                       client->GetVersioned<int64_t>("visits"));
  EXPECT_EQ(visits.value, 42);
  EXPECT_EQ(visits.version, 2u);
  EXPECT_EQ(visits.store_id, "smoke");
  EXPECT_THAT(client->Get<std::string>("visits").status(),
              StatusIs(absl::StatusCode::kFailedPrecondition));

  server->Shutdown();
}

}  // namespace
