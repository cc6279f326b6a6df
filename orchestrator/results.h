/*
 * results — what leaves the machine after an agent's turn: the full diff
 * and log in the thread (`diff #N [PATH]`, `log #N`), the branch pushed
 * (`push #N`), the next steps offered under every result (Show diff / Open
 * PR / Merge: buttons where the platform has them, commands in the text
 * everywhere), and a warning when two agents of one repo touch the same
 * files.  Pull requests are in forge.c, the merge queue in merge.c.
 *
 * Git work (diff, push) runs on libuv's threadpool with copies of its
 * inputs; the agent is held by a reference until the job reports back.
 * Text that is short is posted inline as a code block; anything longer is
 * uploaded as a file (CHAT_OP_UPLOAD) so a thread never fills with pages.
 */
#ifndef SB_RESULTS_H
#define SB_RESULTS_H

#include <stddef.h>

struct agent;
struct config;
struct conversation;
struct cfg_repo;

/* Inline when at most this many bytes and lines; a file otherwise. */
#define RESULTS_INLINE_BYTES	1800
#define RESULTS_INLINE_LINES	40

void	 results_configure(const struct config *);
const struct config *results_config(void);
/* The agent's repo entry in the current config, or NULL. */
const struct cfg_repo *results_repo(const struct agent *);

void	 results_diff(struct agent *, const char *path);
void	 results_log(struct agent *);

/* After a push: ok, or the reason (borrowed) it failed. */
typedef void	(*results_pushed_fn)(struct agent *, int ok, const char *why,
		    void *arg);
/*
 * Pushes the agent's branch to its repo's remote; reports in the thread
 * unless then is given (it reports instead).
 */
void	 results_push(struct agent *, results_pushed_fn then, void *arg);

/*
 * Posts data into the agent's thread: inline as a code block when short,
 * else as a file named filename with title.
 */
void	 results_post(struct conversation *, const char *data, size_t len,
	    const char *filename, const char *title, const char *empty);

/*
 * A click on a result's button ("r12", "Open PR") as the command a person
 * would type ("pr #12"), malloc'd; NULL if the question is not ours.
 */
char	*results_click_command(const char *question, const char *choice);

/* The merge queue tells when a branch is merged: no more overlap warnings. */
void	 results_forget(long long agent_id);

#endif
