#include "config/diagnostics.hpp"

#include <gtest/gtest.h>

#include <chrono>

using namespace pg2kafka::config;

TEST(Diagnostics, PrintableEscapesControlsAndInvalidUtf8) {
  EXPECT_EQ(printable("plain café"), "plain café");
  EXPECT_EQ(printable("a\nb\tc\x1b[0m\x7f"), "a\\nb\\tc\\x1b[0m\\x7f");
  EXPECT_EQ(printable("\xff\xC3"), "\\xff\\xc3");
  EXPECT_EQ(printable("rtl\xE2\x80\xAEgnp.exe"), "rtl\\u{202e}gnp.exe");
  EXPECT_EQ(printable(std::string_view("a\0b", 3)), "a\\x00b");
  EXPECT_EQ(quoted("k", '"'), "\"k\"");
}

TEST(Diagnostics, PrintableCutsLongTexts_NamingTheirLength) {
  EXPECT_EQ(printable(std::string(80, 'a')), std::string(80, 'a'));
  EXPECT_EQ(printable(std::string(81, 'a')), std::string(80, 'a') + "…(81 bytes)");
  // Never in the middle of a character.
  std::string e_acute;
  for (int i = 0; i < 100; ++i) e_acute += "é";
  auto shown = printable(e_acute);
  EXPECT_EQ(shown, e_acute.substr(0, 80) + "…(200 bytes)");
  EXPECT_EQ(printable(std::string(1000, '\n')).size(), 80u + std::string("…(1000 bytes)").size());
}

TEST(Diagnostics, FormatBoundsPathsAndMessages) {
  std::string huge(1'000'000, 'k');
  Diagnostic d{"p.json", {"source", huge}, {1, 2}, "bad " + huge};
  auto text = d.format();
  EXPECT_LT(text.size(), 5000u);
  EXPECT_EQ(text.find('\n'), std::string::npos);
  EXPECT_EQ(format_location("p.json", {3, 4}), "p.json:3:4");
  EXPECT_EQ(format_location("", {3, 4}), "line 3, column 4");
}

TEST(Diagnostics, NearestSkipsLongTexts_InsteadOfQuadraticWork) {
  EXPECT_EQ(nearest("batchsize", {"batch_size", "notify"}), "batch_size");
  std::vector<std::string> candidates(100, std::string(200, 'c'));
  candidates.push_back("batch_size");
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(nearest(std::string(10'000'000, 'x'), candidates), "");
  EXPECT_EQ(nearest(std::string(250, 'x'), candidates), "");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
}

TEST(Diagnostics, Utf8LengthRejectsOverlongAndSurrogates) {
  EXPECT_EQ(utf8_length_at("\xC0\x80", 0), 0u);
  EXPECT_EQ(utf8_length_at("\xED\xA0\x80", 0), 0u);
  EXPECT_EQ(utf8_length_at("\xF4\x90\x80\x80", 0), 0u);
  EXPECT_EQ(utf8_length_at("\xF0\x9F\x98\x80", 0), 4u);
  EXPECT_EQ(utf8_length_at("\xE2\x82", 0), 0u);
}

TEST(Diagnostics, KeepsTheFirstHundred_AndCountsTheRest) {
  Diagnostics d;
  for (int i = 0; i < 1'000'000; ++i) d.add(Diagnostic{"p.json", {}, {1, 1}, "error"});
  EXPECT_EQ(d.size(), 1'000'000u);
  ASSERT_EQ(d.items().size(), Diagnostics::kMaxKept + 1);
  EXPECT_EQ(d.items().back().format(),
            "p.json: ... and 999900 more errors (only the first 100 are shown)");
}
