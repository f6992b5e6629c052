/* explore_cpu.c — the CPU reference of the exploration operations (kernels/explore.h). */
#include "../backend.h"
