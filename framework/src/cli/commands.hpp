// The command line: `pg2kafka run|check|plugins ...`. Exit codes are part of the contract.
#pragma once

#include "runtime/exit_codes.hpp"

namespace pg2kafka::cli {

int main_entry(int argc, char** argv);

}  // namespace pg2kafka::cli
