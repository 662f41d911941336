/*
 * racelab.h - the umbrella header of librlab: Python's concurrency toolkit in
 * C.  Include this, or one module header from racelab/.
 */
#ifndef RACELAB_H
#define RACELAB_H

#define RLAB_VERSION_MAJOR 0
#define RLAB_VERSION_MINOR 1
#define RLAB_VERSION_PATCH 0
#define RLAB_VERSION_STRING "0.1.0"

#include "racelab/error.h"
#include "racelab/threading.h"
#include "racelab/queue.h"
#include "racelab/futures.h"
#include "racelab/multiprocessing.h"
#include "racelab/gil.h"
#include "racelab/stress.h"

#endif
