/*
** Waking up on change: inotify on the database's directory, filtered to the
** database and its -wal file, with a plain timeout as the fallback (and as
** the safety net for any event inotify does not deliver, such as writes
** through a shared mapping).
*/
#ifndef WS_WATCH_H
#define WS_WATCH_H

#include "walship/walship.h"

enum { WS_WATCH_WAL = 1, WS_WATCH_DB = 2, WS_WATCH_KICK = 4 };

typedef struct ws_watch ws_watch;

/* Never fails for lack of inotify: falls back to polling. */
int ws_watch_open(ws_watch **out, const char *db_path, ws_err *err);
void ws_watch_close(ws_watch *w);
/* Wait up to timeout_ms; returns a WS_WATCH_* mask (0 on timeout or on a
** signal).  Drains every pending event in one go.  With events == 0 it
** sleeps the whole timeout regardless of file activity (the caller already
** knows there is work and is only waiting for its time to come), then
** drains; the app's writes then raise no events at all (they cost the app
** CPU).  The first call with events != 0 after that returns at once (mask
** of what is queued, usually 0) so the caller re-reads the files before
** sleeping. */
int ws_watch_wait(ws_watch *w, int timeout_ms, int events);
/* Is inotify on (else every change waits for the caller's timeout)? */
int ws_watch_inotify(const ws_watch *w);
/* Also wake (WS_WATCH_KICK) when fd becomes readable (an eventfd: it is
** read to reset it); -1 for none. */
void ws_watch_set_kick(ws_watch *w, int fd);

#endif
