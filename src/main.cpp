#include "cli/cli.hpp"
#include "util/memory.hpp"

int main(int argc, char** argv) {
  ephemera::util::tune_allocator();
  return ephemera::cli::run(argc, argv);
}
