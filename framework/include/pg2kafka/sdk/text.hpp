// Small text helpers that the host and plugins share: ASCII lower case, splitting on a separator
// and the length of a UTF-8 sequence.
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

// The length (1 to 4) of the well-formed UTF-8 sequence at text[i], its code point in `cp`; 0
// when the bytes there are not UTF-8 (stray continuation byte, overlong form, surrogate, beyond
// U+10FFFF, cut short).
inline size_t utf8_length_at(std::string_view text, size_t i, char32_t* cp = nullptr) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  unsigned char b = byte(i);
  size_t n;
  char32_t c;
  if (b < 0x80) {
    if (cp) *cp = b;
    return 1;
  } else if (b >= 0xC2 && b <= 0xDF) {
    n = 2;
    c = b & 0x1F;
  } else if (b >= 0xE0 && b <= 0xEF) {
    n = 3;
    c = b & 0x0F;
  } else if (b >= 0xF0 && b <= 0xF4) {
    n = 4;
    c = b & 0x07;
  } else {
    return 0;  // a continuation byte, or a lead byte that only starts overlong or too large forms
  }
  if (i + n > text.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    c = (c << 6) | (byte(i + k) & 0x3F);
  }
  if ((n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10FFFF)) ||
      (c >= 0xD800 && c <= 0xDFFF))
    return 0;
  if (cp) *cp = c;
  return n;
}

}  // namespace pg2kafka::sdk
