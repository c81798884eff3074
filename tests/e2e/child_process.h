// Child processes for end-to-end tests: run a binary with its stdout and stderr
// on pipes, read its output line by line with deadlines, signal it, wait for
// its exit code; and TsharedProcess, a real tshared on 127.0.0.1 with a port
// the system picked.
//
// Thread-safety: a ChildProcess is used by one test thread. Process creation
// uses posix_spawn, which is safe in a process with other threads.
#ifndef TSHARE_TESTS_E2E_CHILD_PROCESS_H_
#define TSHARE_TESTS_E2E_CHILD_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace tshare::testing {

// The outcome of a command run to its end.
struct CommandResult {
  // The exit code; -1 if the process was killed by a signal or ran past its
  // deadline.
  int exit_code = -1;
  std::string out;
  std::string err;
};

// One running child process.
//
//   absl::StatusOr<std::unique_ptr<ChildProcess>> p =
//       ChildProcess::Start({"/bin/echo", "hi"});
//   std::optional<std::string> line = (*p)->ReadLine(absl::Seconds(5)); // hi
//   std::optional<int> code = (*p)->Wait(absl::Seconds(5));             // 0
class ChildProcess final {
 public:
  // Starts argv[0] (a path) with argv; `env` entries ("NAME=value") are added
  // to this process's environment (replacing a variable of the same name).
  // stdin is `stdin_text` (written by a thread of its own); stdout and stderr
  // are pipes.
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Start(
      std::vector<std::string> argv, std::vector<std::string> env = {},
      std::string stdin_text = "");
  // Kills the process (SIGKILL) if it still runs, and reaps it.
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // The next line of stdout (without '\n'); nullopt at the end of stdout or
  // once `timeout` passes. stderr is read meanwhile, so the child never blocks
  // on a full pipe.
  std::optional<std::string> ReadLine(absl::Duration timeout);
  // Reads lines until one contains `needle`, which it returns; nullopt as
  // ReadLine.
  std::optional<std::string> ReadLineContaining(absl::string_view needle,
                                                absl::Duration timeout);

  void Signal(int signal_number) const;
  // Reads the rest of stdout and stderr and waits for the exit; returns the
  // exit code, or nullopt if the process is still running at `timeout` (or was
  // killed by a signal).
  std::optional<int> Wait(absl::Duration timeout);

  // Everything read from stdout / stderr so far (all of it after Wait).
  const std::string& out() const { return out_all_; }
  const std::string& err() const { return err_all_; }
  pid_t pid() const { return pid_; }

 private:
  ChildProcess() = default;
  // Reads what is available from the pipes, waiting until `deadline` for
  // something; false once both pipes are closed or the deadline passed with
  // nothing read.
  bool Pump(absl::Time deadline);

  pid_t pid_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  // stdout read but not yet returned by ReadLine.
  std::string out_pending_;
  std::string out_all_;
  std::string err_all_;
  std::thread stdin_writer_;
  std::thread waiter_;
  absl::Notification exited_;
  int wait_status_ = 0;  // Written before exited_ is notified.
};

// Runs argv to its end (killing it after `timeout`).
CommandResult RunCommand(std::vector<std::string> argv,
                         absl::Duration timeout = absl::Seconds(60),
                         std::vector<std::string> env = {},
                         std::string stdin_text = "");

// A real tshared (--listen=127.0.0.1:0, metrics off, two pool threads), stopped
// with SIGTERM by the destructor.
class TsharedProcess final {
 public:
  // `path` is the tshared binary; `flags` are added to its command line.
  static absl::StatusOr<std::unique_ptr<TsharedProcess>> Start(
      const std::string& path, std::vector<std::string> flags = {});
  ~TsharedProcess();
  TsharedProcess(const TsharedProcess&) = delete;
  TsharedProcess& operator=(const TsharedProcess&) = delete;

  // "127.0.0.1:port".
  const std::string& address() const { return address_; }
  // SIGTERM, then the exit code (nullopt if it did not exit within `timeout`).
  std::optional<int> Stop(absl::Duration timeout = absl::Seconds(10));

 private:
  TsharedProcess() = default;
  std::unique_ptr<ChildProcess> process_;
  std::string address_;
  bool stopped_ = false;
};

}  // namespace tshare::testing

#endif  // TSHARE_TESTS_E2E_CHILD_PROCESS_H_
