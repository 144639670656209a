// The process's exit codes: part of the contract (README, `pg2kafka --help`).
#pragma once

namespace pg2kafka {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;  // unexpected internal error
constexpr int kExitConfig = 2;   // bad command line or configuration (also a plugin refusing it)
constexpr int kExitPlugin = 3;   // a plugin cannot be found, loaded or trusted
// The pipeline failed while running, or its stop was forced or left records unconfirmed.
constexpr int kExitRuntime = 4;
// `status`: the state was read, and it lists problems that need attention.
constexpr int kExitProblems = 5;

}  // namespace pg2kafka
