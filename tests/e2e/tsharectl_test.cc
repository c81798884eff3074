// tsharectl against a real tshared: every verb run as a process, its output,
// its --json output and its exit code (0 success, 1 not found, 2 usage error, 3
// other errors) checked.
#include <signal.h>

#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/child_process.h"

namespace tshare::testing {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using Json = nlohmann::json;

constexpr absl::Duration kPatience = absl::Seconds(30);

// The lines of `text`, without the last empty one.
std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

Json ParseJson(const std::string& text) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(j.is_discarded()) << "not JSON: " << text;
  return j;
}

std::vector<Json> JsonLines(const std::string& text) {
  std::vector<Json> out;
  for (const std::string& line : Lines(text)) out.push_back(ParseJson(line));
  return out;
}

class TsharectlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<TsharedProcess>> tshared =
        TsharedProcess::Start(TSHARE_TSHARED_PATH);
    ASSERT_TRUE(tshared.ok()) << tshared.status();
    tshared_ = *std::move(tshared);
  }

  std::vector<std::string> Argv(std::vector<std::string> args) const {
    std::vector<std::string> argv = {TSHARE_TSHARECTL_PATH, "--server",
                                     tshared_->address()};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

  // tsharectl ARGS... against this test's server, run to its end.
  CommandResult Ctl(std::vector<std::string> args,
                    std::string stdin_text = "") const {
    return RunCommand(Argv(std::move(args)), kPatience, {},
                      std::move(stdin_text));
  }

  // tsharectl ARGS... left running (watch, sub, workers watch).
  std::unique_ptr<ChildProcess> StartCtl(std::vector<std::string> args) const {
    absl::StatusOr<std::unique_ptr<ChildProcess>> p =
        ChildProcess::Start(Argv(std::move(args)));
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? *std::move(p) : nullptr;
  }

  // The --json output of a command that must succeed with one object.
  Json CtlJson(std::vector<std::string> args) const {
    args.insert(args.begin(), "--json");
    CommandResult r = Ctl(std::move(args));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return ParseJson(r.out);
  }

  // Polls `tsharectl --json subs` until a watch or subscription (`kind`) on
  // `target` shows.
  bool WaitForSubscription(const std::string& kind,
                           const std::string& target) const {
    const absl::Time deadline = absl::Now() + kPatience;
    while (absl::Now() < deadline) {
      CommandResult r = Ctl({"--json", "subs"});
      for (const Json& s : JsonLines(r.out)) {
        if (s["kind"] == kind && s["targets"].is_array()) {
          for (const Json& t : s["targets"]) {
            if (t == target) return true;
          }
        }
      }
    }
    return false;
  }

  // Polls `tsharectl --json workers list NAME` until `pred` holds for the
  // worker's object; returns it, or nullopt at the deadline.
  template <typename Pred>
  std::optional<Json> WaitForWorker(const std::string& name, Pred pred) const {
    const absl::Time deadline = absl::Now() + kPatience;
    while (absl::Now() < deadline) {
      CommandResult r = Ctl({"--json", "workers", "list", name});
      if (r.exit_code == 0) {
        Json w = ParseJson(r.out);
        if (pred(w)) return w;
      }
    }
    return std::nullopt;
  }

  std::string WriteFile(const std::string& name,
                        const std::string& text) const {
    const std::string path = absl::StrCat(::testing::TempDir(), "/", name);
    std::ofstream(path) << text;
    return path;
  }

  std::unique_ptr<TsharedProcess> tshared_;
};

TEST_F(TsharectlTest, GetOfAMissingKeyExitsOneWithNotFound) {
  CommandResult r = Ctl({"get", "nothing-here"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_THAT(r.err, StartsWith("tsharectl: NOT_FOUND: "));
  EXPECT_THAT(r.err, HasSubstr("nothing-here"));
}

TEST_F(TsharectlTest, SetTypesValuesAndGetPrintsThemPlainly) {
  struct Case {
    std::vector<std::string> set;  // after "set KEY"
    std::string kind;
    std::string plain;
    Json value;
  };
  const std::vector<Case> cases = {
      {{"1"}, "int", "1", 1},
      {{"-17"}, "int", "-17", -17},
      {{"1.5"}, "double", "1.5", 1.5},
      {{"true"}, "bool", "true", true},
      {{"false"}, "bool", "false", false},
      {{"hello world"}, "string", "hello world", "hello world"},
      {{"1", "--string"}, "string", "1", "1"},
      {{"2", "--double"}, "double", "2.0", 2.0},
      {{"yes", "--bool"}, "bool", "true", true},
      {{"7", "--int"}, "int", "7", 7},
      {{"{\"a\":[1,2],\"b\":\"x\"}", "--json"},
       "json",
       "{\"a\":[1,2],\"b\":\"x\"}",
       Json{{"a", {1, 2}}, {"b", "x"}}},
      {{"AAE=", "--bytes-base64"}, "bytes", std::string("\x00\x01", 2), "AAE="},
  };
  int i = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.set[0]);
    const std::string key = absl::StrCat("typed/", i++);
    std::vector<std::string> set = {"set", key};
    set.insert(set.end(), c.set.begin(), c.set.end());
    CommandResult s = Ctl(set);
    EXPECT_EQ(s.exit_code, 0) << s.err;
    EXPECT_THAT(s.out,
                AllOf(StartsWith("OK (" + c.kind + ", version 1, revision "),
                      HasSubstr(")")));

    CommandResult g = Ctl({"get", key});
    EXPECT_EQ(g.exit_code, 0) << g.err;
    EXPECT_EQ(g.out, c.plain + "\n");

    Json j = CtlJson({"get", key});
    EXPECT_EQ(j["key"], key);
    EXPECT_EQ(j["kind"], c.kind);
    EXPECT_EQ(j["value"], c.value);
    EXPECT_EQ(j["version"], 1);
    EXPECT_GE(j["revision"].get<uint64_t>(), 1u);
  }
}

TEST_F(TsharectlTest, SetWithJsonOutputAndIfVersion) {
  Json created = CtlJson({"set", "cfg", "on", "--if-version", "0"});
  EXPECT_EQ(created["created"], true);
  EXPECT_EQ(created["version"], 1);
  EXPECT_EQ(created["kind"], "string");

  CommandResult again = Ctl({"set", "cfg", "off", "--if-version", "0"});
  EXPECT_EQ(again.exit_code, 3);
  EXPECT_THAT(again.err, StartsWith("tsharectl: FAILED_PRECONDITION: "));

  Json second = CtlJson({"set", "cfg", "off", "--if-version", "1"});
  EXPECT_EQ(second["created"], false);
  EXPECT_EQ(second["version"], 2);
}

TEST_F(TsharectlTest, AddCountsIntsAndDoubles) {
  EXPECT_EQ(Ctl({"add", "visits", "5"}).out, "5\n");
  EXPECT_EQ(Ctl({"add", "visits", "-2"}).out, "3\n");
  Json j = CtlJson({"add", "visits", "10"});
  EXPECT_EQ(j["value"], 13);
  EXPECT_EQ(j["kind"], "int");
  EXPECT_EQ(j["version"], 3);
  EXPECT_EQ(j["changed"], true);

  EXPECT_EQ(Ctl({"add", "ratio", "0.25"}).out, "0.25\n");
  EXPECT_EQ(Ctl({"add", "ratio", "1", "--double"}).out, "1.25\n");

  Ctl({"set", "name", "bob"});
  CommandResult bad = Ctl({"add", "name", "1"});
  EXPECT_EQ(bad.exit_code, 3);
  EXPECT_THAT(bad.err, StartsWith("tsharectl: INVALID_ARGUMENT: "));
  CommandResult usage = Ctl({"add", "visits", "lots"});
  EXPECT_EQ(usage.exit_code, 2);
  EXPECT_THAT(usage.err, HasSubstr("not a number"));
}

TEST_F(TsharectlTest, UpdateRunsEveryOperation) {
  // append onto a string
  Ctl({"set", "log", "a"});
  EXPECT_EQ(Ctl({"update", "log", "--append", "b"}).out, "ab\n");
  // append onto a JSON array
  Ctl({"set", "list", "[1]", "--json"});
  EXPECT_EQ(Ctl({"update", "list", "--append", "{\"x\":2}", "--json"}).out,
            "[1,{\"x\":2}]\n");
  // merge into a JSON object
  Ctl({"set", "cfg", "{\"a\":1,\"b\":2}", "--json"});
  EXPECT_EQ(Ctl({"update", "cfg", "--merge", "{\"b\":null,\"c\":3}"}).out,
            "{\"a\":1,\"c\":3}\n");
  // compare and set: a match writes, a mismatch fails
  Ctl({"set", "leader", "alice"});
  EXPECT_EQ(Ctl({"update", "leader", "--cas", "alice", "bob"}).out, "bob\n");
  CommandResult lost = Ctl({"update", "leader", "--cas", "alice", "carol"});
  EXPECT_EQ(lost.exit_code, 3);
  EXPECT_THAT(lost.err, StartsWith("tsharectl: FAILED_PRECONDITION: "));
  EXPECT_EQ(Ctl({"get", "leader"}).out, "bob\n");
  // min and max; one that does not win leaves the value unchanged
  Ctl({"set", "low", "10"});
  EXPECT_EQ(Ctl({"update", "low", "--min", "3"}).out, "3\n");
  Json unchanged = CtlJson({"update", "low", "--min", "8"});
  EXPECT_EQ(unchanged["value"], 3);
  EXPECT_EQ(unchanged["changed"], false);
  Ctl({"set", "high", "1.5"});
  EXPECT_EQ(Ctl({"update", "high", "--max", "2.5"}).out, "2.5\n");
  // toggle
  EXPECT_EQ(Ctl({"update", "flag", "--toggle"}).out, "true\n");
  EXPECT_EQ(Ctl({"update", "flag", "--toggle"}).out, "false\n");
  // if-version
  CommandResult stale =
      Ctl({"update", "flag", "--toggle", "--if-version", "1"});
  EXPECT_EQ(stale.exit_code, 3);
  EXPECT_THAT(stale.err, StartsWith("tsharectl: FAILED_PRECONDITION: "));
  // usage: no operation, or two
  CommandResult none = Ctl({"update", "flag"});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_THAT(none.err, HasSubstr("exactly one operation"));
  EXPECT_EQ(Ctl({"update", "flag", "--toggle", "--min", "1"}).exit_code, 2);
  EXPECT_EQ(Ctl({"update", "leader", "--cas", "onlyone"}).exit_code, 2);
}

TEST_F(TsharectlTest, DelDeletesAKeyOrAPrefix) {
  Ctl({"set", "tmp/a", "1"});
  Ctl({"set", "tmp/b", "2"});
  Ctl({"set", "tmp/c", "3"});
  Ctl({"set", "keep", "4"});
  EXPECT_EQ(Ctl({"del", "tmp/a"}).out, "deleted 1\n");
  EXPECT_EQ(Ctl({"del", "tmp/a"}).out, "deleted 0\n");
  EXPECT_EQ(Ctl({"get", "tmp/a"}).exit_code, 1);
  Json j = CtlJson({"del", "--prefix", "tmp/"});
  EXPECT_EQ(j["deleted"], 2);
  EXPECT_EQ(Ctl({"get", "tmp/c"}).exit_code, 1);
  EXPECT_EQ(Ctl({"get", "keep"}).out, "4\n");
  EXPECT_EQ(Ctl({"del"}).exit_code, 2);
  EXPECT_EQ(Ctl({"del", "keep", "--prefix", "k"}).exit_code, 2);
}

TEST_F(TsharectlTest, LsListsKeysInOrder) {
  Ctl({"set", "ls/b", "two"});
  Ctl({"set", "ls/a", "1"});
  Ctl({"set", "ls/c", "{\"n\":3}", "--json"});
  Ctl({"set", "other", "x"});
  CommandResult r = Ctl({"ls", "ls/"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(Lines(r.out),
              ElementsAre("ls/a 1", "ls/b \"two\"", "ls/c {\"n\":3}"));
  EXPECT_THAT(Lines(Ctl({"ls", "ls/", "--keys-only"}).out),
              ElementsAre("ls/a", "ls/b", "ls/c"));
  std::vector<Json> objects = JsonLines(Ctl({"--json", "ls", "ls/"}).out);
  ASSERT_EQ(objects.size(), 3u);
  EXPECT_EQ(objects[1]["key"], "ls/b");
  EXPECT_EQ(objects[1]["value"], "two");
  EXPECT_EQ(objects[1]["kind"], "string");
  EXPECT_EQ(Lines(Ctl({"ls"}).out).size(), 4u);
  EXPECT_EQ(Ctl({"ls", "none/"}).out, "");
}

TEST_F(TsharectlTest, WaitTimesOutWithDeadlineExceeded) {
  Ctl({"set", "w", "1"});
  CommandResult r =
      Ctl({"wait", "w", "--after-version", "1", "--timeout", "300ms"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.out, "");
  EXPECT_THAT(
      r.err,
      StartsWith(
          "tsharectl: DEADLINE_EXCEEDED: key \"w\" did not pass version 1 "
          "within 300ms"));
}

TEST_F(TsharectlTest, WaitReturnsOnceTheVersionPassesIt) {
  Ctl({"set", "w", "1"});
  // The key exists: --after-version 0 answers at once.
  EXPECT_EQ(Ctl({"wait", "w"}).out, "1\n");
  std::unique_ptr<ChildProcess> waiting = StartCtl(
      {"--json", "wait", "w", "--after-version", "1", "--timeout", "30s"});
  ASSERT_NE(waiting, nullptr);
  // Whether the set lands before or after the wait reaches the server, version
  // 2 > 1 answers.
  Ctl({"set", "w", "2"});
  ASSERT_EQ(waiting->Wait(kPatience), std::optional<int>(0)) << waiting->err();
  Json j = ParseJson(waiting->out());
  EXPECT_EQ(j["value"], 2);
  EXPECT_EQ(j["version"], 2);
}

TEST_F(TsharectlTest, TxnRunsTheSuccessOrTheFailureBranch) {
  Ctl({"set", "stock", "5"});
  const std::string file = WriteFile("txn.json", R"({
    "compares": [{"key": "stock", "operator": "EQUAL", "version": "1"}],
    "success": [{"update": {"key": "stock", "add": {"int_value": "-1"}}},
                {"set": {"key": "sold", "value": {"string_value": "yes"}}},
                {"get": {"key": "stock"}}],
    "failure": [{"get": {"key": "stock"}}]
  })");
  CommandResult first = Ctl({"txn", file});
  EXPECT_EQ(first.exit_code, 0) << first.err;
  std::vector<std::string> lines = Lines(first.out);
  ASSERT_EQ(lines.size(), 4u) << first.out;
  EXPECT_THAT(lines[0], StartsWith("SUCCEEDED (revision "));
  EXPECT_EQ(lines[1], "update stock 4 (version 2)");
  EXPECT_EQ(lines[2], "set sold OK (version 1)");
  EXPECT_EQ(lines[3], "get stock 4");
  EXPECT_EQ(Ctl({"get", "sold"}).out, "yes\n");

  // stock is at version 2 now: the compare fails and the failure branch runs,
  // from stdin.
  CommandResult second = Ctl({"--json", "txn", "-"}, R"({
    "compares": [{"key": "stock", "operator": "EQUAL", "version": "1"}],
    "failure": [{"get": {"key": "stock"}}]
  })");
  EXPECT_EQ(second.exit_code, 0) << second.err;
  Json j = ParseJson(second.out);
  EXPECT_EQ(j["succeeded"], false);
  ASSERT_EQ(j["results"].size(), 1u);
  EXPECT_EQ(j["results"][0]["op"], "get");
  EXPECT_EQ(j["results"][0]["key"], "stock");
  EXPECT_EQ(j["results"][0]["value"], 4);

  CommandResult bad = Ctl({"txn", WriteFile("bad.json", "{\"compares\": 7}")});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("TxnRequest"));
  EXPECT_EQ(Ctl({"txn", "/nonexistent/txn.json"}).exit_code, 2);
  // The server refuses a key changed twice in one transaction.
  CommandResult refused = Ctl({"txn", "-"}, R"({"success": [
      {"set": {"key": "k", "value": {"int_value": "1"}}},
      {"set": {"key": "k", "value": {"int_value": "2"}}}]})");
  EXPECT_EQ(refused.exit_code, 3);
  EXPECT_THAT(refused.err, StartsWith("tsharectl: INVALID_ARGUMENT: "));
  // A get of a missing key fails the transaction with NOT_FOUND.
  CommandResult missing =
      Ctl({"txn", "-"}, R"({"success": [{"get": {"key": "missing"}}]})");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.err, StartsWith("tsharectl: NOT_FOUND: "));
}

TEST_F(TsharectlTest, PubAndSubWithCount) {
  std::unique_ptr<ChildProcess> sub =
      StartCtl({"--json", "sub", "orders.*", "--count", "2"});
  ASSERT_NE(sub, nullptr);
  ASSERT_TRUE(WaitForSubscription("SUBSCRIPTION", "orders.*"));
  CommandResult first = Ctl({"pub", "orders.new", "7"});
  EXPECT_EQ(first.exit_code, 0) << first.err;
  EXPECT_EQ(first.out, "sequence 1 (1 receivers)\n");
  Ctl({"pub", "orders.eu.new", "not matched"});  // "*" is one segment
  Json second = CtlJson({"pub", "orders.paid", "{\"id\":7}", "--json"});
  EXPECT_EQ(second["topic"], "orders.paid");
  EXPECT_EQ(second["sequence"], 1);
  // (Its receivers are not checked: the subscriber may exit, having got it,
  // before the server counts the subscriptions that match.)
  EXPECT_TRUE(second["receivers"].is_number());

  ASSERT_EQ(sub->Wait(kPatience), std::optional<int>(0)) << sub->err();
  std::vector<Json> messages = JsonLines(sub->out());
  ASSERT_EQ(messages.size(), 2u) << sub->out();
  EXPECT_EQ(messages[0]["topic"], "orders.new");
  EXPECT_EQ(messages[0]["value"], 7);
  EXPECT_EQ(messages[0]["kind"], "int");
  EXPECT_EQ(messages[1]["topic"], "orders.paid");
  EXPECT_EQ(messages[1]["value"], (Json{{"id", 7}}));
  EXPECT_EQ(messages[1]["kind"], "json");
}

TEST_F(TsharectlTest, SubPrintsPlainLinesUntilInterrupted) {
  std::unique_ptr<ChildProcess> sub = StartCtl({"sub", "news.>"});
  ASSERT_NE(sub, nullptr);
  ASSERT_TRUE(WaitForSubscription("SUBSCRIPTION", "news.>"));
  Ctl({"pub", "news.world.today", "hello"});
  EXPECT_EQ(sub->ReadLine(kPatience),
            std::optional<std::string>("news.world.today \"hello\""));
  sub->Signal(SIGINT);
  EXPECT_EQ(sub->Wait(kPatience), std::optional<int>(0)) << sub->err();
}

TEST_F(TsharectlTest, WatchReplaysFromARevisionAndExitsAfterCount) {
  Json set = CtlJson({"set", "watched", "1"});
  const std::string from = absl::StrCat(set["revision"].get<uint64_t>());
  Ctl({"set", "watched", "two"});
  Ctl({"set", "unrelated", "x"});
  Ctl({"del", "watched"});

  CommandResult plain =
      Ctl({"watch", "watched", "--from", from, "--count", "3"});
  EXPECT_EQ(plain.exit_code, 0) << plain.err;
  std::vector<std::string> lines = Lines(plain.out);
  ASSERT_EQ(lines.size(), 3u) << plain.out;
  EXPECT_EQ(lines[0], absl::StrCat("PUT watched 1 (revision ", from, ")"));
  EXPECT_THAT(lines[1], StartsWith("PUT watched \"two\" (revision "));
  EXPECT_THAT(lines[2], StartsWith("DELETE watched (revision "));

  CommandResult json =
      Ctl({"--json", "watch", "watched", "--from", from, "--count", "3"});
  EXPECT_EQ(json.exit_code, 0) << json.err;
  std::vector<Json> events = JsonLines(json.out);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0]["type"], "PUT");
  EXPECT_EQ(events[0]["value"], 1);
  EXPECT_EQ(events[0]["revision"].get<uint64_t>(),
            set["revision"].get<uint64_t>());
  EXPECT_EQ(events[1]["value"], "two");
  EXPECT_EQ(events[1]["version"], 2);
  EXPECT_EQ(events[2]["type"], "DELETE");
  EXPECT_FALSE(events[2].contains("value"));
}

TEST_F(TsharectlTest, WatchPrefixPrintsLiveChangesUntilInterrupted) {
  std::unique_ptr<ChildProcess> watch =
      StartCtl({"watch", "--prefix", "live/"});
  ASSERT_NE(watch, nullptr);
  ASSERT_TRUE(WaitForSubscription("WATCH", "live/*"));
  Ctl({"set", "live/a", "1"});
  Ctl({"set", "dead/a", "1"});
  Ctl({"set", "live/b", "true"});
  std::optional<std::string> first = watch->ReadLine(kPatience);
  std::optional<std::string> second = watch->ReadLine(kPatience);
  ASSERT_TRUE(first.has_value() && second.has_value()) << watch->err();
  EXPECT_THAT(*first, StartsWith("PUT live/a 1 (revision "));
  EXPECT_THAT(*second, StartsWith("PUT live/b true (revision "));
  watch->Signal(SIGINT);
  EXPECT_EQ(watch->Wait(kPatience), std::optional<int>(0)) << watch->err();
}

TEST_F(TsharectlTest, WatchWithSnapshotStartsWithTheCurrentState) {
  Ctl({"set", "snap/a", "1"});
  Ctl({"set", "snap/b", "2"});
  std::unique_ptr<ChildProcess> watch = StartCtl(
      {"--json", "watch", "--prefix", "snap/", "--snapshot", "--count", "1"});
  ASSERT_NE(watch, nullptr);
  std::optional<std::string> resync = watch->ReadLine(kPatience);
  ASSERT_TRUE(resync.has_value()) << watch->err();
  Json j = ParseJson(*resync);
  EXPECT_EQ(j["type"], "RESYNC");
  ASSERT_EQ(j["snapshot"].size(), 2u);
  EXPECT_EQ(j["snapshot"][0]["key"], "snap/a");
  EXPECT_EQ(j["snapshot"][1]["value"], 2);
  Ctl({"set", "snap/c", "3"});
  EXPECT_EQ(watch->Wait(kPatience), std::optional<int>(0)) << watch->err();
  std::vector<Json> lines = JsonLines(watch->out());
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1]["key"], "snap/c");
}

TEST_F(TsharectlTest, WorkersListShowsTheServersHistoryCompactor) {
  CommandResult table = Ctl({"workers", "list"});
  EXPECT_EQ(table.exit_code, 0) << table.err;
  std::vector<std::string> lines = Lines(table.out);
  ASSERT_GE(lines.size(), 2u);
  EXPECT_THAT(lines[0], StartsWith("NAME"));
  EXPECT_THAT(table.out, HasSubstr("history-compactor"));

  Json w = CtlJson({"workers", "list", "history-compactor"});
  EXPECT_EQ(w["name"], "history-compactor");
  EXPECT_EQ(w["kind"], "SERVER");
  EXPECT_EQ(w["state"], "RUNNING");

  CommandResult missing = Ctl({"workers", "list", "no-such-worker"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.err, StartsWith("tsharectl: NOT_FOUND: "));
}

TEST_F(TsharectlTest, WorkersPauseAndResumeAServerWorker) {
  Json paused = CtlJson({"workers", "pause", "history-compactor"});
  EXPECT_EQ(paused["name"], "history-compactor");
  EXPECT_EQ(paused["state"], "PAUSED");
  ASSERT_TRUE(WaitForWorker("history-compactor", [](const Json& w) {
                return w["state"] == "PAUSED" && w["pause_requested"] == false;
              }).has_value());
  CommandResult again = Ctl({"workers", "resume", "history-compactor"});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_THAT(again.out,
              AllOf(HasSubstr("history-compactor"), HasSubstr("RUNNING")));
  EXPECT_TRUE(WaitForWorker("history-compactor", [](const Json& w) {
                return w["state"] == "RUNNING";
              }).has_value());
  // Resuming a running worker is refused.
  CommandResult refused = Ctl({"workers", "resume", "history-compactor"});
  EXPECT_EQ(refused.exit_code, 3);
  EXPECT_THAT(refused.err, StartsWith("tsharectl: FAILED_PRECONDITION: "));
  for (const char* action : {"pause", "resume", "stop"}) {
    CommandResult unknown = Ctl({"workers", action, "nobody"});
    EXPECT_EQ(unknown.exit_code, 1) << action;
    EXPECT_THAT(unknown.err, StartsWith("tsharectl: NOT_FOUND: "));
  }
}

TEST_F(TsharectlTest, WorkersControlAClientWorker) {
  absl::StatusOr<std::unique_ptr<ChildProcess>> worker = ChildProcess::Start(
      {TSHARE_EXAMPLE_WORKER_CONTROL_PATH, "--server", tshared_->address(),
       "--name=ctl-worker", "--interval=20ms"});
  ASSERT_TRUE(worker.ok()) << worker.status();
  ASSERT_TRUE((*worker)->ReadLineContaining("step 1", kPatience).has_value())
      << (*worker)->err();

  Json running = CtlJson({"workers", "list", "ctl-worker"});
  EXPECT_EQ(running["kind"], "CLIENT");

  EXPECT_EQ(Ctl({"workers", "pause", "ctl-worker"}).exit_code, 0);
  ASSERT_TRUE(WaitForWorker("ctl-worker", [](const Json& w) {
                return w["state"] == "PAUSED" && w["pause_requested"] == false;
              }).has_value());
  EXPECT_EQ(Ctl({"workers", "resume", "ctl-worker"}).exit_code, 0);
  ASSERT_TRUE(WaitForWorker("ctl-worker", [](const Json& w) {
                return w["state"] == "RUNNING";
              }).has_value());

  // workers watch: the current state first.
  CommandResult watch =
      Ctl({"--json", "workers", "watch", "ctl-worker", "--count", "1"});
  EXPECT_EQ(watch.exit_code, 0) << watch.err;
  Json event = ParseJson(watch.out);
  EXPECT_EQ(event["event"], "SNAPSHOT");
  EXPECT_EQ(event["name"], "ctl-worker");

  CommandResult stop = Ctl({"workers", "stop", "ctl-worker"});
  EXPECT_EQ(stop.exit_code, 0) << stop.err;
  EXPECT_EQ((*worker)->Wait(kPatience), std::optional<int>(0))
      << (*worker)->err();
  EXPECT_THAT((*worker)->out(), HasSubstr("worker ctl-worker ended (stopped)"));
  EXPECT_TRUE(WaitForWorker("ctl-worker", [](const Json& w) {
                return w["state"] == "STOPPED";
              }).has_value());
}

TEST_F(TsharectlTest, StatsPrintsTheServersFigures) {
  Ctl({"set", "a", "1"});
  CommandResult plain = Ctl({"stats"});
  EXPECT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_THAT(plain.out, HasSubstr("store.keys 1\n"));
  EXPECT_THAT(plain.out, HasSubstr("workers.running "));
  Json j = CtlJson({"stats"});
  EXPECT_EQ(j["store"]["keys"], 1);
  EXPECT_GE(j["store"]["sets"].get<uint64_t>(), 1u);
  EXPECT_TRUE(j["pool"]["threads"].is_number());
  EXPECT_TRUE(j["store_id"].is_string());
}

TEST_F(TsharectlTest, SubsListsWatchesAndSubscriptions) {
  CommandResult empty = Ctl({"subs"});
  EXPECT_EQ(empty.exit_code, 0) << empty.err;
  EXPECT_THAT(Lines(empty.out), ElementsAre(StartsWith("KIND")));
  std::unique_ptr<ChildProcess> watch = StartCtl({"watch", "k"});
  ASSERT_NE(watch, nullptr);
  ASSERT_TRUE(WaitForSubscription("WATCH", "k"));
  CommandResult table = Ctl({"subs"});
  ASSERT_EQ(Lines(table.out).size(), 2u) << table.out;
  EXPECT_THAT(Lines(table.out)[1],
              AllOf(StartsWith("WATCH"), HasSubstr(" k ")));
  watch->Signal(SIGTERM);
  EXPECT_EQ(watch->Wait(kPatience), std::optional<int>(0));
}

TEST_F(TsharectlTest, UsageErrorsExitTwo) {
  const std::vector<std::vector<std::string>> usages = {
      {},
      {"frobnicate"},
      {"get"},
      {"set", "k"},
      {"set", "k", "abc", "--int"},
      {"set", "k", "{bad", "--json"},
      {"set", "k", "1", "--int", "--string"},
      {"get", "k", "--timeout", "soon"},
      {"get", "k", "--no-such-flag"},
      {"watch"},
      {"watch", "k", "--prefix", "p"},
      {"workers"},
      {"workers", "pause"},
      {"sub"},
      {"txn"},
  };
  for (const std::vector<std::string>& args : usages) {
    CommandResult r = Ctl(args);
    EXPECT_EQ(r.exit_code, 2) << absl::StrJoin(args, " ") << ": " << r.err;
    EXPECT_FALSE(r.err.empty());
  }
}

TEST_F(TsharectlTest, HelpForEveryVerbExitsZero) {
  CommandResult top = Ctl({"--help"});
  EXPECT_EQ(top.exit_code, 0);
  EXPECT_THAT(top.out, AllOf(HasSubstr("Subcommands:"),
                             HasSubstr("Exit status: 0 success; 1 "
                                       "not found")));
  const std::vector<std::vector<std::string>> verbs = {{"get"},
                                                       {"set"},
                                                       {"add"},
                                                       {"update"},
                                                       {"del"},
                                                       {"ls"},
                                                       {"watch"},
                                                       {"wait"},
                                                       {"txn"},
                                                       {"pub"},
                                                       {"sub"},
                                                       {"workers"},
                                                       {"workers", "list"},
                                                       {"workers", "pause"},
                                                       {"workers", "resume"},
                                                       {"workers", "stop"},
                                                       {"workers", "watch"},
                                                       {"stats"},
                                                       {"subs"}};
  for (std::vector<std::string> verb : verbs) {
    verb.push_back("--help");
    CommandResult r = Ctl(verb);
    EXPECT_EQ(r.exit_code, 0) << absl::StrJoin(verb, " ");
    EXPECT_THAT(r.out, AllOf(HasSubstr("Usage:"), HasSubstr("Exit status")))
        << absl::StrJoin(verb, " ");
  }
  EXPECT_THAT(Ctl({"txn", "--help"}).out, HasSubstr("\"compares\""));
}

TEST_F(TsharectlTest, ServerFromTheEnvironment) {
  CommandResult r =
      RunCommand({TSHARE_TSHARECTL_PATH, "set", "env", "1"}, kPatience,
                 {absl::StrCat("TSHARE_SERVER=", tshared_->address())});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Ctl({"get", "env"}).out, "1\n");
}

TEST_F(TsharectlTest, AServerThatIsDownIsUnavailable) {
  ASSERT_EQ(tshared_->Stop(), std::optional<int>(0));
  CommandResult r = Ctl({"get", "k", "--timeout", "2s"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_THAT(r.err, StartsWith("tsharectl: UNAVAILABLE: "));
}

}  // namespace
}  // namespace tshare::testing
