#include "bot/log.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

static int	 log_min = LOG_INFO;
static int	 log_json;
static FILE	*log_fp;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

#define LOG_CTX_MAX	8
static struct {
	char	*key;
	char	*value;
} log_ctx[LOG_CTX_MAX];
static int	 log_nctx;

void
log_ctx_set(const char *key, const char *value)
{
	int	 i;

	for (i = 0; i < log_nctx; i++) {
		if (strcmp(log_ctx[i].key, key) == 0) {
			free(log_ctx[i].value);
			log_ctx[i].value = strdup(value);
			return;
		}
	}
	if (log_nctx == LOG_CTX_MAX)
		return;
	log_ctx[log_nctx].key = strdup(key);
	log_ctx[log_nctx++].value = strdup(value);
}

void
log_ctx_clear(void)
{
	while (log_nctx > 0) {
		log_nctx--;
		free(log_ctx[log_nctx].key);
		free(log_ctx[log_nctx].value);
	}
}

/* The subject a message starts with, as a field: "agent 3: ..." → agent=3. */
static void
log_subject(json_t *o, const char *msg)
{
	static const char *const subjects[] = { "agent", "conversation",
	    "adapter", "webhook", "question" };
	size_t		 i, n, len;
	long long	 id;
	char		*end;

	for (i = 0; i < sizeof(subjects) / sizeof(subjects[0]); i++) {
		n = strlen(subjects[i]);
		if (strncmp(msg, subjects[i], n) != 0 || msg[n] != ' ')
			continue;
		msg += n + 1;
		len = strcspn(msg, ": ");
		if (len == 0 || len > 128)
			return;
		id = strtoll(msg, &end, 10);
		if (end == msg + len)
			json_object_set_new(o, subjects[i], json_integer(id));
		else
			json_object_set_new(o, subjects[i],
			    json_stringn(msg, len));
		return;
	}
}

int
log_level_parse(const char *s)
{
	size_t	 i;

	for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcasecmp(s, level_names[i]) == 0)
			return (int)i;
	if (strcasecmp(s, "warning") == 0)
		return LOG_WARN;
	return -1;
}

int
log_set_level(const char *s)
{
	int	 l;

	if ((l = log_level_parse(s)) < 0)
		return -1;
	log_min = l;
	return 0;
}

int
log_init(const char *level, int json, const char *path)
{
	FILE	*fp = NULL;

	if (level != NULL && log_set_level(level) == -1)
		return -1;
	if (path != NULL && *path != '\0') {
		if ((fp = fopen(path, "a")) == NULL)
			return -1;
		setvbuf(fp, NULL, _IOLBF, 0);
	}
	if (log_fp != NULL && log_fp != stderr)
		fclose(log_fp);
	log_fp = fp;
	log_json = json;
	return 0;
}

void
log_close(void)
{
	log_ctx_clear();
	if (log_fp != NULL && log_fp != stderr)
		fclose(log_fp);
	log_fp = NULL;
}

static void
log_emit(int level, const char *errstr, const char *fmt, va_list ap)
{
	FILE		*fp = log_fp != NULL ? log_fp : stderr;
	char		 msg[4096], ts[64];
	struct timeval	 tv;
	struct tm	 tm;

	if (level < log_min)
		return;
	vsnprintf(msg, sizeof msg, fmt, ap);
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));

	if (log_json) {
		json_t	*o;
		char	*s;

		o = json_pack("{s:s, s:s, s:s}", "ts", ts,
		    "level", level_names[level], "msg", msg);
		if (o != NULL && errstr != NULL)
			json_object_set_new(o, "error", json_string(errstr));
		if (o != NULL) {
			int	 i;

			log_subject(o, msg);
			for (i = 0; i < log_nctx; i++)
				json_object_set_new(o, log_ctx[i].key,
				    json_string(log_ctx[i].value));
		}
		s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
		if (s != NULL) {
			fprintf(fp, "%s\n", s);
			free(s);
		}
		json_decref(o);
	} else if (errstr != NULL)
		fprintf(fp, "%s %-5s %s: %s\n", ts, level_names[level], msg,
		    errstr);
	else
		fprintf(fp, "%s %-5s %s\n", ts, level_names[level], msg);
	fflush(fp);
}

#define LOG_FN(name, level, witherr)				\
void								\
name(const char *fmt, ...)					\
{								\
	va_list	 ap;						\
	int	 saved = errno;					\
								\
	va_start(ap, fmt);					\
	log_emit(level, witherr ? strerror(saved) : NULL, fmt, ap); \
	va_end(ap);						\
	errno = saved;						\
}

LOG_FN(log_debug, LOG_DEBUG, 0)
LOG_FN(log_info, LOG_INFO, 0)
LOG_FN(log_warn, LOG_WARN, 1)
LOG_FN(log_warnx, LOG_WARN, 0)

void
fatal(const char *fmt, ...)
{
	va_list	 ap;
	int	 saved = errno;

	va_start(ap, fmt);
	log_emit(LOG_ERROR, strerror(saved), fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_emit(LOG_ERROR, NULL, fmt, ap);
	va_end(ap);
	exit(1);
}
