/*
** A minimal unit-test harness.  Each test binary prints one line per test,
** "PASS name" or "FAIL name: file:line: expression", which tests/run.sh
** counts.  CHECK returns from the test at the first failure.
*/
#ifndef WS_T_H
#define WS_T_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_failed_ = 0, t_cur_failed_ = 0, t_any_failed_ = 0;

#define CHECK(cond) do { if (!(cond)) { \
    printf("FAIL %s: %s:%d: %s\n", t_name_, __FILE__, __LINE__, #cond); \
    t_cur_failed_ = 1; return; } } while (0)
#define CHECK_EQ(a, b) do { long long a_ = (long long)(a), b_ = (long long)(b); \
    if (a_ != b_) { printf("FAIL %s: %s:%d: %s == %s (%lld != %lld)\n", t_name_, \
    __FILE__, __LINE__, #a, #b, a_, b_); t_cur_failed_ = 1; return; } } while (0)

static const char *t_name_ = "";
#define RUN(fn) do { t_name_ = #fn; t_cur_failed_ = 0; fn(); \
    if (t_cur_failed_) { t_any_failed_ = 1; t_failed_++; } \
    else { printf("PASS %s\n", #fn); } fflush(stdout); } while (0)
#define T_EXIT() return t_any_failed_ ? 1 : 0
#endif
