// libFuzzer target: listen address parsing must either accept a value that
// survives a round trip through ToString, or throw WebError with a one-line
// message. The input is also split at newlines to exercise the list checks.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "migwatch/export/web/error.h"
#include "migwatch/export/web/listen_address.h"

namespace {

void RequireOneLine(const migwatch::WebError& error) {
  if (std::string_view(error.what()).find('\n') != std::string_view::npos) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  try {
    const migwatch::ListenAddress address = migwatch::ParseListenAddress(input);
    if (!(migwatch::ParseListenAddress(address.ToString()) == address)) {
      std::abort();
    }
  } catch (const migwatch::WebError& error) {
    RequireOneLine(error);
  }

  std::vector<std::string> lines;
  std::size_t begin = 0;
  for (std::size_t end = input.find('\n'); end != std::string_view::npos;
       begin = end + 1, end = input.find('\n', begin)) {
    lines.emplace_back(input.substr(begin, end - begin));
  }
  lines.emplace_back(input.substr(begin));
  try {
    const std::vector<migwatch::ListenAddress> addresses =
        migwatch::ParseListenAddresses(lines);
    const std::string ports = migwatch::ToCivetwebListeningPorts(addresses);
    // civetweb refuses ":port" and IPv6 brackets.
    if (addresses.size() != lines.size() || ports.empty() ||
        ports.front() == ':' || ports.find(",:") != std::string::npos ||
        ports.find('[') != std::string::npos) {
      std::abort();
    }
  } catch (const migwatch::WebError& error) {
    RequireOneLine(error);
  }
  return 0;
}
