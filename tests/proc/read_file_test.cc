#include "migwatch/kernel/proc/read_file.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace migwatch {
namespace {

class ReadProcFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "migwatch-proc-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr) << "mkdtemp failed";
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& contents) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << contents;
    return path;
  }

  std::filesystem::path dir_;
};

TEST_F(ReadProcFileTest, ReadsWholeFileIncludingNuls) {
  const std::string contents = std::string("a\0b\0", 4) + std::string(10000, 'x');
  EXPECT_EQ(ReadProcFile(Write("f", contents)), contents);
}

TEST_F(ReadProcFileTest, EmptyFileIsEmptyNotMissing) {
  EXPECT_EQ(ReadProcFile(Write("empty", "")), "");
}

TEST_F(ReadProcFileTest, MissingFileAndDirectoryGiveNothing) {
  EXPECT_EQ(ReadProcFile((dir_ / "missing").string()), std::nullopt);
  EXPECT_EQ(ReadProcFile(dir_.string()), std::nullopt);
}

TEST_F(ReadProcFileTest, SizeCap) {
  EXPECT_EQ(ReadProcFile(Write("at-cap", std::string(kMaxProcFileBytes, 'x')))->size(),
            kMaxProcFileBytes);
  EXPECT_EQ(ReadProcFile(Write("over-cap", std::string(kMaxProcFileBytes + 1, 'x'))), std::nullopt);
}

TEST(ReadProcFile, ProcFileThatReportsSizeZero) {
  const auto stat = ReadProcFile("/proc/self/stat");
  ASSERT_TRUE(stat.has_value()) << "/proc is not mounted";
  EXPECT_EQ(stat->rfind(std::to_string(::getpid()) + " (", 0), 0u) << *stat;
}

}  // namespace
}  // namespace migwatch
