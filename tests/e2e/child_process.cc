#include "tests/e2e/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

extern char** environ;

namespace tshare::testing {
namespace {

absl::Status ErrnoError(absl::string_view what, int error) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(error)));
}

// This process's environment with `extra` ("NAME=value") added or replacing.
std::vector<std::string> MergedEnvironment(
    const std::vector<std::string>& extra) {
  std::map<std::string, std::string> vars;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry(*e);
    vars[entry.substr(0, entry.find('='))] = entry;
  }
  for (const std::string& entry : extra)
    vars[entry.substr(0, entry.find('='))] = entry;
  std::vector<std::string> out;
  for (auto& [name, entry] : vars) out.push_back(std::move(entry));
  return out;
}

std::vector<char*> Pointers(std::vector<std::string>& strings) {
  std::vector<char*> p;
  for (std::string& s : strings) p.push_back(s.data());
  p.push_back(nullptr);
  return p;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Start(
    std::vector<std::string> argv, std::vector<std::string> env,
    std::string stdin_text) {
  if (argv.empty())
    return absl::InvalidArgumentError("ChildProcess::Start: empty argv");
  // A child that exits before reading its stdin must not kill this process with
  // SIGPIPE.
  static const bool sigpipe_ignored = signal(SIGPIPE, SIG_IGN) != SIG_ERR;
  (void)sigpipe_ignored;
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0) return ErrnoError("pipe2", errno);
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    return ErrnoError("pipe2", errno);
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
  // The child starts with no blocked signals and default dispositions, whatever
  // this process (a test runner) set.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<std::string> environment = MergedEnvironment(env);
  std::vector<char*> argv_p = Pointers(argv);
  std::vector<char*> env_p = Pointers(environment);
  auto child = std::unique_ptr<ChildProcess>(new ChildProcess());
  const int rc = posix_spawn(&child->pid_, argv[0].c_str(), &actions, &attr,
                             argv_p.data(), env_p.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close(in[0]);
  close(out[1]);
  close(err[1]);
  child->out_fd_ = out[0];
  child->err_fd_ = err[0];
  if (rc != 0) {
    close(in[1]);
    child->pid_ = -1;
    return ErrnoError(absl::StrCat("posix_spawn ", argv[0]), rc);
  }
  child->stdin_writer_ =
      std::thread([fd = in[1], text = std::move(stdin_text)] {
        size_t written = 0;
        while (written < text.size()) {
          const ssize_t n =
              write(fd, text.data() + written, text.size() - written);
          if (n <= 0) break;
          written += static_cast<size_t>(n);
        }
        close(fd);
      });
  ChildProcess* self = child.get();
  child->waiter_ = std::thread([self] {
    int status = 0;
    while (waitpid(self->pid_, &status, 0) < 0 && errno == EINTR) {
    }
    self->wait_status_ = status;
    self->exited_.Notify();
  });
  return child;
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !exited_.HasBeenNotified()) kill(pid_, SIGKILL);
  if (waiter_.joinable()) waiter_.join();
  if (out_fd_ >= 0) close(out_fd_);
  if (err_fd_ >= 0) close(err_fd_);
  if (stdin_writer_.joinable()) stdin_writer_.join();
}

bool ChildProcess::Pump(absl::Time deadline) {
  pollfd fds[2];
  int n = 0;
  if (out_fd_ >= 0) fds[n++] = {out_fd_, POLLIN, 0};
  if (err_fd_ >= 0) fds[n++] = {err_fd_, POLLIN, 0};
  if (n == 0) return false;
  const int64_t wait_ms = absl::ToInt64Milliseconds(deadline - absl::Now());
  if (wait_ms <= 0) return false;
  const int ready =
      poll(fds, n, static_cast<int>(std::min<int64_t>(wait_ms, 1 << 30)));
  if (ready <= 0) return ready < 0 && errno == EINTR;
  char buffer[4096];
  for (int i = 0; i < n; ++i) {
    if (fds[i].revents == 0) continue;
    const bool is_out = fds[i].fd == out_fd_;
    const ssize_t got = read(fds[i].fd, buffer, sizeof(buffer));
    if (got <= 0) {
      close(fds[i].fd);
      (is_out ? out_fd_ : err_fd_) = -1;
      continue;
    }
    if (is_out) {
      out_pending_.append(buffer, static_cast<size_t>(got));
      out_all_.append(buffer, static_cast<size_t>(got));
    } else {
      err_all_.append(buffer, static_cast<size_t>(got));
    }
  }
  return true;
}

std::optional<std::string> ChildProcess::ReadLine(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    const size_t nl = out_pending_.find('\n');
    if (nl != std::string::npos) {
      std::string line = out_pending_.substr(0, nl);
      out_pending_.erase(0, nl + 1);
      return line;
    }
    if (out_fd_ < 0) {
      if (out_pending_.empty()) return std::nullopt;
      return std::exchange(out_pending_, "");
    }
    if (!Pump(deadline) && absl::Now() >= deadline) return std::nullopt;
  }
}

std::optional<std::string> ChildProcess::ReadLineContaining(
    absl::string_view needle, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    std::optional<std::string> line = ReadLine(deadline - absl::Now());
    if (!line.has_value()) return std::nullopt;
    if (absl::StrContains(*line, needle)) return line;
  }
}

void ChildProcess::Signal(int signal_number) const {
  if (pid_ > 0 && !exited_.HasBeenNotified()) kill(pid_, signal_number);
}

std::optional<int> ChildProcess::Wait(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while ((out_fd_ >= 0 || err_fd_ >= 0) && absl::Now() < deadline)
    Pump(deadline);
  if (!exited_.WaitForNotificationWithTimeout(deadline - absl::Now()))
    return std::nullopt;
  if (!WIFEXITED(wait_status_)) return std::nullopt;
  return WEXITSTATUS(wait_status_);
}

CommandResult RunCommand(std::vector<std::string> argv, absl::Duration timeout,
                         std::vector<std::string> env, std::string stdin_text) {
  CommandResult result;
  absl::StatusOr<std::unique_ptr<ChildProcess>> p = ChildProcess::Start(
      std::move(argv), std::move(env), std::move(stdin_text));
  if (!p.ok()) {
    result.err = p.status().ToString();
    return result;
  }
  std::optional<int> code = (*p)->Wait(timeout);
  result.exit_code = code.value_or(-1);
  result.out = (*p)->out();
  result.err = (*p)->err();
  return result;
}

absl::StatusOr<std::unique_ptr<TsharedProcess>> TsharedProcess::Start(
    const std::string& path, std::vector<std::string> flags) {
  std::vector<std::string> argv = {path, "--listen=127.0.0.1:0",
                                   "--metrics_listen=", "--pool_threads=2",
                                   "--shutdown_grace=1s"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  auto tshared = std::unique_ptr<TsharedProcess>(new TsharedProcess());
  absl::StatusOr<std::unique_ptr<ChildProcess>> process =
      ChildProcess::Start(std::move(argv));
  if (!process.ok()) return process.status();
  tshared->process_ = *std::move(process);
  // "tshared listening on 127.0.0.1:45678 (store_id ...)"
  std::optional<std::string> line =
      tshared->process_->ReadLine(absl::Seconds(60));
  constexpr absl::string_view kPrefix = "tshared listening on ";
  if (!line.has_value() || !absl::StartsWith(*line, kPrefix)) {
    tshared->process_->Wait(absl::Seconds(1));
    return absl::InternalError(
        absl::StrCat("tshared did not start: ", line.value_or(""),
                     tshared->process_->err()));
  }
  std::vector<std::string> words =
      absl::StrSplit(line->substr(kPrefix.size()), ' ');
  tshared->address_ = words[0];
  return tshared;
}

std::optional<int> TsharedProcess::Stop(absl::Duration timeout) {
  stopped_ = true;
  process_->Signal(SIGTERM);
  return process_->Wait(timeout);
}

TsharedProcess::~TsharedProcess() {
  if (!stopped_) Stop();
}

}  // namespace tshare::testing
