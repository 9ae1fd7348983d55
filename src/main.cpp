#include "cli/cli.hpp"

int main(int argc, char** argv) { return ephemera::cli::run(argc, argv); }
