#include "cli/commands.hpp"

int main(int argc, char** argv) {
  return pg2kafka::cli::main_entry(argc, argv);
}
