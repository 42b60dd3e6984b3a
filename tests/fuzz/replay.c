/*
** Plain replay driver: feeds every file named on the command line (or,
** for a directory, every file in it) to LLVMFuzzerTestOneInput once.  Linked
** with a fuzz target and built with -fsanitize=address,undefined by gcc or
** clang, it is how `make test` replays the checked-in corpora without
** libFuzzer.  Prints "replayed N inputs"; a sanitizer report or abort()
** makes the process fail.
*/
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "replay: open %s failed\n", path);
    return 1;
  }
  size_t cap = 1 << 16, n = 0, k;
  uint8_t *b = malloc(cap);
  while (b && (k = fread(b + n, 1, cap - n, f)) > 0) {
    n += k;
    if (n == cap) {
      uint8_t *nb = realloc(b, cap *= 2);
      if (!nb) { free(b); b = NULL; }
      b = nb;
    }
  }
  fclose(f);
  if (!b) return 1;
  /* An exact-size copy, so ASan catches a read one past the end. */
  uint8_t *exact = malloc(n ? n : 1);
  if (!exact) { free(b); return 1; }
  memcpy(exact, b, n);
  free(b);
  LLVMFuzzerTestOneInput(exact, n);
  free(exact);
  return 0;
}

static int cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv) {
  int fails = 0, count = 0;
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) != 0) { fprintf(stderr, "replay: no %s\n", argv[i]); return 1; }
    if (!S_ISDIR(st.st_mode)) { fails += replay_file(argv[i]); count++; continue; }
    DIR *d = opendir(argv[i]);
    if (!d) return 1;
    struct dirent *e;
    char **names = NULL;
    size_t nn = 0;
    while ((e = readdir(d))) {
      if (e->d_name[0] == '.') continue;
      char **v = realloc(names, (nn + 1) * sizeof(*v));
      if (!v) return 1;
      names = v;
      size_t len = strlen(argv[i]) + strlen(e->d_name) + 2;
      if (!(names[nn] = malloc(len))) return 1;
      snprintf(names[nn++], len, "%s/%s", argv[i], e->d_name);
    }
    closedir(d);
    qsort(names, nn, sizeof(*names), cmp);   /* same order on every run */
    for (size_t j = 0; j < nn; j++) {
      fails += replay_file(names[j]);
      count++;
      free(names[j]);
    }
    free(names);
  }
  printf("replayed %d inputs, %d unreadable\n", count, fails);
  return fails ? 1 : 0;
}
