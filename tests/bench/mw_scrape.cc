// mw_scrape: scrapes a metrics endpoint again and again and prints the
// latency distribution, the way Prometheus sees it: connect, request, read
// the whole answer. Small and free of other dependencies, so that the same
// binary measures on the host and inside a test guest.
//
//   mw_scrape --address 127.0.0.1:19662 [--path /metrics] [--count 1000]
//
// Prints key=value lines: scrapes, bytes (of the last answer), min_ms,
// median_ms, p99_ms, max_ms, mean_ms. Exits non-zero on the first failed
// scrape.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <iostream>
#include <numeric>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

// One HTTP/1.0 GET; the server closes the connection after the answer.
// Returns the whole answer, or an empty string on any failure.
std::string Get(const sockaddr_in& address, const std::string& request) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return {};
  std::string answer;
  if (connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0 &&
      write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
    char buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0) answer.append(buf, n);
    if (n < 0) answer.clear();
  }
  close(fd);
  return answer;
}

double Percentile(const std::vector<double>& sorted, double p) {
  // Nearest rank: the smallest value with at least p of the samples at or below it.
  size_t rank = static_cast<size_t>(std::ceil(p * sorted.size()));
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Scrapes a metrics endpoint repeatedly and prints the latency distribution.", "mw_scrape"};
  std::string address_text, path = "/metrics";
  unsigned count = 1000;
  app.add_option("--address", address_text, "IPv4 host:port")->required();
  app.add_option("--path", path);
  app.add_option("--count", count)->check(CLI::Range(1u, 10000000u));
  CLI11_PARSE(app, argc, argv);

  sockaddr_in address{};
  address.sin_family = AF_INET;
  const auto colon = address_text.rfind(':');
  if (colon == std::string::npos || inet_pton(AF_INET, address_text.substr(0, colon).c_str(), &address.sin_addr) != 1) {
    std::cerr << "mw_scrape: --address wants IPv4 host:port, not '" << address_text << "'\n";
    return 2;
  }
  address.sin_port = htons(static_cast<uint16_t>(std::stoi(address_text.substr(colon + 1))));

  const std::string request = "GET " + path + " HTTP/1.0\r\nHost: " + address_text + "\r\n\r\n";
  std::vector<double> ms;
  ms.reserve(count);
  size_t bytes = 0;
  for (unsigned i = 0; i < count; ++i) {
    auto start = Clock::now();
    std::string answer = Get(address, request);
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    if (answer.rfind("HTTP/1.", 0) != 0 || answer.find(" 200 ") != answer.find(' ')) {
      std::cerr << "mw_scrape: scrape " << i + 1 << " failed: '" << answer.substr(0, answer.find('\r')) << "'\n";
      return 1;
    }
    bytes = answer.size();
  }
  std::sort(ms.begin(), ms.end());
  std::cout << "scrapes=" << count << "\nbytes=" << bytes << "\nmin_ms=" << ms.front()
            << "\nmedian_ms=" << Percentile(ms, 0.5) << "\np99_ms=" << Percentile(ms, 0.99)
            << "\nmax_ms=" << ms.back() << "\nmean_ms=" << std::accumulate(ms.begin(), ms.end(), 0.0) / count
            << std::endl;
  return 0;
}
