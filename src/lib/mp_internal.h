/*
 * mp_internal.h - what the multiprocessing sources (process.c, pipe.c,
 * shm.c) need from each other.  Not installed.
 */
#ifndef RLAB_MP_INTERNAL_H
#define RLAB_MP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "racelab/multiprocessing.h"

/* ---- pipe.c ---- */

/* The descriptor behind a connection, and which way it may be used, so a
 * connection can be handed to a child (inherited across fork, or passed
 * with SCM_RIGHTS / kept open across exec). */
int rlab__conn_fd(const rlab_conn *c);
bool rlab__conn_can_read(const rlab_conn *c);
bool rlab__conn_can_write(const rlab_conn *c);
/* Adopts fd (the child's copy) as a connection; NULL on ENOMEM.  The
 * connection owns fd.  (Also NULL, errno EBADF, for fd < 0, and EINVAL
 * for neither direction; on failure fd stays the caller's.)  The kind
 * (socket or pipe) is read from fd. */
rlab_conn *rlab__conn_adopt(int fd, bool can_read, bool can_write);
/* True when a recv on c can go on without the descriptor becoming
 * readable: a whole header is already buffered, a message is half read,
 * or end of file was seen.  A connection reads ahead into its own buffer,
 * so whoever waits on several connections' descriptors with poll()
 * (connection.wait, a pool's result loop) must check this first: data
 * already buffered no longer shows on the descriptor. */
bool rlab__conn_buffered(const rlab_conn *c);

/* ---- shm.c ---- */

/* The shared arena every process-shared object lives in: one memfd,
 * mapped at the same address in every process so pointers stay valid.
 * Export: 0 and its fd, address and size; ENOENT when no shared object
 * was ever made (nothing to pass).  The fd stays the arena's (close-on-exec;
 * do not close it).  Import (in a spawn or forkserver child, before any
 * task code runs): maps fd at addr; 0, or ENOMEM when that address range
 * is taken in the child; EINVAL when fd is not an arena of that size
 * (EBADF and the like when fd is not open); EBUSY when this process
 * already made or imported an arena elsewhere.  Import
 * keeps a close-on-exec duplicate: the caller still owns fd (and may close
 * it).  Fork children inherit the mapping and need neither. */
int rlab__shm_export(int *fd, void **addr, size_t *size);
int rlab__shm_import(int fd, void *addr, size_t size);

/* ---- process.c ---- */

/* True in a process racelab started (spawn, forkserver, fork child). */
bool rlab__mp_is_child(void);

#endif
