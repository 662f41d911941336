/* error.c - rlab_strerror: a message for racelab's codes and errno values. */
#include <string.h>

#include "racelab/error.h"

const char *rlab_strerror(int code)
{
    switch (code) {
    case 0:
        return "success";
    case RLAB_EBROKEN:
        return "broken barrier or pool (BrokenBarrierError)";
    case RLAB_ESHUTDOWN:
        return "queue or executor shut down (ShutDown)";
    case RLAB_ECANCELLED:
        return "future cancelled (CancelledError)";
    case RLAB_EEOF:
        return "end of file: the peer closed the connection (EOFError)";
    case RLAB_EOWNERDEAD:
        return "lock recovered: its previous holder died while holding it";
    default:
        break;
    }
    /* strerrordesc_np is thread-safe and returns NULL for unknown codes. */
    const char *msg = code > 0 ? strerrordesc_np(code) : NULL;
    return msg ? msg : "unknown racelab error code";
}
