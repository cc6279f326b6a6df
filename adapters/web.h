/*
 * web — the chat in a browser: threads, live status cards, buttons,
 * approvals and a dashboard of every agent, served by the daemon's own HTTP
 * server (bot/httpd.c) at http://LISTEN/ with adapters.web.enabled.
 *
 * To the core it is one more adapter (channel "web", threads rooted at a
 * message id, ids from a counter kept in the store's kv table like the
 * console's).  To pages it is a log of message states: every post, edit or
 * reaction gives the message a new sequence number and its whole current
 * state is what pages receive, in sequence order, over a WebSocket at /ws.
 *
 * Decision worth knowing — resume: a page says hello with the epoch and the
 * last sequence number it applied; the server sends every message whose
 * state changed after that, in order, then follows live.  Because a message
 * carries its full state, replaying "changed since N" is exact: nothing is
 * missed (each change bumps seq) and nothing doubled (pages drop seq <= N).
 * The log lives in memory, bounded to WEB_MAX_MSGS messages (evicting the
 * least recently changed); a page whose cursor predates an evicted change,
 * or that comes from another process (epoch differs), is told to reset and
 * gets the whole retained log.  Kept in memory, not in SQLite: the
 * conversation itself (agents, questions, branches) is durable in the store
 * and in git; what a restart loses is the page's scrollback of old threads,
 * and no shared migration was needed for it.
 *
 * Security: a random token is made at first start (state_dir/web-token,
 * 0600) and printed with the URL on stderr (never to the log).  GET
 * /?token=T sets an HttpOnly, SameSite=Strict cookie derived from it
 * (SHA-256, so the cookie is not the token) and redirects to /.  The page
 * and the WebSocket handshake need that cookie, and the handshake also an
 * Origin equal to http://HOST of the request, so another site can neither
 * read nor drive it.  Everything from chat or agents is text on the page
 * (textContent), under a Content-Security-Policy without inline script.
 */
#ifndef SB_WEB_H
#define SB_WEB_H

#include "adapters/adapter.h"

extern const struct adapter_ops web_ops;

#endif
