/*
** The pin: a read transaction the sidecar always holds on the database, so
** that no checkpoint can reset the WAL over frames it has not shipped.
**
** Two connections take turns.  ws_pin_swap opens a read transaction on the
** idle one, then ends the old one, so there is never a moment without a pin.
** Why that is enough (WAL-NOTES.md, docs/DESIGN.md): a reader on slot >= 1
** forbids any WAL reset; a reader on slot 0 (taken when the WAL was fully
** backfilled) allows one reset but forbids backfilling any later frame,
** hence a second reset.  The caller's rule: swap only after it has shipped
** every frame it could see after the current pin was taken ("covered").
** Then a new pin lands on slot 0 only if every frame in the WAL is already
** shipped, and on slot >= 1 otherwise, and nothing can be lost.
**
** Our connections never write, never autocheckpoint and never checkpoint on
** close (SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE), so the sidecar stopping never
** folds unshipped frames into the database.
*/
#ifndef WS_PIN_H
#define WS_PIN_H

#include <stdint.h>
#include "walship/walship.h"

typedef struct ws_pin ws_pin;

/* Opens both connections; WS_ENOTWAL (with how to switch) unless the
** database is in WAL mode; WS_ENOTFOUND if it does not exist. */
int ws_pin_open(ws_pin **out, const char *db_path, ws_err *err);
void ws_pin_close(ws_pin *p);

/* Take a read transaction on the idle connection, then release the old one. */
int ws_pin_swap(ws_pin *p, ws_err *err);
/* End the current read transaction without taking a new one (shutdown). */
void ws_pin_release(ws_pin *p);

/* Let go of the pin's read-lock slot for up to hold_ms, then pin again at
** the WAL's end; WS_OK with *yielded = 0 when it did not (mxFrame is not
** `mx`, the caller's shipped end, or someone holds read-lock 0
** exclusively).  For an app's blocking checkpoint that waits for our slot
** although our mark is already at the end: it read the mark while we were
** behind and retries only the slot's lock, which a swap never frees (both
** our connections land on that slot, the one with the current mark).
** Safe without a read transaction: a shared lock on read-lock 0 (an OFD
** lock on -shm) is held throughout, and with it no frame can be backfilled,
** so none can be reset (a restart needs the whole WAL backfilled).  The
** wait ends early once the app's checkpoint lock is free.  If the new pin
** cannot be taken there is none (ws_pin_held() is 0): re-attach. */
int ws_pin_yield(ws_pin *p, uint32_t mx, int hold_ms, int *yielded, ws_err *err);

/* PASSIVE checkpoint from the idle connection: never waits for the app's
** writers or readers.  nlog and nckpt as in sqlite3_wal_checkpoint_v2. A busy
** checkpoint lock (the app is checkpointing) is not an error: *nlog = -1. */
int ws_pin_checkpoint(ws_pin *p, int *nlog, int *nckpt, ws_err *err);

/* The write-lock barrier, for a WAL that keeps growing under a writer that
** never pauses: begin takes the app's write lock (wlock.h: waiting in the
** kernel at most wait_ms; WS_ELOCKED if it could not) and a read
** transaction on the idle connection, so no frame can be appended.  The caller ships the rest of the WAL, then end releases
** the old pin, checkpoints (everything is shipped and nothing new can come,
** so the backfill completes), re-pins on the idle connection (now slot 0)
** and releases the write lock.  The app's writers wait only for that span. */
int ws_pin_barrier_begin(ws_pin *p, int wait_ms, ws_err *err);
int ws_pin_barrier_end(ws_pin *p, int *nlog, int *nckpt, ws_err *err);
/* Abandon a barrier (on a failed ship): drop the write lock, keep the pin. */
void ws_pin_barrier_abort(ws_pin *p);

/* The brake (wlock.h), around work that may block the caller (writing an
** object): once the WAL's mxFrame passes limit_mx, another thread takes
** the app's write lock and keeps it, so the WAL stops growing while we
** cannot look.  ws_pin_brake_held: it holds the lock now (since_ms may be
** NULL).  ws_pin_brake_off: disarm, with the same answer, and how many
** brake locks were dropped unused after hold_ms (wlock.h; may be NULL).
** A held brake belongs to the caller: ws_pin_barrier_begin uses it (at
** once), or ws_pin_brake_release drops it.  If the lock cannot be opened
** there is simply no brake. */
void ws_pin_brake_arm(ws_pin *p, uint32_t limit_mx, int hold_ms);
int ws_pin_brake_held(ws_pin *p, int64_t *since_ms);
int ws_pin_brake_off(ws_pin *p, int64_t *since_ms, unsigned *expired);
void ws_pin_brake_release(ws_pin *p);

/* Not a hint: the pin was taken by a barrier (ws_pin_barrier_end) on a
** fully backfilled WAL with every frame shipped, so it holds read-lock 0,
** and while it does no frame can be backfilled, in this cycle or the
** next.  Such a pin may be swapped without shipping first (the swap rule,
** DESIGN.md, asks coverage only of pins that could hide unshipped frames):
** the new pin lands on read-lock 0 only if the WAL is fully backfilled,
** i.e. holds nothing written since (all shipped) or is empty; anywhere
** else it forbids every reset.  Cleared by any other take. */
int ws_pin_clean(const ws_pin *p);

/* Hint (never used for correctness): the pin was taken on a fully
** backfilled WAL, so it sits on read-lock 0.  There it forbids any backfill,
** and every autocheckpoint of the app builds (sorts) its frame iterator
** before failing on that lock: such a pin must move on soon. */
int ws_pin_slot0(const ws_pin *p);
/* The same, with the WAL's mxFrame when that pin was taken and when
** (ws_mono_ms): how many frames came since, and how fast. */
int ws_pin_slot0_since(const ws_pin *p, uint32_t *mx, int64_t *ms);

/* Hint: could an app checkpoint that waits for our reader (RESTART,
** TRUNCATE) only do so after writing the database file, which inotify
** reports?  Yes when the pin is on read-lock 0 with no commit since (such
** a checkpoint does not wait for it), or when the WAL (mx, nb: from
** ws_pin_shm_peek) has frames up to the pin's mark still to backfill.
** The idle loop then sleeps on file events instead of polling. */
int ws_pin_waits_on_writes(const ws_pin *p, uint32_t mx, uint32_t nb);

/* Non-zero while a pin is held (zero after a failed barrier: re-attach). */
int ws_pin_held(const ws_pin *p);

/* The -shm our peeks read is no longer the file at its path (removed or
** replaced): its mxFrame would stay where it was while the app writes. */
int ws_pin_shm_replaced(ws_pin *p);

/* Still in WAL mode?  WS_ENOTWAL with a message if the app switched away. */
int ws_pin_check_wal_mode(ws_pin *p, ws_err *err);

/* The wal-index (-shm) header, read without locks (ws_walidx_peek checks
** its two copies agree).  Hints for when to look, and the bound of a sync's
** scan (ship_committed_end): a value too high only lets the chain check
** decide, as without it; one too low would stall shipping, which is why a
** -shm replaced under us makes the loop re-attach (ws_pin_shm_replaced).
** Returns 0 if unavailable. */
int ws_pin_shm_peek(ws_pin *p, uint32_t *mx_frame, uint32_t *n_backfill);
/* The same, and the WAL cycle's salts (salt1 << 32 | salt2, as stored):
** they change at every reset, which mxFrame alone does not tell apart from
** a WAL that grew back past where it was. */
int ws_pin_shm_peek_cycle(ws_pin *p, uint32_t *mx_frame, uint32_t *n_backfill,
                          uint64_t *cycle);

/* Another process holds the checkpoint and the write lock: a blocking app
** checkpoint (FULL/RESTART/TRUNCATE) may be waiting, in its busy handler,
** for our reader to move.  A hint: three fcntl(F_GETLK) and two peeks. */
int ws_pin_ckpt_locked(ws_pin *p);
/* Another process holds the checkpoint lock (any checkpoint, PASSIVE too,
** is running): one fcntl(F_GETLK). */
int ws_pin_app_ckpt_lock(ws_pin *p);

#endif
