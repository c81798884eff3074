// Every program in examples/ run as a process against a real tshared
// (core_basics needs none), with its output and exit code checked; the HTTP
// visit counter gets real HTTP requests.
#include <signal.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/child_process.h"

namespace tshare::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

using Json = nlohmann::json;

constexpr absl::Duration kPatience = absl::Seconds(60);

class ExamplesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<TsharedProcess>> tshared =
        TsharedProcess::Start(TSHARE_TSHARED_PATH);
    ASSERT_TRUE(tshared.ok()) << tshared.status();
    tshared_ = *std::move(tshared);
  }

  // An example's command line: its binary, --server, then `flags`.
  std::vector<std::string> Example(const std::string& path,
                                   std::vector<std::string> flags) {
    std::vector<std::string> argv = {path, "--server", tshared_->address()};
    argv.insert(argv.end(), flags.begin(), flags.end());
    return argv;
  }

  CommandResult Ctl(std::vector<std::string> args) const {
    std::vector<std::string> argv = {TSHARE_TSHARECTL_PATH, "--server",
                                     tshared_->address()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(std::move(argv), kPatience);
  }

  // The --json output of a tsharectl command that must succeed.
  Json CtlJson(std::vector<std::string> args) const {
    args.insert(args.begin(), "--json");
    CommandResult r = Ctl(std::move(args));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    Json j = Json::parse(r.out, nullptr, /*allow_exceptions=*/false);
    EXPECT_FALSE(j.is_discarded()) << r.out;
    return j;
  }

  // Polls `tsharectl --json workers list NAME` until the worker is in `state`
  // with no pause or stop pending.
  bool WaitForWorkerState(const std::string& name,
                          const std::string& state) const {
    const absl::Time deadline = absl::Now() + kPatience;
    while (absl::Now() < deadline) {
      CommandResult r = Ctl({"--json", "workers", "list", name});
      Json w = Json::parse(r.out, nullptr, /*allow_exceptions=*/false);
      if (r.exit_code == 0 && !w.is_discarded() && w["state"] == state &&
          w["pause_requested"] == false && w["stop_requested"] == false) {
        return true;
      }
    }
    return false;
  }

  std::unique_ptr<TsharedProcess> tshared_;
};

TEST_F(ExamplesTest, CounterLosesNoIncrement) {
  CommandResult r = RunCommand(
      Example(TSHARE_EXAMPLE_COUNTER_PATH, {"--threads=6", "--increments=100"}),
      kPatience);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("thread 0 completed (Add)"));
  EXPECT_THAT(r.out, HasSubstr("thread 5 completed (Update)"));
  EXPECT_THAT(r.out, HasSubstr("final counter: 600 (expected 600)\n"));
  EXPECT_EQ(Ctl({"get", "examples/counter"}).out, "600\n");
}

TEST_F(ExamplesTest, ProducerConsumerGetsEveryMessageInOrder) {
  CommandResult r = RunCommand(
      Example(TSHARE_EXAMPLE_PRODUCER_CONSUMER_PATH, {"--messages=25"}),
      kPatience);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("processed: job 0 \"Message 0\""));
  EXPECT_THAT(r.out, HasSubstr("processed: job 24 \"Message 24\""));
  EXPECT_THAT(r.out, HasSubstr("producer: published 25 jobs"));
  EXPECT_THAT(r.out, HasSubstr("consumer: 25 of 25 jobs, in order\n"));
}

TEST_F(ExamplesTest, WorkerControlIsPausedAndResumedByTsharectl) {
  absl::StatusOr<std::unique_ptr<ChildProcess>> worker =
      ChildProcess::Start(Example(TSHARE_EXAMPLE_WORKER_CONTROL_PATH,
                                  {"--name=indexer", "--interval=10ms"}));
  ASSERT_TRUE(worker.ok()) << worker.status();
  ASSERT_TRUE((*worker)->ReadLineContaining("step 2", kPatience).has_value())
      << (*worker)->err();
  ASSERT_TRUE(WaitForWorkerState("indexer", "RUNNING"));

  // Paused: once the server shows PAUSED with no pause pending, the worker
  // holds still at its checkpoint, so its step count stops.
  CommandResult pause = Ctl({"workers", "pause", "indexer"});
  ASSERT_EQ(pause.exit_code, 0) << pause.err;
  ASSERT_TRUE(WaitForWorkerState("indexer", "PAUSED"));
  const uint64_t version =
      CtlJson({"get", "examples/indexer/steps"})["version"].get<uint64_t>();
  // No step for a while: a wait for the next version runs into its deadline.
  CommandResult still =
      Ctl({"wait", "examples/indexer/steps", "--after-version",
           absl::StrCat(version), "--timeout", "300ms"});
  EXPECT_EQ(still.exit_code, 3);
  EXPECT_THAT(still.err, HasSubstr("DEADLINE_EXCEEDED"));

  // Resumed: the steps go on.
  ASSERT_EQ(Ctl({"workers", "resume", "indexer"}).exit_code, 0);
  CommandResult next = Ctl({"wait", "examples/indexer/steps", "--after-version",
                            absl::StrCat(version), "--timeout", "30s"});
  EXPECT_EQ(next.exit_code, 0) << next.err;
  int64_t after = 0;
  ASSERT_TRUE(
      absl::SimpleAtoi(absl::StripTrailingAsciiWhitespace(next.out), &after));
  EXPECT_GT(after, 0);
  EXPECT_TRUE(WaitForWorkerState("indexer", "RUNNING"));

  // Stopped: the program ends with exit code 0.
  ASSERT_EQ(Ctl({"workers", "stop", "indexer"}).exit_code, 0);
  EXPECT_EQ((*worker)->Wait(kPatience), std::optional<int>(0))
      << (*worker)->err();
  EXPECT_THAT((*worker)->out(),
              HasSubstr("worker indexer ended (stopped) after "));
}

TEST_F(ExamplesTest, WorkerControlEndsByItselfAfterSteps) {
  CommandResult r =
      RunCommand(Example(TSHARE_EXAMPLE_WORKER_CONTROL_PATH,
                         {"--name=short", "--steps=3", "--interval=1ms"}),
                 kPatience);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("step 3\n"));
  EXPECT_THAT(r.out, HasSubstr("worker short ended (stopped) after 3 steps"));
}

// The first line of an http_visit_counter: "listening on http://127.0.0.1:PORT/
// ...".
int PortOf(ChildProcess& server) {
  std::optional<std::string> line =
      server.ReadLineContaining("listening on", kPatience);
  EXPECT_TRUE(line.has_value()) << server.err();
  if (!line.has_value()) return -1;
  const std::string marker = "http://127.0.0.1:";
  const size_t at = line->find(marker);
  int port = -1;
  if (at == std::string::npos ||
      !absl::SimpleAtoi(
          line->substr(at + marker.size(), line->find('/', at + marker.size()) -
                                               at - marker.size()),
          &port)) {
    ADD_FAILURE() << "no port in: " << *line;
  }
  return port;
}

TEST_F(ExamplesTest, HttpVisitCounterCountsPagesButNotStaticResources) {
  absl::StatusOr<std::unique_ptr<ChildProcess>> first = ChildProcess::Start(
      Example(TSHARE_EXAMPLE_HTTP_VISIT_COUNTER_PATH, {"--port=0"}));
  ASSERT_TRUE(first.ok()) << first.status();
  const int port = PortOf(**first);
  ASSERT_GT(port, 0);
  httplib::Client http("127.0.0.1", port);

  auto get = [](httplib::Client& c, const std::string& path) {
    httplib::Result r = c.Get(path.c_str());
    EXPECT_TRUE(r) << path << ": " << httplib::to_string(r.error());
    return r ? std::make_pair(r->status, r->body)
             : std::make_pair(-1, std::string());
  };
  auto [status1, body1] = get(http, "/");
  EXPECT_EQ(status1, 200);
  EXPECT_THAT(body1, HasSubstr("Visit #1"));
  auto [status2, body2] = get(http, "/page/about");
  EXPECT_EQ(status2, 200);
  EXPECT_THAT(body2, HasSubstr("Visit #2"));
  for (const char* resource :
       {"/favicon.ico", "/static/site.css", "/app.js", "/logo.png"}) {
    EXPECT_EQ(get(http, resource).first, 200) << resource;
  }
  EXPECT_EQ(get(http, "/nowhere").first, 404);
  EXPECT_EQ(get(http, "/stats").second, "{\"visits\":2}\n");
  EXPECT_EQ(Ctl({"get", "examples/http/visits"}).out, "2\n");

  // A second server shares the count through tshared.
  absl::StatusOr<std::unique_ptr<ChildProcess>> second = ChildProcess::Start(
      Example(TSHARE_EXAMPLE_HTTP_VISIT_COUNTER_PATH, {"--port=0"}));
  ASSERT_TRUE(second.ok()) << second.status();
  const int port2 = PortOf(**second);
  ASSERT_GT(port2, 0);
  httplib::Client http2("127.0.0.1", port2);
  EXPECT_THAT(get(http2, "/page/x").second, HasSubstr("Visit #3"));
  EXPECT_EQ(get(http, "/stats").second, "{\"visits\":3}\n");

  // The monitor saw the count change (it prints each new count).
  EXPECT_TRUE((*first)->ReadLineContaining("visits: 3", kPatience).has_value());

  (*first)->Signal(SIGTERM);
  (*second)->Signal(SIGINT);
  EXPECT_EQ((*first)->Wait(kPatience), std::optional<int>(0))
      << (*first)->err();
  EXPECT_EQ((*second)->Wait(kPatience), std::optional<int>(0))
      << (*second)->err();
  EXPECT_THAT((*first)->out(), HasSubstr("stopped; 3 visits"));
}

TEST_F(ExamplesTest, SocketClientSharesItsStateThroughTheServer) {
  CommandResult r = RunCommand(
      Example(TSHARE_EXAMPLE_SOCKET_CLIENT_PATH, {"--messages=5"}), kPatience);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith("at revision "));
  EXPECT_THAT(r.out, HasSubstr("  connected = false\n"));
  EXPECT_THAT(r.out, HasSubstr("  connected = true\n"));
  EXPECT_THAT(r.out, HasSubstr("  sent = 5\n"));
  EXPECT_THAT(r.out, HasSubstr("  received = 5\n"));
  EXPECT_THAT(r.out, HasSubstr("Status: Connected=true, Sent=5, Received=5\n"));
  EXPECT_EQ(Ctl({"get", "socket/client-1/received"}).out, "5\n");
  EXPECT_EQ(Ctl({"get", "socket/client-1/connected"}).out, "true\n");
}

TEST_F(ExamplesTest, SocketClientReportsAPeerThatIsDown) {
  // A port nobody listens on: tshared's own port is taken by gRPC, so use a
  // closed one by asking for port 1 (privileged, never an echo server here).
  CommandResult r =
      RunCommand(Example(TSHARE_EXAMPLE_SOCKET_CLIENT_PATH,
                         {"--peer=127.0.0.1:1", "--attempts=2", "--id=down"}),
                 kPatience);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err,
              HasSubstr("no connection to 127.0.0.1:1 after 2 attempts"));
  EXPECT_THAT(Ctl({"get", "socket/down/last_error"}).out,
              StartsWith("attempt 2: connect to"));
}

TEST(CoreBasicsExampleTest, EverySectionBehavesAsPromised) {
  CommandResult r = RunCommand({TSHARE_EXAMPLE_CORE_BASICS_PATH}, kPatience);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(
      r.out,
      HasSubstr("1. share: counter=42, message=World, is_running=false\n"));
  EXPECT_THAT(r.out,
              HasSubstr("2. share: game over at version 11: "
                        "{\"game_over\":true,\"level\":6,\"score\":5500}\n"));
  EXPECT_THAT(r.out,
              HasSubstr("2. share: loaded from JSON: score 5500, level 6, "
                        "version 1\n"));
  EXPECT_THAT(r.out,
              HasSubstr("3. simple share: 6 log lines from 2 threads\n"));
  EXPECT_THAT(r.out, HasSubstr("4. atomic share: 500 of 500 increments; "
                               "Counter{value 500, operations 500}\n"));
  EXPECT_THAT(
      r.out,
      HasSubstr("5. thread pool: ran by priority: critical high normal low\n"));
  EXPECT_THAT(
      r.out,
      HasSubstr("5. thread pool: future: answer 42; 6 tasks completed\n"));
  EXPECT_THAT(
      r.out,
      HasSubstr("6. message bus: orders.* got 10 orders in order; orders.> got "
                "11\n"));
  EXPECT_THAT(r.out,
              HasSubstr("7. workers: started task_executor, task_generator\n"));
  EXPECT_THAT(
      r.out, HasSubstr("7. workers: generator paused; the executor caught up"));
  EXPECT_THAT(r.out, HasSubstr("7. workers: generator resumed and went on\n"));
  EXPECT_THAT(r.out, HasSubstr("7. workers: 2 workers stopped\n"));
  EXPECT_THAT(r.out, HasSubstr("all examples behaved as promised\n"));
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("UNEXPECTED")));
}

}  // namespace
}  // namespace tshare::testing
