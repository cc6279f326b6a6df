/*
 * render — platform-neutral text for what the person sees: status cards,
 * questions, results, help.  Pure functions: strings in, malloc'd text out,
 * so they are unit-tested without a loop.  Adapters translate plain text
 * with `code` and *bold* spans to their markup; the core never formats for
 * one platform.
 */
#ifndef SB_RENDER_H
#define SB_RENDER_H

#include <stddef.h>
#include <stdint.h>

struct render_card {
	int64_t		 id;
	const char	*name;		/* agent config name */
	const char	*state;
	const char	*branch;
	int64_t		 elapsed_s;
	const char	*const *steps;	/* oldest first, NULL-terminated */
	const char	*const *files;	/* touched files, NULL-terminated or NULL */
	const char	*waiting;	/* "q5" when blocked on a question */
};

char	*render_card(const struct render_card *);
char	*render_question(int64_t qid, int64_t agent_id, const char *text,
	    const char *const *choices);
char	*render_question_settled(int64_t qid, int64_t agent_id, const char *text,
	    const char *state, const char *answer, const char *by);
struct render_result {
	int64_t		 id;
	const char	*state;		/* "done", "failed", ... */
	const char	*branch;
	const char	*summary;	/* may be NULL */
	const char	*diffstat;	/* may be NULL */
	int		 exit_code;
	int		 term_signal;
	const char	*tail;		/* output tail, shown on failure; may be NULL */
};
char	*render_result(const struct render_result *);
char	*render_help(void);
char	*render_elapsed(int64_t s);	/* "1m05s" */

/*
 * Splits text into chunks of at most max bytes, at a line break when one is
 * in the last quarter, never inside a UTF-8 sequence.  Returns the count;
 * *out is a malloc'd array of malloc'd strings.
 */
size_t	 render_split(const char *text, size_t max, char ***out);
/* One-line, length-bounded version of text for steps (malloc'd). */
char	*render_oneline(const char *text, size_t max);

#endif
