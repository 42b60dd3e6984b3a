/*
** The file store: objects are regular files under a root directory, the
** object name is the relative path ("seg/…-….seg" -> ROOT/seg/…-….seg).
**
** Invariants:
**   - an object file is complete or absent: put writes a hidden temp file
**     (".NAME.tmp-PID-N") in the object's own directory, fsyncs it, renames
**     it over the final name and fsyncs the directory, so a crash leaves at
**     most a hidden temp that list never reports;
**   - hidden entries (leading '.') are reserved for those temps: list skips
**     them and put refuses object names with a hidden segment;
**   - the root is created (mkdir -p) and checked at the first put, never
**     at open, so read-only stores open for restore and ls and a mistyped
**     path leaves nothing behind;
**   - from then on every put checks the root is still that directory (same
**     device and inode): a root removed or replaced while in use took the
**     history's snapshot with it, and silently recreating it would let the
**     sidecar report as durable segments that no restore can use;
**   - put_if (conditional write) takes an exclusive flock on the object's
**     directory for its check and its link/rename, so between walship
**     processes the check and the write are one step.  "Must not exist" is
**     link(2) of the complete temp, which fails with EEXIST even against a
**     plain put; "if-match" compares the version token (inode, size, mtime
**     and ctime in ns: every put makes a new inode by rename) under the
**     lock.  No lock file: the store holds only objects and temps.  On a
**     network file system (NFS, SMB, FUSE, Ceph...: statfs at open) flock
**     is not coherent across hosts, or not possible on a directory, so
**     put_if is not offered there and the lease falls back to read-back;
**   - get reads through one 256 KiB buffer per store, reused across calls
**     (taken with an atomic swap, so concurrent gets stay correct: the
**     loser of the race allocates its own).
*/
#include "store_int.h"
#include "common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#define FS_READ_BUF (256u << 10)
#define FS_DEPTH_MAX 16          /* directory nesting list will follow */

typedef struct file_store {
  ws_store base;               /* must be first */
  char *root;                  /* directory, no trailing '/' (except "/") */
  _Atomic(uint8_t *) buf;      /* cached read buffer, NULL while in use */
  atomic_ulong seq;            /* temp-name counter */
  atomic_int root_ok;          /* root verified usable for puts */
  dev_t root_dev;              /* the root's identity once root_ok is set */
  ino_t root_ino;
} file_store;

typedef struct file_upload {
  ws_upload base;              /* must be first */
  int fd;
  char *tmp;                   /* temp path */
  char *path;                  /* final path */
  uint64_t dirty;              /* bytes since the last writeback start */
} file_upload;

static const ws_store_methods file_methods, file_methods_plain;

/* Is path (or its nearest existing ancestor: the root may not exist yet)
** on a network or user-space file system, where flock does not serialise
** writers on other hosts?  Unknown counts as local. */
static int network_fs(const char *path) {
  static const unsigned long magic[] = {
    0x6969,      /* NFS */      0x517B,      /* SMB */
    0xFF534D42,  /* CIFS */     0xFE534D42,  /* SMB2 */
    0x65735546,  /* FUSE */     0x00C36400,  /* Ceph */
    0x01021997,  /* 9P */       0x47504653,  /* GPFS */
    0x0BD00BD0,  /* Lustre */   0x6B414653,  /* AFS */
  };
  char *p = strdup(path);
  struct statfs sf;
  int rc = -1;
  while (p && (rc = statfs(p, &sf)) != 0 && errno == ENOENT) {
    char *slash = strrchr(p, '/');
    if (!slash) { strcpy(p, "."); }
    else if (slash == p) { p[1] = '\0'; }
    else { *slash = '\0'; }
    if (strcmp(p, ".") == 0 || strcmp(p, "/") == 0) { rc = statfs(p, &sf); break; }
  }
  free(p);
  if (rc != 0) return 0;
  for (size_t i = 0; i < sizeof(magic) / sizeof(magic[0]); i++)
    if ((unsigned long)sf.f_type == magic[i]) return 1;
  return 0;
}

/* ROOT/name; the name was validated so it cannot escape the root. */
static char *obj_path(const file_store *fs, const char *name, ws_err *err) {
  if (strcmp(fs->root, "/") == 0) return ws_asprintf(err, "/%s", name);
  return ws_asprintf(err, "%s/%s", fs->root, name);
}

/* mkdir -p path.  *created is set when a directory was made (the caller
** then fsyncs the parents so the new entries survive a crash). */
static int mkdir_p(const char *path, int *created, ws_err *err) {
  char *p = ws_strdup(path, err);
  if (!p) return WS_ENOMEM;
  int rc = WS_OK;
  for (char *s = p + 1;; s++) {
    if (*s != '/' && *s != '\0') continue;
    char save = *s;
    *s = '\0';
    if (mkdir(p, 0755) == 0) {
      if (created) *created = 1;
    } else if (errno != EEXIST) {
      rc = ws_fail(err, WS_EIO, "create directory %s: %s", p, strerror(errno));
      goto out;
    }
    *s = save;
    if (save == '\0') break;
  }
  struct stat sb;
  if (stat(path, &sb) != 0)
    rc = ws_fail(err, WS_EIO, "stat %s: %s", path, strerror(errno));
  else if (!S_ISDIR(sb.st_mode))
    rc = ws_fail(err, WS_EIO, "%s exists and is not a directory", path);
out:
  free(p);
  return rc;
}

/* Checked once per store, at the first put: a root that exists but is a
** file or read-only is a configuration error the user must see clearly. */
static int root_check(file_store *fs, ws_err *err) {
  struct stat sb;
  if (atomic_load(&fs->root_ok)) {
    /* One stat per object: cheap next to the fsyncs of a put. */
    if (stat(fs->root, &sb) != 0 || sb.st_dev != fs->root_dev || sb.st_ino != fs->root_ino)
      return ws_fail(err, WS_EIO, "store root %s was removed or replaced while in use "
                     "(the objects written before are gone; restart to begin a new "
                     "history with a snapshot)", fs->root);
    return WS_OK;
  }
  if (stat(fs->root, &sb) != 0) {
    int rc = mkdir_p(fs->root, NULL, err);
    if (rc) return rc;
    if (stat(fs->root, &sb) != 0)
      return ws_fail(err, WS_EIO, "stat %s: %s", fs->root, strerror(errno));
  } else if (!S_ISDIR(sb.st_mode)) {
    return ws_fail(err, WS_EIO, "store root %s is not a directory", fs->root);
  }
  if (access(fs->root, W_OK | X_OK) != 0)
    return ws_fail(err, WS_EIO, "store root %s is not writable: %s", fs->root,
                   strerror(errno));
  fs->root_dev = sb.st_dev;
  fs->root_ino = sb.st_ino;
  atomic_store(&fs->root_ok, 1);
  return WS_OK;
}

int ws_store_file_open(ws_store **out, const char *url, const char *path,
                       const ws_store_opts *opts, ws_err *err) {
  (void)opts; /* nothing to tune for a local directory */
  if (!*path)
    return ws_fail(err, WS_EINVAL, "store URL %s has no directory", url);
  if (path != url && path[0] != '/')
    return ws_fail(err, WS_EINVAL, "store URL %s: file:// needs an absolute path "
                   "(file:///dir)", url);
  file_store *fs = ws_calloc(1, sizeof(*fs), err);
  if (!fs) return WS_ENOMEM;
  fs->base.m = &file_methods;
  if (!(fs->base.url = ws_strdup(url, err)) || !(fs->root = ws_strdup(path, err))) {
    free(fs->base.url);
    free(fs);
    return WS_ENOMEM;
  }
  for (size_t n = strlen(fs->root); n > 1 && fs->root[n - 1] == '/'; n--)
    fs->root[n - 1] = '\0';
  if (network_fs(fs->root)) fs->base.m = &file_methods_plain;
  /* The root is created by the first put (root_check), never by a read: a
  ** mistyped path given to restore or ls must not leave a directory behind.
  ** A missing root lists as empty. */
  *out = &fs->base;
  return WS_OK;
}

static void file_close(ws_store *st) {
  file_store *fs = (file_store *)st;
  free(atomic_load(&fs->buf));
  free(fs->root);
  free(fs->base.url);
  free(fs);
}

/* ---------------------------------------------------------------- put */

static int file_put_begin(ws_upload **out, ws_store *st, const char *name,
                          ws_err *err) {
  file_store *fs = (file_store *)st;
  file_upload *up = NULL;
  int rc = ws_store_check_name(name, err);
  if (rc) return rc;
  if (name[0] == '.' || strstr(name, "/."))
    return ws_fail(err, WS_EINVAL, "object name %s: names starting with '.' are "
                   "reserved for temp files in the file store", name);
  if ((rc = root_check(fs, err))) return rc;

  rc = WS_ENOMEM;
  if (!(up = ws_calloc(1, sizeof(*up), err))) return rc;
  up->fd = -1;
  up->base.store = st;
  if (!(up->base.name = ws_strdup(name, err)) || !(up->path = obj_path(fs, name, err)))
    goto fail;
  /* Split the final path into directory and base name for the temp. */
  char *slash = strrchr(up->path, '/');
  *slash = '\0';
  up->tmp = ws_asprintf(err, "%s/.%s.tmp-%ld-%lu", up->path, slash + 1,
                        (long)getpid(), atomic_fetch_add(&fs->seq, 1));
  rc = WS_ENOMEM;
  if (!up->tmp) { *slash = '/'; goto fail; }
  /* The directory is there for every object but the first of its kind:
  ** mkdir -p only when the create says it is missing (it was one mkdir per
  ** path component and a stat per object). */
  up->fd = open(up->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (up->fd < 0 && errno == ENOENT) {
    int created = 0;
    if ((rc = mkdir_p(up->path, &created, err))) { *slash = '/'; goto fail; }
    /* New subdirectory: make its entry durable before objects go in it. */
    if (created && (rc = ws_fsync_dir_of(up->path, err))) { *slash = '/'; goto fail; }
    up->fd = open(up->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  }
  *slash = '/';
  if (up->fd < 0) {
    rc = ws_fail(err, WS_EIO, "create %s: %s", up->tmp, strerror(errno));
    goto fail;
  }
  *out = &up->base;
  return WS_OK;
fail:
  free(up->tmp);
  free(up->path);
  free(up->base.name);
  free(up);
  return rc;
}

static int file_put_write(ws_upload *u, const void *buf, size_t len, ws_err *err) {
  file_upload *up = (file_upload *)u;
  int rc = ws_write_full(up->fd, buf, len, up->tmp, err);
  /* a snapshot, or a flood's segment, is mostly on disk by its fsync */
  if (rc == WS_OK) ws_writeback_kick(up->fd, &up->dirty, len);
  return rc;
}

static void upload_free(file_upload *up) {
  free(up->tmp);
  free(up->path);
  free(up->base.name);
  free(up);
}

static void file_put_abort(ws_upload *u) {
  file_upload *up = (file_upload *)u;
  if (up->fd >= 0) close(up->fd);
  unlink(up->tmp);
  upload_free(up);
}

static int file_put_commit(ws_upload *u, ws_err *err) {
  file_upload *up = (file_upload *)u;
  int rc = ws_fsync(up->fd, up->tmp, err);
  int fd = up->fd;
  up->fd = -1;
  if (rc) {
    close(fd);
    goto fail;
  }
  if ((rc = ws_close(fd, up->tmp, err))) goto fail;
  if (rename(up->tmp, up->path) != 0) {
    rc = ws_fail(err, WS_EIO, "rename %s to %s: %s", up->tmp, up->path,
                 strerror(errno));
    goto fail;
  }
  /* Durable only once the directory entry is. The temp is gone now. */
  rc = ws_fsync_dir_of(up->path, err);
  upload_free(up);
  return rc;
fail:
  unlink(up->tmp);
  upload_free(up);
  return rc;
}

/* ------------------------------------------------------------- put_if */

static void etag_of(char *out, const struct stat *sb) {
  snprintf(out, WS_STORE_ETAG_MAX, "%llx-%llx-%llx.%lx-%llx.%lx",
           (unsigned long long)sb->st_ino, (unsigned long long)sb->st_size,
           (unsigned long long)sb->st_mtim.tv_sec, (unsigned long)sb->st_mtim.tv_nsec,
           (unsigned long long)sb->st_ctim.tv_sec, (unsigned long)sb->st_ctim.tv_nsec);
}

static int file_etag(ws_store *st, const char *name, char *out, ws_err *err) {
  file_store *fs = (file_store *)st;
  int rc = ws_store_check_name(name, err);
  if (rc) return rc;
  char *path = obj_path(fs, name, err);
  if (!path) return WS_ENOMEM;
  struct stat sb;
  if (stat(path, &sb) != 0) {
    if (errno == ENOENT || errno == ENOTDIR)
      rc = ws_fail(err, WS_ENOTFOUND, "object %s not found in store %s", name, st->url);
    else
      rc = ws_fail(err, WS_EIO, "stat %s: %s", path, strerror(errno));
  } else if (!S_ISREG(sb.st_mode)) {
    rc = ws_fail(err, WS_ENOTFOUND, "object %s not found in store %s (%s is not a "
                 "regular file)", name, st->url, path);
  } else {
    etag_of(out, &sb);
  }
  free(path);
  return rc;
}

/* The temp is complete and durable; install it under the lock. */
static int install_if(file_store *fs, file_upload *up, const char *if_match,
                      char *etag_out, ws_err *err) {
  char *lock = ws_strdup(up->path, err);
  if (!lock) return WS_ENOMEM;
  *strrchr(lock, '/') = '\0';   /* the object's directory (put_begin made it) */
  int rc = WS_OK, lfd = open(lock, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (lfd < 0) {
    rc = ws_fail(err, WS_EIO, "open directory %s to lock it: %s", lock, strerror(errno));
    goto out;
  }
  while (flock(lfd, LOCK_EX) != 0) {
    if (errno != EINTR) {
      rc = ws_fail(err, WS_EIO, "lock %s: %s", lock, strerror(errno));
      goto out;
    }
  }
  struct stat sb;
  if (!if_match) {
    if (link(up->tmp, up->path) != 0)
      rc = errno == EEXIST
               ? ws_fail(err, WS_EEXIST, "object %s already exists in store %s "
                         "(conditional create refused)", up->base.name, fs->base.url)
               : ws_fail(err, WS_EIO, "link %s to %s: %s", up->tmp, up->path,
                         strerror(errno));
    else if (unlink(up->tmp) != 0)
      rc = ws_fail(err, WS_EIO, "remove %s: %s", up->tmp, strerror(errno));
  } else {
    char cur[WS_STORE_ETAG_MAX];
    if (stat(up->path, &sb) != 0)
      rc = errno != ENOENT && errno != ENOTDIR
               ? ws_fail(err, WS_EIO, "stat %s: %s", up->path, strerror(errno))
               : ws_fail(err, WS_EEXIST, "object %s in store %s is gone (conditional "
                   "replace refused)", up->base.name, fs->base.url);
    else if (etag_of(cur, &sb), strcmp(cur, if_match) != 0)
      rc = ws_fail(err, WS_EEXIST, "object %s in store %s changed (version %s, "
                   "expected %s; conditional replace refused)", up->base.name,
                   fs->base.url, cur, if_match);
    else if (rename(up->tmp, up->path) != 0)
      rc = ws_fail(err, WS_EIO, "rename %s to %s: %s", up->tmp, up->path,
                   strerror(errno));
  }
  if (rc == WS_OK && etag_out) {
    if (stat(up->path, &sb) != 0)
      rc = ws_fail(err, WS_EIO, "stat %s: %s", up->path, strerror(errno));
    else
      etag_of(etag_out, &sb);
  }
out:
  if (lfd >= 0) close(lfd);  /* releases the flock */
  free(lock);
  return rc;
}

static int file_put_if(ws_store *st, const char *name, const void *buf, size_t len,
                       const char *if_match, char *etag_out, ws_err *err) {
  ws_upload *u = NULL;
  int rc = file_put_begin(&u, st, name, err);
  if (rc) return rc;
  file_upload *up = (file_upload *)u;
  if ((rc = ws_write_full(up->fd, buf, len, up->tmp, err)) ||
      (rc = ws_fsync(up->fd, up->tmp, err))) {
    file_put_abort(u);
    return rc;
  }
  int fd = up->fd;
  up->fd = -1;
  if ((rc = ws_close(fd, up->tmp, err)) ||
      (rc = install_if((file_store *)st, up, if_match, etag_out, err))) {
    unlink(up->tmp);
    upload_free(up);
    return rc;
  }
  rc = ws_fsync_dir_of(up->path, err);
  upload_free(up);
  return rc;
}

/* ---------------------------------------------------------------- get */

static int file_get(ws_store *st, const char *name, uint64_t off, uint64_t len,
                    ws_sink_fn sink, void *ud, ws_err *err) {
  file_store *fs = (file_store *)st;
  int rc = ws_store_check_name(name, err);
  if (rc) return rc;
  char *path = obj_path(fs, name, err);
  if (!path) return WS_ENOMEM;
  uint8_t *buf = NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR)
      rc = ws_fail(err, WS_ENOTFOUND, "object %s not found in store %s", name,
                   st->url);
    else
      rc = ws_fail(err, WS_EIO, "open %s: %s", path, strerror(errno));
    goto out;
  }
  struct stat sb;
  if (fstat(fd, &sb) != 0) {
    rc = ws_fail(err, WS_EIO, "stat %s: %s", path, strerror(errno));
    goto out;
  }
  if (!S_ISREG(sb.st_mode)) {
    rc = ws_fail(err, WS_ENOTFOUND, "object %s not found in store %s (%s is not "
                 "a regular file)", name, st->url, path);
    goto out;
  }
  /* The range is clamped to the file: a short object yields fewer bytes and
  ** the caller's parser reports the truncation with its own context. */
  uint64_t size = (uint64_t)sb.st_size;
  uint64_t end = size;
  if (off > size) off = size;
  if (len && len < size - off) end = off + len;
  if (!(buf = atomic_exchange(&fs->buf, NULL)) && !(buf = ws_malloc(FS_READ_BUF, err))) {
    rc = WS_ENOMEM;
    goto out;
  }
  while (off < end) {
    size_t want = end - off < FS_READ_BUF ? (size_t)(end - off) : FS_READ_BUF;
    ssize_t got = ws_pread_full(fd, buf, want, (off_t)off, path, err);
    if (got < 0) { rc = WS_EIO; goto out; }
    if (got == 0) break;       /* shrank under us: a short object */
    if ((rc = sink(ud, buf, (size_t)got, err))) goto out;
    off += (uint64_t)got;
  }
out:
  if (buf) {
    uint8_t *expect = NULL;
    if (!atomic_compare_exchange_strong(&fs->buf, &expect, buf)) free(buf);
  }
  if (fd >= 0) close(fd);  /* read-only: nothing to lose on close */
  free(path);
  return rc;
}

/* --------------------------------------------------------------- list */


/* Does anything under directory rel ("seg/", with slash) match prefix? */
static int dir_may_match(const char *rel, const char *prefix) {
  size_t rl = strlen(rel), pl = strlen(prefix);
  return strncmp(rel, prefix, rl < pl ? rl : pl) == 0;
}

/* Walk dir (absolute path) whose relative name is rel ("" or "a/b/"). */
static int walk(ws_store_list *l, file_store *fs, const char *dir, const char *rel,
                const char *prefix, int depth, ws_err *err) {
  int rc = WS_OK;
  DIR *d = opendir(dir);
  if (!d) {
    if (depth == 0 && errno == ENOENT) return WS_OK; /* no root: empty store */
    return ws_fail(err, WS_EIO, "open directory %s: %s", dir, strerror(errno));
  }
  for (;;) {
    errno = 0;
    struct dirent *de = readdir(d);
    if (!de) {
      if (errno) rc = ws_fail(err, WS_EIO, "read directory %s: %s", dir, strerror(errno));
      break;
    }
    if (de->d_name[0] == '.') continue;   /* ".", "..", temps, hidden */
    char *name = ws_asprintf(err, "%s%s", rel, de->d_name);
    if (!name) { rc = WS_ENOMEM; break; }
    struct stat sb;
    /* lstat: never follow links out of the store or into a loop. */
    if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno != ENOENT)  /* deleted since readdir: not an error */
        rc = ws_fail(err, WS_EIO, "stat %s/%s: %s", dir, de->d_name, strerror(errno));
    } else if (S_ISDIR(sb.st_mode)) {
      char *sub = ws_asprintf(err, "%s/", name);
      char *subdir = ws_asprintf(err, "%s/%s", dir, de->d_name);
      if (!sub || !subdir) rc = WS_ENOMEM;
      else if (depth + 1 < FS_DEPTH_MAX && dir_may_match(sub, prefix))
        rc = walk(l, fs, subdir, sub, prefix, depth + 1, err);
      free(sub);
      free(subdir);
    } else if (S_ISREG(sb.st_mode) && strncmp(name, prefix, strlen(prefix)) == 0 &&
               ws_store_check_name(name, NULL) == WS_OK) {
      /* Names no backend could get are not objects: leave them out. */
      rc = ws_store_list_add(l, name, (uint64_t)sb.st_size,
                             (int64_t)sb.st_mtim.tv_sec * 1000 + sb.st_mtim.tv_nsec / 1000000,
                             fs->base.url, err);
    }
    free(name);
    if (rc) break;
  }
  closedir(d);
  return rc;
}

static int file_list(ws_store_list *out, ws_store *st, const char *prefix,
                     ws_err *err) {
  file_store *fs = (file_store *)st;
  ws_store_list l = {NULL, 0, 0};
  int rc = walk(&l, fs, fs->root, "", prefix ? prefix : "", 0, err);
  if (rc) {
    ws_store_list_free(&l);
    return rc;
  }
  *out = l;
  return WS_OK;
}

/* ---------------------------------------------------------------- del */

static int file_del(ws_store *st, const char *name, ws_err *err) {
  file_store *fs = (file_store *)st;
  int rc = ws_store_check_name(name, err);
  if (rc) return rc;
  char *path = obj_path(fs, name, err);
  if (!path) return WS_ENOMEM;
  if (unlink(path) != 0) {
    if (errno != ENOENT && errno != ENOTDIR)
      rc = ws_fail(err, WS_EIO, "delete %s: %s", path, strerror(errno));
  } else {
    rc = ws_fsync_dir_of(path, err);
  }
  free(path);
  return rc;
}

static const ws_store_methods file_methods = {
  WS_STORE_METHODS_VERSION, "file",
  file_put_begin, file_put_write, file_put_commit, file_put_abort,
  file_get, file_list, file_del, file_close, file_put_if, file_etag,
};
static const ws_store_methods file_methods_plain = {
  WS_STORE_METHODS_VERSION, "file",
  file_put_begin, file_put_write, file_put_commit, file_put_abort,
  file_get, file_list, file_del, file_close, NULL, NULL,
};
