/*
** The barrier's write lock, see wlock.h.
**
** One waiter thread per pin.  The main thread raises `want` and waits on a
** condition variable up to its deadline; the waiter blocks in
** F_OFD_SETLKW and, once it has the lock, hands it over (`held`) if it is
** still wanted, else unlocks at once.  Only the waiter ever blocks in the
** kernel, so a timeout never needs to interrupt a syscall; only closing
** does, while the waiter may block for as long as the app holds the lock.
**
** Closing interrupts it with a signal, never pthread_cancel: cancelling
** unwinds the thread's stack without running its frames' epilogues, so
** ASan's shadow of that stack stays poisoned and its own code at thread
** exit reported a stack-buffer-overflow in its sigaltstack interceptor
** (every run of test_wlock under `make asan`; google/sanitizers#1399), and
** a run was once seen hanging.  WLOCK_SIG has a no-op handler installed
** without SA_RESTART, so the fcntl returns EINTR and the waiter finds
** `quit`.  Polling F_OFD_SETLK instead would lose the wake-up at the app's
** very next unlock, the reason this file exists.  The waiter starts with
** every signal blocked and unblocks only WLOCK_SIG: it takes no signal
** meant for another thread (cli/cmd_replicate.c blocks its own in its
** threads, which create ours).
**
** The brake (wlock.h) runs on the same thread: while armed and not asked
** for the lock, the waiter reads the wal-index header every BRAKE_POLL_MS,
** and once mxFrame is past the limit it asks for the lock itself and keeps
** it.  The main thread stays blind while it writes an object (its fsync
** can stall for 0.2-0.4 s behind a flood's writeback), this thread does not.
*/
#include "wlock.h"
#include "common.h"
#include "wal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SHM_LOCK_WRITE 120 /* unix VFS: WAL_WRITE_LOCK's byte in -shm */
/* Reserved for this file: cli/cmd_replicate.c uses SIGRTMIN+2 and +3. */
#define WLOCK_SIG (SIGRTMIN + 4)
/* A signal sent just before the waiter entered the kernel is lost (the
** handler ran, the fcntl then blocks), so closing sends again this often. */
#define KICK_MS 10
/* The brake's look, every 5 ms, and every 1 ms once past 3/4 of the limit:
** a 64 KiB writer starting from idle writes ~800 MB/s (4 MB in 5 ms), and
** on two busy cores the waiter wakes late. */
#define BRAKE_POLL_MS 5
#define BRAKE_NEAR_POLL_MS 1

struct ws_wlock {
  int fd;
  pthread_t th;
  pthread_mutex_t mu;
  pthread_cond_t cv;       /* CLOCK_MONOTONIC */
  int want, held, quit;
  int inkernel;            /* the waiter is in (or about to enter) the fcntl */
  int gone;                /* the waiter has left its loop for good */
  int orphan;              /* closed while stuck: the waiter frees w */
  int err;                 /* errno of a failed wait, reported once */
  int armed;               /* the brake: look at the wal-index ... */
  uint32_t limit;          /* ... and take the lock once mxFrame is past this */
  int tripped;             /* the brake asked for the lock (want), or holds it */
  int64_t held_ms;         /* when the brake got it (monotonic) */
  unsigned trips;          /* times the brake asked for the lock */
  unsigned expired;        /* brake locks dropped at hold_ms, since disarm */
  int hold_ms;             /* ... the longest a brake lock waits to be taken over */
};

static pthread_once_t sig_once = PTHREAD_ONCE_INIT;
static int sig_errno;      /* sigaction's failure, if it failed */

static void on_wlock_sig(int sig) { (void)sig; }

static void install_sig(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_wlock_sig;
  sa.sa_flags = 0;         /* no SA_RESTART: the fcntl must return EINTR */
  sigemptyset(&sa.sa_mask);
  if (sigaction(WLOCK_SIG, &sa, NULL) != 0) sig_errno = errno;
}

/* Is WLOCK_SIG still ours?  A program embedding the library may have
** changed it since: ignored or SA_RESTART, the fcntl is never interrupted
** (close would wait as long as the app holds the lock); SIG_DFL, the signal
** would kill the process. */
static int sig_ours(void) {
  struct sigaction cur;
  return sigaction(WLOCK_SIG, NULL, &cur) == 0 && cur.sa_handler == on_wlock_sig &&
         !(cur.sa_flags & SA_RESTART);
}

static void wlock_free(ws_wlock *w) {
  close(w->fd);            /* drops the lock if it was still held */
  pthread_cond_destroy(&w->cv);
  pthread_mutex_destroy(&w->mu);
  free(w);
}

static int lockop(int fd, short type, int cmd) {
  struct flock fl;
  memset(&fl, 0, sizeof(fl));
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = SHM_LOCK_WRITE;
  fl.l_len = 1;
  return fcntl(fd, cmd, &fl);
}

/* ms from now on CLOCK_MONOTONIC (cv's clock). */
static struct timespec deadline(int ms) {
  struct timespec dl;
  clock_gettime(CLOCK_MONOTONIC, &dl);
  dl.tv_sec += ms / 1000;
  dl.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (dl.tv_nsec >= 1000000000L) dl.tv_sec++, dl.tv_nsec -= 1000000000L;
  return dl;
}

/* Wait on cv for at most ms; w->mu held. */
static void cond_wait_ms(ws_wlock *w, int ms) {
  struct timespec dl = deadline(ms);
  pthread_cond_timedwait(&w->cv, &w->mu, &dl);
}

/* The brake's test: is the WAL past lim with frames left to backfill?  A
** fully backfilled WAL restarts at the app's next write (a barrier's usual
** end): nothing to hold back.  near: readable and past 3/4 of lim. */
static int brake_over(ws_wlock *w, uint32_t lim, int *near) {
  uint32_t mx, nb;
  int ok = ws_walidx_peek(w->fd, &mx, &nb, NULL) && nb < mx;
  if (near) *near = ok && mx > lim - lim / 4;
  return ok && mx > lim;
}

static void *waiter(void *arg) {
  ws_wlock *w = arg;
  sigset_t ss;
  sigemptyset(&ss);
  sigaddset(&ss, WLOCK_SIG);
  pthread_sigmask(SIG_UNBLOCK, &ss, NULL);
  pthread_mutex_lock(&w->mu);
  for (;;) {
    while (!w->quit && (w->held ? !w->tripped : !w->want && !w->armed))
      pthread_cond_wait(&w->cv, &w->mu);
    if (w->quit) break;
    if (w->held) { /* the brake's, not taken over yet: not for long */
      int64_t left = w->held_ms + w->hold_ms - ws_mono_ms();
      if (left > 0) {
        cond_wait_ms(w, (int)left);
        continue;
      }
      lockop(w->fd, F_UNLCK, F_OFD_SETLK);
      w->held = w->tripped = w->armed = 0;
      w->expired++;
      pthread_cond_broadcast(&w->cv);
      continue;
    }
    if (!w->want) { /* the brake: look */
      uint32_t lim = w->limit;
      int near;
      pthread_mutex_unlock(&w->mu);
      int over = brake_over(w, lim, &near);
      pthread_mutex_lock(&w->mu);
      if (!over) {
        if (w->armed && !w->quit) cond_wait_ms(w, near ? BRAKE_NEAR_POLL_MS : BRAKE_POLL_MS);
        continue;
      }
      if (!w->armed || w->want || w->held || w->quit) continue; /* changed meanwhile */
      w->want = w->tripped = 1;
      w->trips++;
    }
    w->inkernel = 1;
    pthread_mutex_unlock(&w->mu);
    int r = lockop(w->fd, F_WRLCK, F_OFD_SETLKW);
    int e = errno;
    pthread_mutex_lock(&w->mu);
    w->inkernel = 0;
    if (r == 0 && w->want && !w->quit && w->tripped && !brake_over(w, w->limit, NULL)) {
      /* Queued behind an app checkpoint, say, which backfilled or reset
      ** the WAL meanwhile: nothing to hold back any more. */
      lockop(w->fd, F_UNLCK, F_OFD_SETLK);
      w->want = w->tripped = 0;
    } else if (r == 0 && w->want && !w->quit) {
      w->held = 1;
      w->want = 0;
      if (w->tripped) w->held_ms = ws_mono_ms();
    } else if (r == 0) {
      lockop(w->fd, F_UNLCK, F_OFD_SETLK); /* given up meanwhile */
    } else if (e != EINTR) {
      w->err = e;
      w->want = 0;
      w->tripped = w->armed = 0; /* the brake gives up until armed again */
    }
    pthread_cond_broadcast(&w->cv);
  }
  w->gone = 1;
  int orphan = w->orphan;
  pthread_cond_broadcast(&w->cv);
  pthread_mutex_unlock(&w->mu);
  if (orphan) wlock_free(w);
  return NULL;
}

int ws_wlock_open(ws_wlock **out, const char *shm_path, ws_err *err) {
  *out = NULL;
  pthread_once(&sig_once, install_sig);
  if (sig_errno)
    return ws_fail(err, WS_EIO, "write-lock waiter's signal: %s", strerror(sig_errno));
  ws_wlock *w = ws_calloc(1, sizeof(*w), err);
  if (!w) return WS_ENOMEM;
  w->fd = open(shm_path, O_RDWR | O_CLOEXEC);
  if (w->fd < 0) {
    int rc = ws_fail(err, WS_EIO, "open %s: %s", shm_path, strerror(errno));
    free(w);
    return rc;
  }
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&w->cv, &ca);
  pthread_condattr_destroy(&ca);
  pthread_mutex_init(&w->mu, NULL);
  /* born with every signal blocked; the waiter unblocks WLOCK_SIG alone */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int e = pthread_create(&w->th, NULL, waiter, w);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (e) {
    close(w->fd);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
    return ws_fail(err, WS_ENOMEM, "write-lock waiter thread: %s", strerror(e));
  }
  *out = w;
  return WS_OK;
}

int ws_wlock_acquire(ws_wlock *w, int wait_ms, ws_err *err) {
  struct timespec dl = deadline(wait_ms);
  pthread_mutex_lock(&w->mu);
  /* The caller's from here: the brake stops, and a trip waiting in the
  ** kernel becomes this wait (no re-check on arrival). */
  w->armed = w->tripped = 0;
  if (w->held) { /* the brake's: the caller takes it over */
    pthread_mutex_unlock(&w->mu);
    return WS_OK;
  }
  w->want = 1;
  w->err = 0;
  pthread_cond_broadcast(&w->cv);
  while (!w->held && !w->err)
    if (pthread_cond_timedwait(&w->cv, &w->mu, &dl) == ETIMEDOUT) break;
  int held = w->held, e = w->err;
  if (!held) w->want = 0; /* abandoned: the waiter drops a late lock */
  pthread_mutex_unlock(&w->mu);
  if (held) return WS_OK;
  if (e) return ws_fail(err, WS_EIO, "write lock on -shm: %s", strerror(e));
  return ws_fail(err, WS_ELOCKED, "write lock busy for %d ms", wait_ms);
}

void ws_wlock_release(ws_wlock *w) {
  pthread_mutex_lock(&w->mu);
  if (w->held) {
    lockop(w->fd, F_UNLCK, F_OFD_SETLK);
    w->held = 0;
  }
  w->tripped = 0;
  pthread_cond_broadcast(&w->cv); /* an armed waiter looks again */
  pthread_mutex_unlock(&w->mu);
}

void ws_wlock_arm(ws_wlock *w, uint32_t limit_mx, int hold_ms) {
  pthread_mutex_lock(&w->mu);
  w->limit = limit_mx;
  w->hold_ms = hold_ms;
  if (!w->armed) {
    w->armed = 1;
    pthread_cond_broadcast(&w->cv);
  }
  pthread_mutex_unlock(&w->mu);
}

unsigned ws_wlock_trips(ws_wlock *w) {
  pthread_mutex_lock(&w->mu);
  unsigned n = w->trips;
  pthread_mutex_unlock(&w->mu);
  return n;
}

int ws_wlock_braked(ws_wlock *w, int64_t *since_ms) {
  pthread_mutex_lock(&w->mu);
  int held = w->held && w->tripped;
  if (held && since_ms) *since_ms = w->held_ms;
  pthread_mutex_unlock(&w->mu);
  return held;
}

int ws_wlock_disarm(ws_wlock *w, int64_t *since_ms, unsigned *expired) {
  pthread_mutex_lock(&w->mu);
  w->armed = 0;    /* a look in progress sees it; a timed wait just ends */
  int held = w->held && w->tripped;
  if (held && since_ms) *since_ms = w->held_ms;
  if (held) w->tripped = 0; /* the caller's now: no expiry */
  if (expired) *expired = w->expired;
  w->expired = 0;
  if (w->tripped && !w->held) { /* still waiting in the kernel: abandon */
    w->want = 0;
    w->tripped = 0;
  }
  pthread_mutex_unlock(&w->mu);
  return held;
}

void ws_wlock_close(ws_wlock *w) {
  if (!w) return;
  pthread_mutex_lock(&w->mu);
  w->quit = 1;
  w->want = 0;
  pthread_cond_broadcast(&w->cv);
  if (!w->gone && w->inkernel && !sig_ours()) {
    /* Cannot interrupt it: leave it to return when the app unlocks (it
    ** then unlocks too, sees quit) and free w itself. */
    w->orphan = 1;
    pthread_mutex_unlock(&w->mu);
    pthread_detach(w->th);
    return;
  }
  while (!w->gone) {
    if (w->inkernel) pthread_kill(w->th, WLOCK_SIG);
    cond_wait_ms(w, KICK_MS);
  }
  pthread_mutex_unlock(&w->mu);
  pthread_join(w->th, NULL);
  wlock_free(w);
}
