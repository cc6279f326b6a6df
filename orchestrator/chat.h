/*
 * chat — where adapters' upcalls land (chat_on_event, chat_on_state): access
 * policy, routing to a conversation, and hand-off to the brain.
 *
 * A top-level message that addresses the bot in a routed channel starts a
 * conversation rooted at that message; a message in a known thread continues
 * it; anything else is not ours and is ignored without a word (a bot that
 * talks in channels nobody routed to it is a noisy bot).  Only
 * access.allowed_users start agents or answer questions; others get one
 * polite refusal per thread.
 */
#ifndef SB_CHAT_H
#define SB_CHAT_H

struct config;
struct adapter;

void	 chat_configure(const struct config *);

#endif
