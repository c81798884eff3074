// http_visit_counter: the seed's HTTP server with a visit counter, the count
// kept in a share on tshared, so that every instance of this server (on one
// machine or many) and tsharectl see one number.
//
//   GET / and GET /page/<anything>       count a visit, show the count
//   /favicon.ico, *.css, *.js, *.png...  static resources: served, not counted
//   GET /stats                           {"visits": N}, not counted
//   GET /health                          ok
//
// Two workers run it, as the seed's spawn_workers! did
// (tshare::core::WorkerManager): "http" serves requests (cpp-httplib),
// "monitor" prints the count each time it changes, waiting on the server by
// version (Client::WaitFor), so that it never misses a change and never polls.
// Ctrl-C or SIGTERM stops both and exits 0.
//
//   example_http_visit_counter --port=8445
//   curl localhost:8445/ ; curl localhost:8445/favicon.ico
//   curl localhost:8445/stats            # {"visits":1}
//   tsharectl get examples/http/visits   # 1
//
// --port=0 lets the system pick a port; the line "listening on ..." names it.
// The server is --server, else $TSHARE_SERVER, else 127.0.0.1:7420.
#include <pthread.h>
#include <signal.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "core/worker_manager.h"
#include "httplib.h"

ABSL_FLAG(std::string, server, "",
          "tshared address (default: $TSHARE_SERVER or 127.0.0.1:7420)");
ABSL_FLAG(std::string, host, "127.0.0.1", "Address the HTTP server listens on");
ABSL_FLAG(int, port, 8445, "HTTP port; 0 picks a free one");
ABSL_FLAG(std::string, key, "examples/http/visits",
          "The share that counts visits");

namespace {

using tshare::core::WorkerContext;

std::string ServerAddress() {
  std::string server = absl::GetFlag(FLAGS_server);
  if (server.empty()) {
    const char* env = std::getenv("TSHARE_SERVER");
    server = env != nullptr ? env : "127.0.0.1:7420";
  }
  return server;
}

// Static resources: browsers fetch them along with a page, so they are not
// visits.
bool IsStaticResource(absl::string_view path) {
  static constexpr std::array<absl::string_view, 9> kSuffixes = {
      ".ico", ".css", ".js", ".png", ".jpg", ".jpeg", ".gif", ".svg", ".map"};
  for (absl::string_view suffix : kSuffixes) {
    if (absl::EndsWith(path, suffix)) return true;
  }
  return false;
}

absl::string_view ContentType(absl::string_view path) {
  if (absl::EndsWith(path, ".css")) return "text/css";
  if (absl::EndsWith(path, ".js")) return "text/javascript";
  if (absl::EndsWith(path, ".svg")) return "image/svg+xml";
  return "application/octet-stream";
}

// A visit counted on the server: the new count, or the error.
absl::StatusOr<int64_t> CountVisit(const tshare::client::Client& c,
                                   const std::string& key) {
  absl::StatusOr<tshare::client::OpResult<int64_t>> r = c.Add(key, 1);
  if (!r.ok()) return r.status();
  return r->value;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string key = absl::GetFlag(FLAGS_key);

  // SIGINT and SIGTERM are taken by sigwait below: block them before any thread
  // starts, so that every thread inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  absl::StatusOr<std::unique_ptr<tshare::client::Client>> client =
      tshare::client::Client::Connect(ServerAddress());
  if (!client.ok()) {
    std::fprintf(stderr, "http_visit_counter: %s\n",
                 client.status().ToString().c_str());
    return 1;
  }
  const tshare::client::Client& c = **client;

  httplib::Server http;
  http.Get("/health", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  http.Get("/stats", [&](const httplib::Request&, httplib::Response& res) {
    absl::StatusOr<int64_t> visits = c.Get<int64_t>(key);
    if (!visits.ok() && !absl::IsNotFound(visits.status())) {
      res.status = 503;
      res.set_content(absl::StrCat(visits.status().ToString(), "\n"),
                      "text/plain");
      return;
    }
    res.set_content(
        absl::StrCat("{\"visits\":", visits.ok() ? *visits : 0, "}\n"),
        "application/json");
  });
  http.Get(R"(/.*)", [&](const httplib::Request& req, httplib::Response& res) {
    if (IsStaticResource(req.path)) {
      res.set_content("", std::string(ContentType(req.path)));
      return;
    }
    if (req.path != "/" && !absl::StartsWith(req.path, "/page/")) {
      res.status = 404;
      res.set_content("not found\n", "text/plain");
      return;
    }
    absl::StatusOr<int64_t> visits = CountVisit(c, key);
    if (!visits.ok()) {
      res.status = 503;
      res.set_content(absl::StrCat(visits.status().ToString(), "\n"),
                      "text/plain");
      return;
    }
    res.set_content(
        absl::StrCat("<!doctype html><title>tshare</title><h1>Visit #", *visits,
                     "</h1><p>", req.path, "</p>\n"),
        "text/html");
  });

  const std::string host = absl::GetFlag(FLAGS_host);
  int port = absl::GetFlag(FLAGS_port);
  if (port == 0) {
    port = http.bind_to_any_port(host);
  } else if (!http.bind_to_port(host, port)) {
    port = -1;
  }
  if (port < 0) {
    std::fprintf(stderr, "http_visit_counter: cannot listen on %s:%d\n",
                 host.c_str(), absl::GetFlag(FLAGS_port));
    return 1;
  }
  tshare::core::WorkerManager workers;
  absl::Status spawned = workers.Spawn("monitor", [&](WorkerContext& context) {
    uint64_t seen_version = 0;
    while (context.Checkpoint()) {
      // Answers as soon as the count changes after seen_version; wakes once a
      // second to notice a stop.
      absl::StatusOr<tshare::client::Versioned<int64_t>> visits =
          c.WaitFor<int64_t>(key, seen_version, absl::Now() + absl::Seconds(1));
      if (!visits.ok()) continue;
      seen_version = visits->version;
      std::printf("visits: %lld\n", static_cast<long long>(visits->value));
      std::fflush(stdout);
    }
  });
  if (spawned.ok()) {
    spawned = workers.Spawn("http", [&http](WorkerContext&) {
      // Returns once http.stop() is called.
      http.listen_after_bind();
    });
  }
  if (!spawned.ok()) {
    std::fprintf(stderr, "http_visit_counter: %s\n",
                 spawned.ToString().c_str());
    return 1;  // ~WorkerManager stops the monitor.
  }
  // cpp-httplib 0.11 has no "ready" notification, and a stop() before the
  // server runs is lost: wait (briefly) until it runs.
  while (!http.is_running()) absl::SleepFor(absl::Milliseconds(1));
  std::printf("listening on http://%s:%d/ (visits in %s)\n", host.c_str(), port,
              key.c_str());
  std::fflush(stdout);

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  http.stop();
  workers.Stop("monitor").IgnoreError();
  const absl::Status joined = workers.JoinAll();
  absl::StatusOr<int64_t> visits = c.Get<int64_t>(key);
  std::printf("stopped; %lld visits\n",
              static_cast<long long>(visits.ok() ? *visits : 0));
  return joined.ok() ? 0 : 1;
}
