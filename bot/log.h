/*
 * log — levelled logging to stderr or a file, plain or one JSON object per line.
 *
 * OpenSMTPD style: log_warn() appends strerror(errno), log_warnx() does not;
 * fatal()/fatalx() log and exit(1).  Never pass a token or secret to these —
 * log ids instead.  JSON lines are built with jansson so any text is escaped.
 */
#ifndef SB_LOG_H
#define SB_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* path NULL = stderr.  Returns -1 (and leaves stderr) if the file cannot be opened. */
int	log_init(const char *level, int json, const char *path);
int	log_set_level(const char *level);	/* -1 on an unknown name */
int	log_level_parse(const char *);		/* -1 on an unknown name */
void	log_close(void);

/*
 * Structured fields for JSON lines.  A message that starts "agent N:",
 * "conversation N:", "adapter NAME:", "webhook NAME:" or "question ID"
 * carries that as a field by itself; log_ctx_set() adds fields (the inbound
 * "event" id, a "conversation" known to a caller) to every line until
 * log_ctx_clear().  Plain text logs are unchanged.
 */
void	log_ctx_set(const char *key, const char *value);
void	log_ctx_clear(void);

void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	fatal(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
