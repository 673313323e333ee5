#include "cli.h"

int main(int argc, char** argv) { return kpiscale::cli::Main(argc, argv); }
