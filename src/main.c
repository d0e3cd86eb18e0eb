/* placeholder: replaced by the CLI */
#include "adx_server.h"
int main(int argc, char **argv) { return argc > 1 ? srv_main(argc - 1, argv + 1) : 0; }
