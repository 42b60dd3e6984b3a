/*
** Winning the app's WAL write lock for a write barrier (pin.h).
**
** SQLite's own way (BEGIN IMMEDIATE with a busy timeout) polls with growing
** sleeps, and a writer that never pauses re-takes the lock microseconds
** after each commit: against an unthrottled writer with 64 KiB pages the
** barrier almost never got in, and the WAL grew to hundreds of MB.  Here a
** helper thread waits in the kernel (fcntl F_OFD_SETLKW on the write-lock
** byte of -shm), which wakes it at the app's very next unlock.
**
** It is an open-file-description lock, not a classic POSIX one: closing it
** never drops the locks SQLite holds in this process on the same file, and
** it conflicts with our own connections as with the app's, so while it is
** held nobody, us included, can begin a write transaction.  Our connections
** never write: that is exactly the barrier.
*/
#ifndef WS_WLOCK_H
#define WS_WLOCK_H

#include "walship/walship.h"

#include <stdint.h>

typedef struct ws_wlock ws_wlock;

/* Opens shm_path (the database's -shm) read-write and starts the waiter. */
int ws_wlock_open(ws_wlock **out, const char *shm_path, ws_err *err);
/* Wait at most wait_ms for the write lock: WS_OK (held until release) or
** WS_ELOCKED.  A wait that times out is abandoned: if the lock comes later
** the waiter drops it at once. */
int ws_wlock_acquire(ws_wlock *w, int wait_ms, ws_err *err);
void ws_wlock_release(ws_wlock *w);

/* The brake: while the main thread is busy elsewhere (writing an object,
** whose fsync can stall for hundreds of ms behind the app's writeback), the
** waiter looks at the wal-index every few ms and, once its mxFrame is past
** limit_mx, takes the write lock as acquire would, and keeps it: the WAL
** stops growing there.  The lock is then the caller's: a later acquire
** returns at once with it, release drops it.
** The lock is re-checked when it arrives (no longer past the limit, or
** fully backfilled: dropped at once), and one that nobody took over within
** hold_ms is dropped too, and the brake disarmed: the sync it waited for
** is stuck, and the app's writers must not wait for all of its retries.
** ws_wlock_braked: non-zero (and since_ms, monotonic) while the brake holds
** the lock.  ws_wlock_disarm: stop looking; the same answer, and a held
** lock is then the caller's (a wait still in the kernel is abandoned, and
** a lock that comes later dropped);
** expired (may be NULL): brake locks dropped after hold_ms since the
** last disarm.  ws_wlock_trips: times the brake asked for the lock. */
void ws_wlock_arm(ws_wlock *w, uint32_t limit_mx, int hold_ms);
int ws_wlock_braked(ws_wlock *w, int64_t *since_ms);
int ws_wlock_disarm(ws_wlock *w, int64_t *since_ms, unsigned *expired);
unsigned ws_wlock_trips(ws_wlock *w);
void ws_wlock_close(ws_wlock *w);

#endif
