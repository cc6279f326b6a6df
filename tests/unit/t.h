/*
 * t.h — the unit-test harness.  Each test-*.c is one binary; each TEST is a
 * function; the binary prints "PASS name" or "FAIL name: file:line: expr" per
 * test, and tests/run.sh counts those lines into "N passed, N failed".
 *
 *	TEST(http_429_exposes_retry_after) { ... CHECK(x == 1); CHECK_STR(a, b); }
 *	int main(void) { RUN(http_429_exposes_retry_after); return t_done(); }
 *
 * A failed CHECK stops the current test (longjmp) so a NULL it just found is
 * not dereferenced by the next line.
 */
#ifndef SB_T_H
#define SB_T_H

#include <setjmp.h>
#include <stdio.h>
#include <string.h>

static int	 t_failed_count, t_passed_count;
static int	 t_cur_failed;
static jmp_buf	 t_jmp;

#define TEST(name)	static void name(void)

#define CHECK(expr) do {						\
	if (!(expr)) {							\
		printf("FAIL %s: %s:%d: %s\n", t_cur_name, __FILE__,	\
		    __LINE__, #expr);					\
		fflush(stdout);						\
		t_cur_failed = 1;					\
		longjmp(t_jmp, 1);					\
	}								\
} while (0)

#define CHECK_STR(a, b) do {						\
	const char *t_a_ = (a), *t_b_ = (b);				\
	if (t_a_ == NULL || t_b_ == NULL || strcmp(t_a_, t_b_) != 0) {	\
		printf("FAIL %s: %s:%d: %s == %s (\"%s\" vs \"%s\")\n",	\
		    t_cur_name, __FILE__, __LINE__, #a, #b,		\
		    t_a_ ? t_a_ : "(null)", t_b_ ? t_b_ : "(null)");	\
		fflush(stdout);						\
		t_cur_failed = 1;					\
		longjmp(t_jmp, 1);					\
	}								\
} while (0)

#define CHECK_INT(a, b) do {						\
	long long t_a_ = (long long)(a), t_b_ = (long long)(b);		\
	if (t_a_ != t_b_) {						\
		printf("FAIL %s: %s:%d: %s == %s (%lld vs %lld)\n",	\
		    t_cur_name, __FILE__, __LINE__, #a, #b, t_a_, t_b_); \
		fflush(stdout);						\
		t_cur_failed = 1;					\
		longjmp(t_jmp, 1);					\
	}								\
} while (0)

static const char *t_cur_name = "";

static void
t_run(const char *name, void (*fn)(void))
{
	t_cur_name = name;
	t_cur_failed = 0;
	if (setjmp(t_jmp) == 0)
		fn();
	if (t_cur_failed)
		t_failed_count++;
	else {
		t_passed_count++;
		printf("PASS %s\n", name);
	}
	fflush(stdout);
}

#define RUN(fn)	t_run(#fn, fn)

static int
t_done(void)
{
	return t_failed_count == 0 ? 0 : 1;
}

#endif
