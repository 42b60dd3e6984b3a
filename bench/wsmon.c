/*
** wsmon: run a command (the sidecar, or a baseline backup loop) and measure
** what it costs, for bench/run.sh.
**
**   wsmon --wal PATH [--interval-ms 100] [-- CMD ARGS...]
**
** Every interval it stats PATH (the database's -wal file) and keeps the
** peak size.  On SIGTERM or SIGINT it forwards SIGTERM to CMD, waits for it
** and prints, on stdout, one line:
**   wsmon: peak_wal_bytes=N samples=N exit=N term_to_exit_ms=X
**          cpu_user_ms=X cpu_sys_ms=X maxrss_kib=N
** CPU and peak RSS come from wait4()'s rusage of CMD and everything it
** waited for (ru_maxrss is the kernel's high-water mark, VmHWM).  Without a
** command it only samples the WAL until signalled (the no-sidecar runs).
** If CMD exits by itself, wsmon reports at once with term_to_exit_ms=-1.
*/
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t g_term = 0;
static void on_term(int sig) { (void)sig; g_term = 1; }

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double tv_ms(struct timeval tv) { return (double)tv.tv_sec * 1e3 + (double)tv.tv_usec / 1e3; }

int main(int argc, char **argv) {
  static const struct option lo[] = {{"wal", 1, 0, 'w'}, {"interval-ms", 1, 0, 'i'}, {0, 0, 0, 0}};
  const char *wal = NULL;
  long interval = 100;
  int c;
  while ((c = getopt_long(argc, argv, "+", lo, NULL)) != -1) {
    if (c == 'w') wal = optarg;
    else if (c == 'i') interval = atol(optarg);
    else return 2;
  }
  if (!wal || interval < 1) {
    fputs("usage: wsmon --wal PATH [--interval-ms N] [-- CMD ARGS...]\n", stderr);
    return 2;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_term; /* no SA_RESTART: wake the sleep */
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  pid_t pid = 0;
  if (optind < argc) {
    pid = fork();
    if (pid < 0) { perror("wsmon: fork"); return 1; }
    if (pid == 0) {
      signal(SIGTERM, SIG_DFL);
      signal(SIGINT, SIG_DFL);
      execvp(argv[optind], argv + optind);
      perror("wsmon: exec");
      _exit(127);
    }
  }
  long long peak = 0, samples = 0;
  int st = 0, exited = 0;
  struct rusage ru;
  memset(&ru, 0, sizeof ru);
  while (!g_term) {
    struct stat sb;
    if (stat(wal, &sb) == 0 && (long long)sb.st_size > peak) peak = (long long)sb.st_size;
    samples++;
    if (pid && wait4(pid, &st, WNOHANG, &ru) == pid) { exited = 1; break; }
    struct timespec ts = {interval / 1000, (interval % 1000) * 1000000L};
    nanosleep(&ts, NULL);
  }
  double tterm = now_ms(), texit = tterm;
  if (pid && !exited) {
    kill(pid, SIGTERM);
    while (wait4(pid, &st, 0, &ru) < 0 && errno == EINTR) {}
    texit = now_ms();
  }
  int code = !pid ? 0 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  printf("wsmon: peak_wal_bytes=%lld samples=%lld exit=%d term_to_exit_ms=%.1f"
         " cpu_user_ms=%.1f cpu_sys_ms=%.1f maxrss_kib=%ld\n",
         peak, samples, code, exited ? -1.0 : texit - tterm, tv_ms(ru.ru_utime),
         tv_ms(ru.ru_stime), ru.ru_maxrss);
  return 0;
}
