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

void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	fatal(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
