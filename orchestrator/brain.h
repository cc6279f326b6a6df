/*
 * brain — decides what a person's message in a conversation means.
 *
 * The rules brain (brain-rules.c) reads commands (status, new, #n, cancel
 * #n, diff #n, qN, help) and answers open questions; the LLM brain
 * (brain-llm.c) converses with a model and makes the commands implicit,
 * while explicit commands still go to the rules code.  Both act only
 * through the brain_act_* functions below, which check the access policy
 * for the acting person and call the orchestrator (agent_start,
 * question_answer, ...): what a brain may do is exactly what a person may
 * do by hand.
 *
 * A route (or webhook) names the brain of the conversations it opens; the
 * choice is recorded with the conversation so a config change does not
 * move a running one.  Agent events (a question opened, an agent ended)
 * reach the conversation's brain through the optional hooks.
 */
#ifndef SB_BRAIN_H
#define SB_BRAIN_H

#include <stdint.h>

struct agent;
struct config;
struct conversation;
struct question;

struct brain_msg {
	const char	*text;		/* mention stripped, trimmed */
	const char	*by;		/* "console:me" */
	const char	*reply_to_key;	/* our message key it replies to ("q5"), or NULL */
	int		 first;		/* this message started the conversation */
};

struct brain_ops {
	const char	*name;
	/* Mandatory.  Must answer every message somehow: never silence. */
	void		(*on_message)(struct conversation *, const struct brain_msg *);
	/* Optional: an agent of the conversation asked (the ticket is posted). */
	void		(*on_question)(struct conversation *, struct question *);
	/* Optional: a question settled (answered by anyone, or cancelled). */
	void		(*on_settled)(struct conversation *, struct question *);
	/* Optional: an agent's turn ended (its result is posted). */
	void		(*on_agent_end)(struct conversation *, struct agent *);
	/* Optional: extra lines for `status` in this conversation (malloc'd). */
	char		*(*status)(struct conversation *);
};

extern const struct brain_ops brain_rules;
extern const struct brain_ops brain_llm;

const struct brain_ops *brain_lookup(const char *name);
/* The brain of a conversation: its recorded LLM brain, else rules. */
const struct brain_ops *brain_of(struct conversation *);
/* The cfg brain name of a conversation (borrowed from config), or NULL. */
const char	*brain_name_of(struct conversation *);

/* Config (start and reload) and the event observers.  */
void		 brain_configure(const struct config *);
void		 brain_shutdown(void);
const struct config *brain_config(void);

/*
 * The rules brain's handling of one message, for the LLM brain's explicit
 * commands.  1 if text is an explicit command (handled), 0 if not.
 */
int		 brain_rules_command(struct conversation *, const struct brain_msg *);

/*
 * Actions, shared by every brain.  by is the acting person ("slack:U1");
 * each checks that person against the access policy first.  0 ok, -1 with
 * *cause (malloc'd, a sentence for the person or the model).
 */
int		 brain_act_allowed(const char *by, char **cause);
struct agent	*brain_act_find(struct conversation *, long long n, char **cause);
struct agent	*brain_act_start(struct conversation *, const char *agent_name,
		    const char *repo, const char *task, const char *by,
		    char **cause);
int		 brain_act_followup(struct conversation *, long long n,
		    const char *text, const char *by, char **cause);
/* 0 cancelling; -1 unknown or already ended (*cause says which). */
int		 brain_act_cancel(struct conversation *, long long n,
		    const char *by, char **cause);
int		 brain_act_answer(struct conversation *, int64_t qid,
		    const char *text, const char *by, char **cause);

#endif
