// Small text helpers that the host and plugins share: ASCII lower case and splitting on a
// separator.
#pragma once

#include <cctype>
#include <string>
#include <string_view>
#include <vector>

namespace pg2kafka::sdk {

// ASCII lower case (configuration keywords and names are ASCII; other bytes are kept).
inline std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The parts of `text` between `separator`s, empty ones included ("a,,b" gives "a", "", "b";
// "" gives one empty part).
inline std::vector<std::string> split(std::string_view text, char separator) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t at = text.find(separator, start);
    out.emplace_back(
        text.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start));
    if (at == std::string_view::npos) return out;
    start = at + 1;
  }
}

}  // namespace pg2kafka::sdk
