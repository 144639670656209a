// Rendering a plugin's identity and option table for `pg2kafka plugins describe` (and the
// plugins' README files, which are generated from the markdown form).
#pragma once

#include <pg2kafka/plugin.h>

#include <optional>
#include <span>
#include <string>

namespace pg2kafka::plugin {

enum class DescribeFormat { kText, kJson, kMarkdown };
std::optional<DescribeFormat> parse_describe_format(const std::string& name);

std::string describe_plugin(const p2k_plugin& descriptor, const std::string& path,
                            DescribeFormat format);
// The option table alone (used for the host's "pipeline" section too).
std::string describe_options(std::span<const p2k_option> options, DescribeFormat format);

}  // namespace pg2kafka::plugin
