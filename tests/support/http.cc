#include "support/http.h"

#include <curl/curl.h>

#include <memory>

#include "support/clock.h"

namespace migwatch::testing {

Response HttpGet(int port, const std::string& path, double timeout_s) {
  static const bool initialised = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  Response r;
  if (!initialised) {
    r.error = "curl_global_init failed";
    return r;
  }
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
  std::string url = "http://127.0.0.1:" + std::to_string(port) + path;
  auto write = +[](char* data, size_t size, size_t n, void* body) {
    static_cast<std::string*>(body)->append(data, size * n);
    return size * n;
  };
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, write);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_s * 1000));
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  auto start = Clock::now();
  CURLcode rc = curl_easy_perform(curl.get());
  r.seconds = SecondsSince(start);
  if (rc != CURLE_OK) {
    r.error = curl_easy_strerror(rc);
    return r;
  }
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &r.status);
  return r;
}

}  // namespace migwatch::testing
