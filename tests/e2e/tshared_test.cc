// The real tshared binary: its start-up line, a clean exit on SIGTERM/SIGINT
// that ends open streams with UNAVAILABLE, a one-line error for a port in use,
// and --help.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "tshare/v1/bus.grpc.pb.h"
#include "tshare/v1/shares.grpc.pb.h"
#include "tshare/v1/workers.grpc.pb.h"

extern char** environ;

namespace tshare {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;

// One tshared process with its stdout and stderr on pipes.
class Tshared {
 public:
  explicit Tshared(const std::vector<std::string>& args) {
    int out[2];
    int err[2];
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
      ADD_FAILURE() << "pipe2: " << errno;
      return;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    std::vector<std::string> argv_strings = {TSHARE_TSHARED_PATH};
    argv_strings.insert(argv_strings.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& s : argv_strings) argv.push_back(s.data());
    argv.push_back(nullptr);
    const int rc = posix_spawn(&pid_, TSHARE_TSHARED_PATH, &actions, &attr,
                               argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    close(out[1]);
    close(err[1]);
    stdout_ = out[0];
    stderr_ = err[0];
    if (rc != 0) {
      ADD_FAILURE() << "posix_spawn " << TSHARE_TSHARED_PATH << ": " << rc;
      pid_ = -1;
      return;
    }
    waiter_ = std::thread([this] {
      int status = 0;
      while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
      status_ = status;
      exited_.Notify();
    });
  }

  ~Tshared() {
    if (pid_ > 0 && !exited_.HasBeenNotified()) kill(pid_, SIGKILL);
    if (waiter_.joinable()) waiter_.join();
    if (stdout_ >= 0) close(stdout_);
    if (stderr_ >= 0) close(stderr_);
  }

  // One line of stdout (without the newline); empty at end of file or after
  // `timeout`.
  std::string ReadLine(absl::Duration timeout = absl::Seconds(30)) {
    std::string line;
    const absl::Time deadline = absl::Now() + timeout;
    while (true) {
      pollfd p{stdout_, POLLIN, 0};
      const int wait_ms =
          static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
      if (wait_ms <= 0 || poll(&p, 1, wait_ms) <= 0) return line;
      char c;
      if (read(stdout_, &c, 1) != 1 || c == '\n') return line;
      line.push_back(c);
    }
  }

  enum Stream { kStdout, kStderr };
  // Everything on the stream until the process closes it.
  std::string ReadAll(Stream stream) {
    std::string text;
    char buffer[4096];
    ssize_t n;
    while ((n = read(stream == kStdout ? stdout_ : stderr_, buffer,
                     sizeof(buffer))) > 0) {
      text.append(buffer, n);
    }
    return text;
  }

  void Signal(int signal) { kill(pid_, signal); }

  // The exit code once the process has exited within `timeout`; nullopt if it
  // has not, or if it was killed by a signal.
  std::optional<int> WaitExit(absl::Duration timeout) {
    if (!exited_.WaitForNotificationWithTimeout(timeout)) return std::nullopt;
    if (!WIFEXITED(status_)) return std::nullopt;
    return WEXITSTATUS(status_);
  }

 private:
  pid_t pid_ = -1;
  int stdout_ = -1;
  int stderr_ = -1;
  std::thread waiter_;
  absl::Notification exited_;
  int status_ = 0;  // written before exited_ is notified
};

// "tshared listening on 127.0.0.1:45678 (store_id 0123...)" →
// "127.0.0.1:45678".
std::string AddressFrom(const std::string& line) {
  EXPECT_THAT(
      line,
      MatchesRegex("tshared listening on 127\\.0\\.0\\.1:[0-9]+ \\(store_id "
                   "[0-9a-f]+\\)"));
  std::vector<std::string> words = absl::StrSplit(line, ' ');
  return words.size() > 3 ? words[3] : "";
}

void StopsCleanlyOn(int signal) {
  Tshared tshared({"--listen=127.0.0.1:0", "--metrics_listen="});
  const std::string address = AddressFrom(tshared.ReadLine());
  ASSERT_FALSE(address.empty());
  auto channel =
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials());

  // The server works...
  auto shares = v1::Shares::NewStub(channel);
  v1::SetRequest set;
  set.set_key("visits");
  set.mutable_value()->set_int_value(1);
  v1::SetResponse set_response;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(shares->Set(&context, set, &set_response).ok());
  }
  EXPECT_EQ(set_response.version(), 1u);

  // ...and has open streams when the signal comes.
  auto bus = v1::Bus::NewStub(channel);
  v1::SubscribeRequest subscribe;
  subscribe.add_patterns("orders.*");
  subscribe.mutable_progress_interval()->set_nanos(20'000'000);
  grpc::ClientContext subscribe_context;
  auto subscription = bus->Subscribe(&subscribe_context, subscribe);
  v1::BusMessage message;
  ASSERT_TRUE(subscription->Read(&message));
  auto workers = v1::Workers::NewStub(channel);
  grpc::ClientContext watch_context;
  auto watch = workers->Watch(&watch_context, v1::WatchWorkersRequest());
  v1::WorkerEvent event;
  ASSERT_TRUE(watch->Read(&event));

  tshared.Signal(signal);
  while (subscription->Read(&message)) {
  }
  grpc::Status status = subscription->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << status.error_message();
  while (watch->Read(&event)) {
  }
  status = watch->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << status.error_message();
  // The contract: exit 0 within 5 s of the signal.
  EXPECT_EQ(tshared.WaitExit(absl::Seconds(5)), std::optional<int>(0));
  EXPECT_THAT(tshared.ReadLine(), HasSubstr("shutting down"));
}

TEST(TsharedTest, SigtermEndsStreamsWithUnavailableAndExitsZero) {
  StopsCleanlyOn(SIGTERM);
}

TEST(TsharedTest, SigintEndsStreamsWithUnavailableAndExitsZero) {
  StopsCleanlyOn(SIGINT);
}

TEST(TsharedTest, SecondServerOnTheSamePortExitsOneWithOneLineError) {
  Tshared first({"--listen=127.0.0.1:0", "--metrics_listen="});
  const std::string address = AddressFrom(first.ReadLine());
  ASSERT_FALSE(address.empty());

  Tshared second({absl::StrCat("--listen=", address), "--metrics_listen="});
  EXPECT_EQ(second.WaitExit(absl::Seconds(30)), std::optional<int>(1));
  EXPECT_EQ(second.ReadAll(Tshared::kStderr),
            absl::StrCat("tshared: cannot listen on ", address,
                         ": address in use; pass --listen=HOST:PORT\n"));
  EXPECT_EQ(second.ReadLine(), "");  // it never said it was listening

  first.Signal(SIGTERM);
  EXPECT_EQ(first.WaitExit(absl::Seconds(5)), std::optional<int>(0));
}

TEST(TsharedTest, BadFlagValueIsAOneLineError) {
  Tshared tshared({"--pool_threads=-1", "--metrics_listen="});
  EXPECT_EQ(tshared.WaitExit(absl::Seconds(30)), std::optional<int>(1));
  const std::string err = tshared.ReadAll(Tshared::kStderr);
  EXPECT_THAT(err, MatchesRegex("tshared: --pool_threads=-1 [^\n]*\n"));
}

TEST(TsharedTest, HelpListsTheFlagsWithTheirDefaults) {
  Tshared tshared({"--help"});
  const std::string help = tshared.ReadAll(Tshared::kStdout);
  EXPECT_EQ(tshared.WaitExit(absl::Seconds(30)), std::optional<int>(0));
  for (const char* flag :
       {"--listen", "--metrics_listen", "--max_key_bytes", "--max_value_bytes",
        "--max_txn_ops", "--history", "--compact_interval",
        "--subscription_queue", "--pool_threads", "--shutdown_grace",
        "--max_topic_bytes", "--max_subscriptions_per_stream"}) {
    EXPECT_THAT(help, HasSubstr(flag));
  }
  EXPECT_THAT(help, HasSubstr("default: \"127.0.0.1:7420\""));
  EXPECT_THAT(help, HasSubstr("default: 4096"));
}

}  // namespace
}  // namespace tshare
