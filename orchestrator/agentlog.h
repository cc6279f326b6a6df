/*
 * agentlog — every agent's stdout/stderr kept on disk for `log #N`, for
 * successful runs too (the output ring in agent.c keeps only a tail, for
 * failures).
 *
 * One file per turn, STATE_DIR/logs/<id>/<turn>.log.  The agent's total is
 * capped at limits.log_size: whole older turns are dropped first; a turn
 * that alone outgrows half the cap is rotated (<turn>.old holds the half
 * before), so the newest output is always kept.  Writes are appends on the
 * loop thread, in blocks (agentlog.c), to a file kept open.
 */
#ifndef SB_AGENTLOG_H
#define SB_AGENTLOG_H

#include <stddef.h>
#include <stdint.h>

/* cap 0 turns logging off. */
void	 agentlog_configure(const char *state_dir, size_t cap);
void	 agentlog_add(int64_t agent_id, int turn, const char *p, size_t n);
/* Writes what the agent's log holds in memory (its process ended). */
void	 agentlog_flush(int64_t agent_id);
/* The agent's logs, oldest turn first, with a header per turn (malloc'd),
 * or NULL when there are none. */
char	*agentlog_read(int64_t agent_id, size_t *len);
/* Forget the in-memory accounting of an agent (its files stay). */
void	 agentlog_forget(int64_t agent_id);
void	 agentlog_free_all(void);

#endif
