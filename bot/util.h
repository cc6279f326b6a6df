/*
 * util — allocation that cannot fail, small string and time helpers.
 *
 * Out-of-memory is fatal in a daemon: the x* family aborts with a log line, so
 * call sites never carry NULL checks for allocation.  Everything here is
 * loop-agnostic and safe to use from tests.
 */
#ifndef SB_UTIL_H
#define SB_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>

#define nitems(a) (sizeof(a) / sizeof((a)[0]))

void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xrealloc(void *, size_t);
char	*xstrdup(const char *);
char	*xstrndup(const char *, size_t);
char	*xasprintf(const char *, ...) __attribute__((format(printf, 1, 2)));
char	*xvasprintf(const char *, va_list);

/* Growable byte buffer, always NUL-terminated (len excludes the NUL). */
struct buf {
	char	*data;
	size_t	 len;
	size_t	 cap;
};
void	 buf_add(struct buf *, const void *, size_t);
void	 buf_adds(struct buf *, const char *);
void	 buf_printf(struct buf *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
void	 buf_reset(struct buf *);
void	 buf_free(struct buf *);
char	*buf_steal(struct buf *);	/* caller frees; buf is empty after */

/* Clocks: monotonic for intervals, wall for what is stored or shown. */
uint64_t now_ms(void);		/* monotonic, milliseconds */
int64_t	 wall_s(void);		/* unix time, seconds */
int64_t	 wall_ms(void);		/* unix time, milliseconds */

/* Constant-time comparison of two byte strings (signature checks). */
int	 ct_equal(const void *, size_t, const void *, size_t);

/* Lowercase hex of len bytes into out (2*len+1). */
void	 hex_encode(const unsigned char *, size_t, char *);

/* Truncate s in place to at most max bytes without splitting a UTF-8 sequence. */
void	 utf8_truncate(char *s, size_t max);

/* Parse a non-negative decimal integer; -1 on anything else. */
long long parse_uint(const char *);

#endif
