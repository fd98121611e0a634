#include "tmux.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "support/names.h"
#include "support/text.h"

namespace migwatch::testing {

Tmux::Tmux(const std::string& shell_command, int width, int height) : socket_(UniqueName("migwatch-term-")) {
  if (access(TMUX_PATH, X_OK) != 0) {
    ADD_FAILURE() << "tmux not found (" << TMUX_PATH << "): deploy/install-build-deps.sh installs it";
    return;
  }
  Finished started = Run({"new-session", "-d", "-s", "term", "-x", std::to_string(width), "-y",
                          std::to_string(height), shell_command});
  EXPECT_EQ(started.exit_code, 0) << "tmux new-session failed: " << started.err;
}

Tmux::~Tmux() { Run({"kill-server"}); }

Finished Tmux::Run(std::vector<std::string> args) const {
  args.insert(args.begin(), {TMUX_PATH, "-L", socket_});
  return RunToEnd(args, 30);
}

std::vector<std::string> Tmux::Capture() const { return Lines(Run({"capture-pane", "-p", "-t", "term"}).out); }

void Tmux::SendKeys(const std::string& keys) const { Run({"send-keys", "-t", "term", keys}); }

void Tmux::Resize(int width, int height) const {
  Finished r = Run({"resize-window", "-t", "term", "-x", std::to_string(width), "-y", std::to_string(height)});
  EXPECT_EQ(r.exit_code, 0) << "tmux resize-window failed: " << r.err;
}

bool Tmux::Running() const { return Run({"has-session", "-t", "term"}).exit_code == 0; }

}  // namespace migwatch::testing
