/*
** The replicate configuration file (docs/config.md): a YAML document with
** process settings (logging, AWS credentials) and a list of databases, each
** with one or more destinations.  Loaded with libyaml's document API so every
** error can name FILE:LINE:COLUMN and the key; ${VAR} and ${VAR:-default}
** are expanded in every scalar before it is interpreted.
**
** Invariants: a loaded cfg is complete and valid (every database has a path
** and at least one destination, every value parsed); paths are not checked
** for existence (the sidecar reports that when it starts); secrets live only
** in the cfg and the process environment, and cfg_print masks them.
*/
#ifndef WS_CLI_CONFIG_H
#define WS_CLI_CONFIG_H

#include <stdio.h>
#include "walship/dest.h"

typedef struct cfg_dest {
  char *name;                /* label (default: the URL) */
  char *url;
  ws_store_opts so;          /* string fields point at the copies below */
  char *endpoint, *region, *storage_class, *ca_bundle;
  char *key_file;            /* encryption-key-file (a --encryption-key-file flag wins) */
  int64_t retention_ms;      /* -1: the database's */
} cfg_dest;

typedef struct cfg_db {
  char *path;
  char *name;                /* label in logs (default: the path) */
  ws_replicate_opts ro;      /* db_path, dests, ndests filled by cfg_finish */
  cfg_dest *d;
  size_t nd;
  ws_dest *wd;               /* ws_replicate's view of d, cfg_finish */
} cfg_db;

typedef struct cfg {
  char *file;                /* NULL: built from the command line */
  char *log_level, *log_format, *log_file; /* NULL: not set */
  char *aws_key_id, *aws_secret, *aws_token; /* NULL: from the environment */
  int literal_secret;        /* a secret is written in the file itself */
  char *metrics;             /* metrics: HOST:PORT (a --metrics flag wins); NULL: off */
  int metrics_remote;        /* metrics-allow-remote: true */
  char *control;             /* control: PATH or "off" (a --control flag wins);
                                NULL: each database's default socket */
  cfg_db *db;
  size_t ndb;
} cfg;

/* Load and validate path into *out (zeroed first).  On failure: -1 and a
** one-line "FILE:LINE:COL: KEY: problem" in msg. */
int cfg_load(cfg *out, const char *path, char *msg, size_t msglen);

/* Append one database replicating to one store (the DB STORE form). */
void cfg_add_simple(cfg *c, const char *db, const char *url, const ws_store_opts *so);

/* Point every database's ro at its path and destinations (after the
** command-line overrides are applied, before ws_replicate).  -1 and msg on
** a duplicate database path. */
int cfg_finish(cfg *c, char *msg, size_t msglen);

/* The effective configuration as YAML, in the file's own syntax.
** mask: print secrets as "********" (config check). */
void cfg_print(FILE *f, const cfg *c, int mask);
/* One database's effective settings (unmasked), for change detection on
** reload; malloc'ed. */
char *cfg_db_fingerprint(const cfg_db *d);

/* Free one database (moved out of a cfg: the struct is copied, then the
** cfg's slot zeroed) and zero it; frees every database of c and the array. */
void cfg_db_free(cfg_db *d);
void cfg_free_dbs(cfg *c);
void cfg_free(cfg *c);

#endif
