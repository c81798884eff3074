// tsharectl: the command line of tshare. A thin layer over tshare::client: it
// parses the command line (CLI11), runs one verb against a tshared server and
// maps the outcome to an exit code: 0 success, 1 not found, 2 usage error, 3
// any other error. Errors go to stderr as "tsharectl: <CODE>: <message>".
//
//   tsharectl set visits 1
//   tsharectl --json get visits
//   tsharectl add visits 5
//   tsharectl watch --prefix cfg/ --count 3
//   tsharectl workers pause indexer
//   TSHARE_SERVER=10.0.0.5:7420 tsharectl stats
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cstdint>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "client/tsharectl/commands.h"
#include "client/tsharectl/values.h"

namespace tshare::tsharectl {
namespace {

constexpr char kExitCodes[] =
    "Exit status: 0 success; 1 not found (NOT_FOUND: no such key or worker); 2 "
    "usage error;\n"
    "3 any other error (stderr names its gRPC code, e.g. DEADLINE_EXCEEDED, "
    "UNAVAILABLE).";

constexpr char kFooter[] =
    "Values typed on the command line: an integer is an int (set visits 1), "
    "another number a\n"
    "double (1.5), true/false a bool, anything else a string; --int, --double, "
    "--bool,\n"
    "--string, --json and --bytes-base64 after the verb force a type. --json "
    "before the verb\n"
    "prints one JSON object per line (per event for watch, sub and workers "
    "watch).\n"
    "The server is --server, else $TSHARE_SERVER, else 127.0.0.1:7420.\n";

constexpr char kTxnHelp[] =
    "Runs a transaction from FILE (\"-\" reads stdin): a tshare.v1.TxnRequest "
    "in proto3 JSON.\n"
    "If every compare holds the success ops run, else the failure ops, all "
    "atomically:\n"
    "  {\"compares\": [{\"key\": \"stock\", \"operator\": \"EQUAL\", "
    "\"version\": \"4\"}],\n"
    "   \"success\": [{\"update\": {\"key\": \"stock\", \"add\": "
    "{\"int_value\": \"-1\"}}},\n"
    "               {\"set\": {\"key\": \"sold\", \"value\": "
    "{\"string_value\": \"yes\"}}}],\n"
    "   \"failure\": [{\"get\": {\"key\": \"stock\"}}]}\n"
    "A compare has key, operator (EQUAL, NOT_EQUAL, GREATER, LESS) and one of "
    "value,\n"
    "version, exists, mod_revision. An op is one of get {key}, set {key, "
    "value, if_version},\n"
    "update {key, add | append | merge | compare_and_set | min | max | toggle, "
    "if_version},\n"
    "delete {key | prefix}. Values are {\"int_value\": \"1\"}, "
    "{\"double_value\": 1.5},\n"
    "{\"string_value\": \"x\"}, {\"bool_value\": true}, {\"bytes_value\": "
    "\"AAE=\"},\n"
    "{\"json_value\": {...}}. Prints SUCCEEDED or FAILED, then one line per op "
    "result.";

// The value-type flags of set, pub and update.
struct TypeFlags {
  bool as_int = false;
  bool as_double = false;
  bool as_bool = false;
  bool as_string = false;
  bool as_json = false;
  bool as_bytes = false;

  void AddTo(CLI::App* verb, bool numbers_only) {
    verb->add_flag("--int", as_int, "The value is an int (int64)");
    verb->add_flag("--double", as_double, "The value is a double");
    if (numbers_only) return;
    verb->add_flag("--bool", as_bool,
                   "The value is a bool (true/false/yes/no/1/0)");
    verb->add_flag("--string", as_string,
                   "The value is a string, whatever it looks like");
    verb->add_flag("--json", as_json,
                   "The value is JSON text (an object, an array...). Here "
                   "--json types the "
                   "value; for JSON output put --json before the verb");
    verb->add_flag("--bytes-base64", as_bytes,
                   "The value is base64 text, stored as bytes");
  }

  absl::StatusOr<ValueType> Type() const {
    const int n = as_int + as_double + as_bool + as_string + as_json + as_bytes;
    if (n > 1) {
      return UsageError(
          "give at most one of --int, --double, --bool, --string, --json, "
          "--bytes-base64");
    }
    if (as_int) return ValueType::kInt;
    if (as_double) return ValueType::kDouble;
    if (as_bool) return ValueType::kBool;
    if (as_string) return ValueType::kString;
    if (as_json) return ValueType::kJson;
    if (as_bytes) return ValueType::kBytesBase64;
    return ValueType::kAuto;
  }
};

int ExitCode(const absl::Status& status) {
  if (status.ok()) return 0;
  if (IsUsageError(status)) return 2;
  if (absl::IsNotFound(status)) return 1;
  return 3;
}

void PrintError(const absl::Status& status, const std::string& verb) {
  if (IsUsageError(status)) {
    std::cerr << "tsharectl: " << status.message() << "\nRun 'tsharectl "
              << verb << " --help' for more information.\n";
  } else {
    std::cerr << "tsharectl: " << absl::StatusCodeToString(status.code())
              << ": " << status.message() << "\n";
  }
}

// Ctrl-C and SIGTERM end a streaming verb cleanly (exit 0). The signals are
// blocked in every thread (this must happen before gRPC starts any) and taken
// by a thread of their own with sigwait, so nothing runs inside a signal
// handler.
class StopSignals final {
 public:
  explicit StopSignals(StreamStop* stop) {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    sigaddset(&set_, SIGUSR1);  // Ends the thread.
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
    thread_ = std::thread([this, stop] {
      int signal_number = 0;
      sigwait(&set_, &signal_number);
      if (signal_number != SIGUSR1) stop->Interrupt();
    });
  }
  ~StopSignals() {
    pthread_kill(thread_.native_handle(), SIGUSR1);
    thread_.join();
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

 private:
  sigset_t set_;
  std::thread thread_;
};

int Main(int argc, char** argv) {
  CLI::App app(
      "tsharectl: get, set and watch the shares of a tshared server, publish "
      "and subscribe on "
      "its bus, control its workers.",
      "tsharectl");
  app.footer(absl::StrCat(kFooter, kExitCodes));
  app.require_subcommand(1, 1);
  app.fallthrough();
  app.set_version_flag("--version", TSHARECTL_VERSION);

  std::string server = "127.0.0.1:7420";
  std::string timeout_text = "5s";
  bool json = false;
  app.add_option("--server", server, "tshared address HOST:PORT")
      ->envname("TSHARE_SERVER")
      ->capture_default_str();
  CLI::Option* timeout_opt =
      app.add_option("--timeout", timeout_text,
                     "Deadline of each call (10s, 250ms, 2); for wait, how "
                     "long to wait "
                     "(default there: 30s)")
          ->capture_default_str();
  app.add_flag("--json", json, "Print JSON, one object per line");

  auto verb = [&app](const char* name, const char* description) {
    CLI::App* v = app.add_subcommand(name, description);
    v->footer(kExitCodes);
    v->fallthrough();
    return v;
  };

  // get
  std::string get_key;
  CLI::App* get =
      verb("get", "Print a key's value (strings raw, JSON compact)");
  get->add_option("KEY", get_key, "The key")->required();

  // set
  SetArgs set_args;
  TypeFlags set_types;
  uint64_t set_if_version = 0;
  CLI::App* set = verb("set", "Set a key to a value");
  set->add_option("KEY", set_args.key, "The key")->required();
  set->add_option("VALUE", set_args.value,
                  "The value (typed as the footer says)")
      ->required();
  CLI::Option* set_if = set->add_option(
      "--if-version", set_if_version,
      "Only if the key's version is N (0: only if it is absent)");
  set_types.AddTo(set, false);

  // add
  AddArgs add_args;
  TypeFlags add_types;
  uint64_t add_if_version = 0;
  CLI::App* add = verb(
      "add", "Add a number to an int or double key atomically (absent: 0)");
  add->add_option("KEY", add_args.key, "The key")->required();
  add->add_option("DELTA", add_args.delta, "An int (1, -2) or a double (0.5)")
      ->required();
  CLI::Option* add_if =
      add->add_option("--if-version", add_if_version, "Only at version N");
  add_types.AddTo(add, true);

  // update
  UpdateArgs update_args;
  TypeFlags update_types;
  uint64_t update_if_version = 0;
  std::string append, merge, min, max;
  CLI::App* update = verb(
      "update", "Apply one atomic operation to a key; prints the new value");
  update->add_option("KEY", update_args.key, "The key")->required();
  CLI::Option* append_opt = update->add_option(
      "--append", append, "Append a string (bytes, or a JSON array element)");
  CLI::Option* merge_opt = update->add_option(
      "--merge", merge, "Merge a JSON object (RFC 7386; null removes)");
  update
      ->add_option("--cas", update_args.cas,
                   "Compare and set: write NEW if the key holds EXPECTED")
      ->expected(2)
      ->type_name("EXPECTED NEW");
  CLI::Option* min_opt =
      update->add_option("--min", min, "Keep the smaller of the value and N");
  CLI::Option* max_opt =
      update->add_option("--max", max, "Keep the larger of the value and N");
  update->add_flag("--toggle", update_args.toggle,
                   "Flip a bool (absent: becomes true)");
  CLI::Option* update_if = update->add_option("--if-version", update_if_version,
                                              "Only if the key's version is N");
  update_types.AddTo(update, false);

  // del
  DelArgs del_args;
  std::string del_prefix;
  uint64_t del_if_version = 0;
  CLI::App* del =
      verb("del", "Delete a key, or every key under --prefix; prints how many");
  del->add_option("KEY", del_args.key, "The key");
  CLI::Option* del_prefix_opt =
      del->add_option("--prefix", del_prefix, "Delete keys under it");
  CLI::Option* del_if =
      del->add_option("--if-version", del_if_version, "Only at version N");

  // ls
  LsArgs ls_args;
  CLI::App* ls =
      verb("ls", "List keys (under PREFIX) with their values, in key order");
  ls->add_option("PREFIX", ls_args.prefix, "Only keys that start with it");
  ls->add_flag("--keys-only", ls_args.keys_only, "Print keys without values");

  // watch
  WatchArgs watch_args;
  std::string watch_prefix;
  CLI::App* watch = verb(
      "watch",
      "Print every change of a key (or of the keys under --prefix), one line "
      "per event, until Ctrl-C or --count events");
  watch->add_option("KEY", watch_args.key, "The key");
  CLI::Option* watch_prefix_opt = watch->add_option(
      "--prefix", watch_prefix, "Watch the keys under it (\"\": every key)");
  watch->add_option(
      "--from", watch_args.from,
      "First revision to print (replays history; older than the history: a "
      "RESYNC of the current state)");
  watch->add_flag("--snapshot", watch_args.snapshot,
                  "Start with the current state (a RESYNC), then the changes");
  watch->add_option("--count", watch_args.count, "Exit 0 after N events");

  // wait
  WaitArgs wait_args;
  CLI::App* wait = verb(
      "wait",
      "Wait until a key's version exceeds --after-version (0: until it "
      "exists), then print it; DEADLINE_EXCEEDED (exit 3) after --timeout");
  wait->add_option("KEY", wait_args.key, "The key")->required();
  wait->add_option("--after-version", wait_args.after_version,
                   "The version to wait past")
      ->capture_default_str();

  // txn
  std::string txn_file;
  CLI::App* txn =
      verb("txn", "Run a transaction from a JSON file (see --help)");
  txn->add_option("FILE", txn_file, "The TxnRequest JSON file, or - for stdin")
      ->required();
  txn->footer(absl::StrCat(kTxnHelp, "\n", kExitCodes));

  // pub
  PubArgs pub_args;
  TypeFlags pub_types;
  CLI::App* pub = verb("pub", "Publish a value on a bus topic");
  pub->add_option("TOPIC", pub_args.topic,
                  "A dot-separated topic, e.g. orders.new")
      ->required();
  pub->add_option("VALUE", pub_args.value, "The value (typed as for set)")
      ->required();
  pub_types.AddTo(pub, false);

  // sub
  SubArgs sub_args;
  CLI::App* sub =
      verb("sub",
           "Print messages on topics matching PATTERNs (orders.* one segment, "
           "orders.> the rest) until Ctrl-C or --count messages");
  sub->add_option("PATTERN", sub_args.patterns, "Topics or patterns")
      ->required();
  sub->add_option("--count", sub_args.count, "Exit 0 after N messages");

  // workers
  WorkersArgs workers_args;
  CLI::App* workers = verb(
      "workers", "List, pause, resume, stop or watch the server's workers");
  workers->require_subcommand(1, 1);
  auto worker_verb = [&](const char* name, const char* description,
                         bool name_required) {
    CLI::App* v = workers->add_subcommand(name, description);
    v->footer(kExitCodes);
    v->fallthrough();
    CLI::Option* o =
        v->add_option("NAME", workers_args.name, "The worker's name");
    if (name_required) o->required();
    return v;
  };
  std::vector<CLI::App*> worker_verbs = {
      worker_verb("list", "List the workers (or one) with state and progress",
                  false),
      worker_verb("pause",
                  "Pause a worker (it holds still at its next checkpoint)",
                  true),
      worker_verb("resume", "Resume a paused worker", true),
      worker_verb("stop", "Stop a worker (it ends at its next checkpoint)",
                  true),
      worker_verb("watch", "Print the workers' states, then every change",
                  false),
  };
  worker_verbs.back()->add_option("--count", workers_args.count,
                                  "Exit 0 after N events");

  CLI::App* stats = verb(
      "stats", "Print the server's figures (store, watches, bus, pool, ...)");
  CLI::App* subs = verb(
      "subs", "List open watches and subscriptions with lag, queue and drops");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }

  std::string verb_name;
  for (CLI::App* s : app.get_subcommands()) verb_name = s->get_name();
  if (workers->parsed()) {
    for (CLI::App* s : workers->get_subcommands())
      workers_args.action = s->get_name();
    verb_name = absl::StrCat("workers ", workers_args.action);
  }

  absl::StatusOr<absl::Duration> timeout = ParseDurationFlag(timeout_text);
  if (!timeout.ok()) {
    PrintError(
        UsageError(absl::StrCat("--timeout: ", timeout.status().message())),
        verb_name);
    return 2;
  }
  if (*timeout <= absl::ZeroDuration()) {
    PrintError(UsageError("--timeout must be positive"), verb_name);
    return 2;
  }

  const bool streaming = watch->parsed() || sub->parsed() ||
                         (workers->parsed() && workers_args.action == "watch");
  StreamStop stop;
  std::optional<StopSignals> signals;
  if (streaming) signals.emplace(&stop);

  client::ClientOptions options;
  options.default_deadline = *timeout;
  // Wait (up to --timeout) for the connection, retrying a failed attempt,
  // rather than fail the first call on a connection that is still being made.
  // gRPC gives each attempt at least the reconnect backoff (its
  // min_reconnect_backoff is also the minimum connect timeout), so a short one
  // would cut off handshakes on a busy machine.
  options.connect_timeout = *timeout;
  options.reconnect_initial_backoff = std::min(absl::Seconds(1), *timeout);
  options.reconnect_max_backoff = std::max(options.reconnect_max_backoff,
                                           options.reconnect_initial_backoff);
  absl::StatusOr<std::unique_ptr<client::Client>> connected =
      client::Client::Connect(server, options);
  if (!connected.ok()) {
    absl::Status s = connected.status();
    if (absl::IsInvalidArgument(s))
      s = UsageError(absl::StrCat("--server: ", s.message()));
    PrintError(s, verb_name);
    return ExitCode(s);
  }
  Printer out(json);
  Env env{.client = **connected,
          .out = out,
          .server = server,
          .timeout = *timeout,
          .stop = &stop};

  auto typed = [](const TypeFlags& flags, ValueType* type) {
    absl::StatusOr<ValueType> t = flags.Type();
    if (t.ok()) *type = *t;
    return t.status();
  };
  auto if_version = [](CLI::Option* o, uint64_t v) {
    return o->count() > 0 ? std::optional<uint64_t>(v) : std::nullopt;
  };

  absl::Status status;
  if (get->parsed()) {
    status = Get(env, get_key);
  } else if (set->parsed()) {
    set_args.if_version = if_version(set_if, set_if_version);
    status = typed(set_types, &set_args.type);
    if (status.ok()) status = Set(env, set_args);
  } else if (add->parsed()) {
    add_args.if_version = if_version(add_if, add_if_version);
    status = typed(add_types, &add_args.type);
    if (status.ok()) status = Add(env, add_args);
  } else if (update->parsed()) {
    update_args.if_version = if_version(update_if, update_if_version);
    if (append_opt->count() > 0) update_args.append = append;
    if (merge_opt->count() > 0) update_args.merge = merge;
    if (min_opt->count() > 0) update_args.min = min;
    if (max_opt->count() > 0) update_args.max = max;
    status = typed(update_types, &update_args.type);
    if (status.ok()) status = Update(env, update_args);
  } else if (del->parsed()) {
    del_args.if_version = if_version(del_if, del_if_version);
    if (del_prefix_opt->count() > 0) del_args.prefix = del_prefix;
    status = Del(env, del_args);
  } else if (ls->parsed()) {
    status = Ls(env, ls_args);
  } else if (watch->parsed()) {
    if (watch_prefix_opt->count() > 0) watch_args.prefix = watch_prefix;
    status = Watch(env, watch_args);
  } else if (wait->parsed()) {
    wait_args.timeout = timeout_opt->count() > 0 ? *timeout : absl::Seconds(30);
    status = Wait(env, wait_args);
  } else if (txn->parsed()) {
    status = Txn(env, txn_file);
  } else if (pub->parsed()) {
    status = typed(pub_types, &pub_args.type);
    if (status.ok()) status = Pub(env, pub_args);
  } else if (sub->parsed()) {
    status = Sub(env, sub_args);
  } else if (workers->parsed()) {
    status = Workers(env, workers_args);
  } else if (stats->parsed()) {
    status = Stats(env);
  } else if (subs->parsed()) {
    status = Subs(env);
  }
  if (!status.ok()) PrintError(status, verb_name);
  return ExitCode(status);
}

}  // namespace
}  // namespace tshare::tsharectl

int main(int argc, char** argv) { return tshare::tsharectl::Main(argc, argv); }
