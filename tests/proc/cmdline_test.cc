#include "migwatch/kernel/proc/cmdline.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace migwatch {
namespace {

using namespace std::string_literals;
using Args = std::vector<std::string>;

TEST(ParseCmdline, Table) {
  struct Case {
    std::string name;
    std::string contents;
    Args argv;
  };
  const Case cases[] = {
      {"kernel thread or zombie", "", {}},
      {"one argument", "/sbin/init\0"s, {"/sbin/init"}},
      {"several",
       "/usr/bin/qemu-system-x86_64\0-name\0guest=vm1\0"s,
       {"/usr/bin/qemu-system-x86_64", "-name", "guest=vm1"}},
      {"no final NUL (rewritten argv)", "sshd: root@pts/0"s, {"sshd: root@pts/0"}},
      {"last argument unterminated", "a\0b"s, {"a", "b"}},
      {"empty argument", "prog\0\0x\0"s, {"prog", "", "x"}},
      {"trailing empty argument", "a\0\0"s, {"a", ""}},
      {"only NUL", "\0"s, {""}},
      {"spaces stay inside arguments", "sh\0-c\0echo a b\0"s, {"sh", "-c", "echo a b"}},
      {"bytes that are not UTF-8", "\xff\xfe\0"s, {"\xff\xfe"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(ParseCmdline(c.contents), c.argv);
  }
}

}  // namespace
}  // namespace migwatch
