/* placeholder: replaced by the daemon */
#include "adx_server.h"
#include <stdio.h>
int srv_main(int argc, char **argv)
{
    fprintf(stderr, "anndata-exportd: serve is not built yet\n");
    return 1;
}
