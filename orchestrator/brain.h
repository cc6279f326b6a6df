/*
 * brain — decides what a person's message in a conversation means.
 *
 * The rules brain reads commands (status, new, #n, cancel #n, diff #n, qN,
 * help) and answers open questions; an LLM brain will sit behind the same
 * vtable and make the commands implicit.  A brain acts only through the
 * orchestrator's functions (agent_start, question_answer, conversation_say),
 * so what it may do is exactly what a person may do by hand.
 */
#ifndef SB_BRAIN_H
#define SB_BRAIN_H

struct conversation;

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
};

const struct brain_ops *brain_lookup(const char *name);

#endif
