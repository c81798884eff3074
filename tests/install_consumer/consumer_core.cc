// Built against the installed package only: <tshare/core/...> headers,
// tshare::core.
#include <tshare/core/share.h>

#include <cstdint>
#include <cstdio>
#include <thread>
#include <vector>

int main() {
  auto counter = tshare::core::MakeShare<int64_t>(0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([counter] {
      for (int i = 0; i < 1000; ++i) counter.Update([](int64_t& v) { ++v; });
    });
  }
  for (auto& t : threads) t.join();
  if (counter.Get() != 4000 || counter.version() != 4000) {
    std::fprintf(stderr, "consumer_core: got %lld, want 4000\n",
                 static_cast<long long>(counter.Get()));
    return 1;
  }
  std::printf("consumer_core: ok (%lld)\n",
              static_cast<long long>(counter.Get()));
  return 0;
}
