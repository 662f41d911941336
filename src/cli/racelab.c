#include <stdio.h>
#include "racelab.h"
int main(void) { printf("racelab %s\n", RLAB_VERSION_STRING); return 0; }
