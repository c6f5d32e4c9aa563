#include "pprofd/app/app.hpp"

int main(int argc, char** argv) { return pprofd::app::main(argc, argv); }
