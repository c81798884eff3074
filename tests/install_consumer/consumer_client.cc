// Built against the installed package only: <tshare/client/...> headers,
// tshare::client. Run by run.sh against the installed tshared at argv[1]:
// sets, adds and reads a share, and checks two error paths, which proves that
// the headers, the library and its gRPC dependencies link and talk to a real
// server. Leaves "visits" at 42 for run.sh's tsharectl check.
#include <tshare/client/client.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace {

int Fail(const char* what, const absl::Status& status) {
  std::fprintf(stderr, "consumer_client: %s: %s\n", what,
               status.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  namespace tc = tshare::client;
  if (argc != 2) {
    std::fprintf(stderr, "usage: consumer_client HOST:PORT\n");
    return 2;
  }
  absl::StatusOr<std::unique_ptr<tc::Client>> client =
      tc::Client::Connect(argv[1], {.default_deadline = absl::Seconds(10)});
  if (!client.ok()) return Fail("Connect", client.status());
  tc::Client& c = **client;

  if (auto set = c.Set("visits", 40); !set.ok())
    return Fail("Set", set.status());
  auto added = c.Add("visits", 2);
  if (!added.ok()) return Fail("Add", added.status());
  absl::StatusOr<int64_t> visits = c.Get<int64_t>("visits");
  if (!visits.ok()) return Fail("Get", visits.status());
  if (*visits != 42) {
    std::fprintf(stderr, "consumer_client: visits is %lld, want 42\n",
                 static_cast<long long>(*visits));
    return 1;
  }
  // Error paths keep their codes across the package boundary.
  const absl::Status missing = c.Get<int64_t>("no-such-key").status();
  if (missing.code() != absl::StatusCode::kNotFound) {
    return Fail("Get of an absent key (want NOT_FOUND)", missing);
  }
  const absl::Status kind = c.Get<std::string>("visits").status();
  if (kind.code() != absl::StatusCode::kFailedPrecondition) {
    return Fail("Get<std::string> of an int (want FAILED_PRECONDITION)", kind);
  }
  std::printf("consumer_client: ok (visits = %lld)\n",
              static_cast<long long>(*visits));
  return 0;
}
