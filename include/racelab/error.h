/*
 * racelab/error.h - status codes, timeouts and messages.
 *
 * Every racelab call that can fail returns an int: 0 on success, otherwise a
 * positive code.  POSIX codes are used where one fits (EINVAL, ENOMEM, EPERM,
 * EAGAIN, ETIMEDOUT, EOVERFLOW, EDEADLK); racelab's own codes below stand for
 * the Python exceptions that have no errno twin (BrokenBarrierError,
 * queue.ShutDown, CancelledError, EOFError ...).  They are numbered well clear
 * of any errno value, so one int carries both.
 *
 * Timeouts are double seconds, as in Python: RLAB_FOREVER (-1.0), +INFINITY or
 * any value too large to represent blocks without a deadline; 0 tries once;
 * any other negative value or NaN is EINVAL.
 */
#ifndef RACELAB_ERROR_H
#define RACELAB_ERROR_H

#include <errno.h> /* the POSIX codes racelab returns: EAGAIN, ETIMEDOUT ... */

#ifdef __cplusplus
extern "C" {
#endif

/* Block without a deadline (Python's timeout=None). */
#define RLAB_FOREVER (-1.0)

/* racelab's own status codes, all greater than any errno value. */
enum {
    RLAB_EBROKEN = 10001,   /* broken barrier or pool (BrokenBarrierError)  */
    RLAB_ESHUTDOWN = 10002, /* queue or executor shut down (queue.ShutDown) */
    RLAB_ECANCELLED = 10003, /* future cancelled (CancelledError)           */
    RLAB_EEOF = 10004,      /* peer closed, nothing more to read (EOFError) */
    RLAB_EOWNERDEAD = 10005 /* lock recovered from a dead holder            */
};

/* A message for any code: racelab's own, an errno value, or 0.  Never NULL;
 * the string is static and must not be freed. */
const char *rlab_strerror(int code);

#ifdef __cplusplus
}
#endif

#endif
