// `pg2kafka status --format text`: lays out the JSON object a source's status operation returns
// (plugin.h, p2k_source_ops.status) for a terminal: scalars as "name: value" lines, objects as
// indented sections, arrays of objects as aligned tables, arrays of scalars as lists.
#pragma once

#include <boost/json.hpp>

#include <string>

namespace pg2kafka::cli {

std::string status_text(const boost::json::object& status);

}  // namespace pg2kafka::cli
