// The command line: `pg2kafka run|check|plugins ...`. Exit codes are part of the contract.
#pragma once

namespace pg2kafka::cli {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;  // unexpected internal error
constexpr int kExitConfig = 2;   // bad command line or configuration
constexpr int kExitPlugin = 3;   // a plugin cannot be found, loaded or trusted
constexpr int kExitRuntime = 4;  // the pipeline failed while running

int main_entry(int argc, char** argv);

}  // namespace pg2kafka::cli
