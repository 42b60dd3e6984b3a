/*
** libFuzzer target: the replicate configuration file parser (cli/config.c,
** libyaml underneath) on arbitrary bytes, as a mistyped or hostile
** walship.yml would be.  cfg_load must never crash, leak or loop; it
** either loads (then printing and fingerprinting the result must work too)
** or fails with a one-line "FILE:LINE:COL: KEY: problem" message.
** ${VAR} expansion reads the environment: WS_FUZZ_VAR is set so seeds can
** use it.
*/
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[256];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > (256u << 10)) return 0;
  if (!path[0]) {
    const char *t = getenv("TMPDIR");
    snprintf(path, sizeof(path), "%s/ws-fuzz-config.%ld.yml", t && *t ? t : "/tmp",
             (long)getpid());
    setenv("WS_FUZZ_VAR", "/tmp/fuzz.db", 1);
  }
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) abort();
  cfg c;
  char msg[512] = "";
  if (cfg_load(&c, path, msg, sizeof(msg)) == 0) {
    FILE *devnull = fopen("/dev/null", "w");
    if (devnull) {
      cfg_print(devnull, &c, 1);
      fclose(devnull);
    }
    for (size_t i = 0; i < c.ndb; i++) free(cfg_db_fingerprint(&c.db[i]));
    cfg_free(&c);
  } else {
    if (!msg[0] || strchr(msg, '\n')) abort();   /* one line, always */
    cfg_free(&c);   /* a failed load may hold part of a result */
  }
  return 0;
}
