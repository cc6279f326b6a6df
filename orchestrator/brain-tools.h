/*
 * brain-tools — the LLM brain's tools: their JSON Schemas and their
 * execution, each through the same brain_act_* function (and so the same
 * access check) as the person's command.
 *
 *	start_agent {task, agent?, repo?}	→ id, branch
 *	follow_up {agent, text}
 *	cancel_agent {agent}
 *	answer_question {question: "q5", answer}
 *	list_agents {}				→ agents of this conversation
 *	agent_result {agent}			→ summary, exit, diff stat, tail
 *	agent_diff {agent, path?}		→ unified diff, bounded
 *
 * A turn started by an agent event has no person behind it (by NULL): the
 * first four are refused as tool errors, so an agent's text cannot make the
 * brain act.  Errors are tool errors, never a failed turn: the model can
 * read them and recover.
 */
#ifndef SB_BRAIN_TOOLS_H
#define SB_BRAIN_TOOLS_H

#include <jansson.h>
#include <stdint.h>

struct conversation;

#define BRAIN_DIFF_MAX	12000	/* bytes of unified diff given to the model */
#define BRAIN_TAIL_MAX	2000	/* bytes of output tail */

/* The neutral tool list (llm.h), a new reference. */
json_t	*brain_tools(void);
/*
 * Runs one call; returns the result object (new reference) and sets
 * *is_error.  by: the acting person, or NULL in an event turn.
 */
json_t	*brain_tools_run(struct conversation *, const char *by,
	    const char *name, json_t *input, int *is_error);

#endif
